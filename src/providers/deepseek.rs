//! DeepSeek through its OpenAI-compatible API, with `reasoning_content` and cache-hit counts.
//!
//! API reference: <https://api-docs.deepseek.com/api/create-chat-completion>.
//! Reasoning model: <https://api-docs.deepseek.com/guides/reasoning_model>.
//! Errors: <https://api-docs.deepseek.com/quick_start/error_codes>.
//! Pricing: <https://api-docs.deepseek.com/quick_start/pricing>.

use reqwest::header::HeaderMap;

use crate::error::Error;
use crate::providers::common::{Auth, Settings, common_builder_methods, env_var};
use crate::providers::http::{HttpProvider, http_chat_provider};
use crate::providers::openai_format::{Flavor, OpenAiDialect};

/// The official API's base URL.
pub const DEEPSEEK_BASE_URL: &str = "https://api.deepseek.com";

/// DeepSeek's chat models (`deepseek-chat`, `deepseek-reasoner`).
///
/// The reasoning of `deepseek-reasoner` arrives as [`Delta::Reasoning`](crate::Delta) and
/// [`ChatResponse::reasoning`](crate::ChatResponse::reasoning); keep it on the assistant [`Message`](crate::Message) of a
/// tool-calling turn and it is sent back as `reasoning_content`, as the API expects in tool loops.
/// HTTP 402 (insufficient balance) is `ErrorKind::QuotaExceeded`; 503 is `ErrorKind::Overloaded`.
/// A 400 whose message says the prompt exceeds "the maximum context length" (DeepSeek sends no
/// specific code for it) is `ErrorKind::ContextLength`.
#[derive(Debug)]
pub struct DeepSeek {
    http: HttpProvider,
}

/// Builds a [`DeepSeek`] provider. Setters never fail; [`DeepSeekBuilder::build`] checks.
#[must_use]
#[derive(Debug, Default)]
pub struct DeepSeekBuilder {
    settings: Settings,
}

impl DeepSeek {
    /// A builder with no key and the official base URL.
    pub fn builder() -> DeepSeekBuilder {
        DeepSeekBuilder::default()
    }

    /// A provider configured from `DEEPSEEK_API_KEY` and, when set, `DEEPSEEK_BASE_URL`.
    ///
    /// # Errors
    /// `ErrorKind::Config` when `DEEPSEEK_API_KEY` is not set or a value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(env_var)
    }

    /// As [`DeepSeek::from_env`], reading variables through `var`.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        DeepSeekBuilder {
            settings: Settings::from_vars("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", true, var)?,
        }
        .build()
    }
}

impl DeepSeekBuilder {
    common_builder_methods!();

    /// Builds the provider.
    ///
    /// # Errors
    /// `ErrorKind::Config` when no API key was given, the base URL is not an http(s) URL, a
    /// header is invalid or a timeout is zero.
    pub fn build(self) -> Result<DeepSeek, Error> {
        Ok(DeepSeek {
            http: HttpProvider::new(
                self.settings.endpoint(
                    "deepseek",
                    DEEPSEEK_BASE_URL,
                    Auth::Bearer,
                    true,
                    HeaderMap::new(),
                )?,
                OpenAiDialect {
                    provider: "deepseek".into(),
                    flavor: Flavor::DeepSeek,
                    path: "/chat/completions",
                },
            ),
        })
    }
}

http_chat_provider!(DeepSeek);
