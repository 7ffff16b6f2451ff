//! OpenAI (GPT) through the Chat Completions API.
//!
//! API reference: <https://platform.openai.com/docs/api-reference/chat>.
//! Errors: <https://platform.openai.com/docs/guides/error-codes>.
//! Pricing: <https://openai.com/api/pricing>.

use reqwest::header::{HeaderMap, HeaderValue};

use crate::error::Error;
use crate::providers::common::{Auth, Settings, common_builder_methods, env_var};
use crate::providers::http::{HttpProvider, http_chat_provider};
use crate::providers::openai_format::{Flavor, OpenAiDialect};

/// The official API's base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// OpenAI's chat models (`gpt-4o`, `gpt-4.1`, `o3`, …).
///
/// ```no_run
/// # async fn demo() -> Result<(), modelgate::Error> {
/// use modelgate::{ChatProvider, ChatRequest};
/// use modelgate::providers::OpenAi;
/// let openai = OpenAi::from_env()?;
/// let answer = openai.chat(&ChatRequest::new("gpt-4o-mini").user("Hi!")).await?;
/// println!("{}", answer.text());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OpenAi {
    http: HttpProvider,
}

/// Builds an [`OpenAi`] provider. Setters never fail; [`OpenAiBuilder::build`] checks.
#[must_use]
#[derive(Debug, Default)]
pub struct OpenAiBuilder {
    settings: Settings,
    organization: Option<String>,
    project: Option<String>,
}

impl OpenAi {
    /// A builder with no key and the official base URL.
    pub fn builder() -> OpenAiBuilder {
        OpenAiBuilder::default()
    }

    /// A provider configured from `OPENAI_API_KEY` and, when set, `OPENAI_BASE_URL`.
    ///
    /// # Errors
    /// `ErrorKind::Config` when `OPENAI_API_KEY` is not set or a value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(env_var)
    }

    /// As [`OpenAi::from_env`], reading variables through `var`.
    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        OpenAiBuilder {
            settings: Settings::from_vars("OPENAI_API_KEY", "OPENAI_BASE_URL", true, &var)?,
            organization: var("OPENAI_ORG_ID"),
            project: var("OPENAI_PROJECT_ID"),
        }
        .build()
    }
}

impl OpenAiBuilder {
    common_builder_methods!();

    /// Sends `OpenAI-Organization` with every request.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Sends `OpenAI-Project` with every request.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Builds the provider.
    ///
    /// # Errors
    /// `ErrorKind::Config` when no API key was given, the base URL is not an http(s) URL, a
    /// header is invalid or a timeout is zero.
    pub fn build(self) -> Result<OpenAi, Error> {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("openai-organization", self.organization),
            ("openai-project", self.project),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| Error::config(format!("openai: invalid {name} header")))?;
                headers.insert(name, value);
            }
        }
        Ok(OpenAi {
            http: HttpProvider::new(
                self.settings
                    .endpoint("openai", OPENAI_BASE_URL, Auth::Bearer, true, headers)?,
                OpenAiDialect {
                    provider: "openai".into(),
                    flavor: Flavor::OpenAi,
                    path: "/chat/completions",
                },
            ),
        })
    }
}

http_chat_provider!(OpenAi);
