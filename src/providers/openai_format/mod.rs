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

impl OpenAiDialect {
    /// Whether the server's `completion_tokens` leave the reasoning tokens out (xAI: "reasoning
    /// token consumption will be counted separately from completion_tokens, but will be counted
    /// in the total_tokens"), so that they must be added to the normalized `output_tokens`.
    fn reasoning_apart(&self) -> bool {
        #[cfg(feature = "compat")]
        return self.flavor == Flavor::Compat
            && self.provider == crate::providers::Preset::Xai.name();
        #[cfg(not(feature = "compat"))]
        false
    }
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
        response::decode(body, &self.provider, self.reasoning_apart())
    }

    fn stream_decoder(&self, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(stream::OpenAiStream::new(self.reasoning_apart()))
    }

    fn error_detail(&self, status: u16, body: &[u8]) -> ErrorDetail {
        response::error_detail(status, body)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
