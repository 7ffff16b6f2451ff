//! The OpenAI Chat Completions wire format, shared by OpenAI, DeepSeek and every
//! OpenAI-compatible service. The [`Flavor`] says which variant of it a server speaks.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat>,
//! <https://api-docs.deepseek.com/api/create-chat-completion>.

mod request;
mod response;
mod stream;

use crate::error::Error;
use crate::transport::{Call, Dialect, ErrorDetail, StreamDecoder, WireRequest};
use crate::types::{ChatRequest, ChatResponse};

/// Which variant of the format a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// api.openai.com: `developer` role, `max_completion_tokens`.
    OpenAi,
    /// DeepSeek: `reasoning_content`, cache hit counts, `max_tokens`.
    DeepSeek,
    /// Other compatible servers: `system` for developer messages, `max_tokens`, tolerant parsing.
    Compat,
}

/// The dialect of one OpenAI-format provider.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiDialect {
    pub(crate) provider: String,
    pub(crate) flavor: Flavor,
    /// The path of the endpoint under the base URL.
    pub(crate) path: &'static str,
}

impl Dialect for OpenAiDialect {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn encode(&self, call: &Call<'_>, stream: bool) -> Result<WireRequest, Error> {
        Ok(WireRequest {
            path: self.path.to_owned(),
            body: request::encode_call(call, self.flavor, stream)?,
        })
    }

    fn decode(&self, body: &[u8]) -> Result<ChatResponse, Error> {
        response::decode(body, &self.provider)
    }

    fn stream_decoder(&self, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(stream::OpenAiStream::default())
    }

    fn error_detail(&self, status: u16, body: &[u8]) -> ErrorDetail {
        response::error_detail(status, body)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
