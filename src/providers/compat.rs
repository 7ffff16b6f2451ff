//! Any service that speaks the OpenAI Chat Completions format, with presets for the common ones.
//!
//! Parsing is tolerant of the drift real servers show: `finish_reason: ""`, `name: ""` in
//! tool-call fragments, `usage: {}`, unknown fields, and a 200 whose body is an error object.
//! Mistral's array `content` (`[{"type":"text","text":…}]`, in answers and stream deltas) gives
//! the text of its text parts, and its `thinking` parts become reasoning. A tool-call fragment
//! without `index` continues the last call when it has no id or the same id, and starts the
//! next call otherwise.
//! A cost the server reports (OpenRouter's `usage.cost`) is kept on [`ChatResponse::cost`].

use reqwest::header::HeaderMap;

use crate::error::Error;
use crate::providers::common::{Auth, Settings, common_builder_methods, env_var};
use crate::providers::http::{HttpProvider, http_chat_provider};
use crate::providers::openai_format::{Flavor, OpenAiDialect};

/// A known OpenAI-compatible service: its name, base URL and key variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// OpenRouter, `OPENROUTER_API_KEY`.
    OpenRouter,
    /// Groq, `GROQ_API_KEY`.
    Groq,
    /// Together AI, `TOGETHER_API_KEY`.
    Together,
    /// Mistral, `MISTRAL_API_KEY`.
    Mistral,
    /// xAI (Grok), `XAI_API_KEY`. xAI's `completion_tokens` leave the reasoning tokens out;
    /// [`Usage::output_tokens`](crate::Usage::output_tokens) adds them back, as for OpenAI.
    Xai,
    /// Fireworks AI, `FIREWORKS_API_KEY`.
    Fireworks,
    /// A local Ollama server; no key needed (`OLLAMA_API_KEY` is sent when set).
    Ollama,
    /// A vLLM server; a key only when it was started with `--api-key` (`VLLM_API_KEY`).
    Vllm,
}

impl Preset {
    /// The provider name on responses and errors.
    pub fn name(self) -> &'static str {
        match self {
            Preset::OpenRouter => "openrouter",
            Preset::Groq => "groq",
            Preset::Together => "together",
            Preset::Mistral => "mistral",
            Preset::Xai => "xai",
            Preset::Fireworks => "fireworks",
            Preset::Ollama => "ollama",
            Preset::Vllm => "vllm",
        }
    }

    /// The default base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Preset::OpenRouter => "https://openrouter.ai/api/v1",
            Preset::Groq => "https://api.groq.com/openai/v1",
            Preset::Together => "https://api.together.xyz/v1",
            Preset::Mistral => "https://api.mistral.ai/v1",
            Preset::Xai => "https://api.x.ai/v1",
            Preset::Fireworks => "https://api.fireworks.ai/inference/v1",
            Preset::Ollama => "http://localhost:11434/v1",
            Preset::Vllm => "http://localhost:8000/v1",
        }
    }

    /// The environment variable holding the key.
    pub fn api_key_env(self) -> &'static str {
        match self {
            Preset::OpenRouter => "OPENROUTER_API_KEY",
            Preset::Groq => "GROQ_API_KEY",
            Preset::Together => "TOGETHER_API_KEY",
            Preset::Mistral => "MISTRAL_API_KEY",
            Preset::Xai => "XAI_API_KEY",
            Preset::Fireworks => "FIREWORKS_API_KEY",
            Preset::Ollama => "OLLAMA_API_KEY",
            Preset::Vllm => "VLLM_API_KEY",
        }
    }

    /// The environment variable that overrides the base URL (`GROQ_BASE_URL`, …).
    pub fn base_url_env(self) -> String {
        format!("{}_BASE_URL", self.name().to_ascii_uppercase())
    }

    /// Whether the service needs a key.
    pub fn key_required(self) -> bool {
        !matches!(self, Preset::Ollama | Preset::Vllm)
    }
}

/// An OpenAI-compatible chat service.
///
/// ```
/// use modelgate::providers::{OpenAiCompatible, Preset};
/// let groq = OpenAiCompatible::preset(Preset::Groq).api_key("gsk-…").build()?;
/// let local = OpenAiCompatible::builder("my-vllm").base_url("http://127.0.0.1:8000/v1").build()?;
/// # Ok::<(), modelgate::Error>(())
/// ```
#[derive(Debug)]
pub struct OpenAiCompatible {
    http: HttpProvider,
}

/// Builds an [`OpenAiCompatible`] provider. Setters never fail; `build()` checks.
#[must_use]
#[derive(Debug)]
pub struct OpenAiCompatibleBuilder {
    settings: Settings,
    name: String,
    default_base: Option<&'static str>,
    key_required: bool,
}

impl OpenAiCompatible {
    /// A builder for a service called `name`; it needs a base URL, and a key if the service
    /// wants one.
    pub fn builder(name: impl Into<String>) -> OpenAiCompatibleBuilder {
        OpenAiCompatibleBuilder {
            settings: Settings::default(),
            name: name.into(),
            default_base: None,
            key_required: false,
        }
    }

    /// A builder preset for a known service (name, base URL, whether a key is needed).
    pub fn preset(preset: Preset) -> OpenAiCompatibleBuilder {
        OpenAiCompatibleBuilder {
            settings: Settings::default(),
            name: preset.name().to_owned(),
            default_base: Some(preset.base_url()),
            key_required: preset.key_required(),
        }
    }

    /// A preset service configured from its environment variables (key and optional base URL).
    ///
    /// # Errors
    /// `ErrorKind::Config` when a required key is not set or a value is invalid.
    pub fn from_env(preset: Preset) -> Result<Self, Error> {
        Self::from_vars(preset, env_var)
    }

    /// As [`OpenAiCompatible::from_env`], reading variables through `var`.
    pub(crate) fn from_vars(
        preset: Preset,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut builder = Self::preset(preset);
        builder.settings = Settings::from_vars(
            preset.api_key_env(),
            &preset.base_url_env(),
            preset.key_required(),
            var,
        )?;
        builder.build()
    }
}

impl OpenAiCompatibleBuilder {
    common_builder_methods!();

    /// Builds the provider.
    ///
    /// # Errors
    /// `ErrorKind::Config` when there is no base URL, a preset's required key is missing, the
    /// base URL is not an http(s) URL, a header is invalid or a timeout is zero.
    pub fn build(self) -> Result<OpenAiCompatible, Error> {
        let default_base = match (self.default_base, &self.settings.base_url) {
            (Some(base), _) => base,
            (None, Some(_)) => "",
            (None, None) => {
                return Err(Error::config(format!(
                    "{}: no base URL was given",
                    self.name
                )));
            }
        };
        Ok(OpenAiCompatible {
            http: HttpProvider::new(
                self.settings.endpoint(
                    &self.name,
                    default_base,
                    Auth::Bearer,
                    self.key_required,
                    HeaderMap::new(),
                )?,
                OpenAiDialect {
                    provider: self.name,
                    flavor: Flavor::Compat,
                    path: "/chat/completions",
                },
            ),
        })
    }
}

http_chat_provider!(OpenAiCompatible);
