//! # modelgate
//!
//! One Rust API for every LLM provider (OpenAI, Anthropic, Gemini, DeepSeek and any
//! OpenAI-compatible service), with one request type, one normalized response and one stream of
//! deltas, whatever answered.
//!
//! ```no_run
//! use modelgate::{ChatProvider, ChatRequest};
//! use modelgate::providers::OpenAi;
//! use futures::StreamExt;
//!
//! # async fn demo() -> Result<(), modelgate::Error> {
//! let openai = OpenAi::from_env()?;
//! let req = ChatRequest::new("gpt-4o-mini").system("Be brief.").user("Why is the sky blue?");
//!
//! let answer = openai.chat(&req).await?;
//! println!("{} ({:?})", answer.text(), answer.usage);
//!
//! let mut stream = openai.chat_stream(&req).await?;
//! while let Some(delta) = stream.next().await {
//!     if let modelgate::Delta::Text(t) = delta? {
//!         print!("{t}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Errors
//!
//! Every failure is an [`Error`] with an [`ErrorKind`]; [`Error::is_retryable`] and
//! [`Error::should_fallback`] classify it once for retry, fallback and circuit-breaking logic.
//! Streams never end cleanly unless the provider's terminal marker arrived: a cut stream ends
//! with [`ErrorKind::StreamTruncated`].
//!
//! ## Credentials
//!
//! Every provider builder takes a fixed key (`.api_key(..)`) or a
//! [`CredentialSource`](credentials::CredentialSource) asked at each request
//! (`.api_key_source(..)`): an environment variable, a file re-read when it changes, a command
//! re-run after a TTL, or your own. See [`credentials`].
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `openai` | yes | [`providers::OpenAi`] |
//! | `deepseek` | yes | [`providers::DeepSeek`] |
//! | `compat` | yes | [`providers::OpenAiCompatible`] with presets (OpenRouter, Groq, Together, Mistral, xAI, Fireworks, Ollama, vLLM) |
//! | `anthropic` | yes | [`providers::Anthropic`] (Claude, Messages API) |
//! | `gemini` | yes | [`providers::Gemini`] (generateContent) |
//! | `simulator` | yes | `simulator`: an in-process fault-injecting provider simulator |
//! | `rustls` | yes | TLS through rustls |
//! | `native-tls` | no | TLS through the platform's library |
//! | `tokenizer` | no | exact token counts for OpenAI models in [`tokens::count_request`] (tiktoken-rs) |
//! | `config` | no | [`config`]: the gateway's config file (TOML or JSON) as typed structs, with errors naming the file and key path, and reference checks |
//! | `metrics` | no | the router's counters and histograms (duration, time to first chunk, tokens, cost, errors) through the [`metrics`](https://docs.rs/metrics) facade |
#![cfg_attr(docsrs, feature(doc_cfg))]
// Code shared by several providers (the transport, the OpenAI format's flavors, serde helpers) is
// partly unused when only some providers are compiled in; the full build is linted strictly.
#![cfg_attr(
    not(all(
        feature = "openai",
        feature = "deepseek",
        feature = "compat",
        feature = "anthropic",
        feature = "gemini"
    )),
    allow(dead_code, unused_imports, unused_macros)
)]

#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config;
pub mod credentials;
mod error;
pub mod pricing;
mod provider;
pub mod providers;
pub mod router;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod state;
pub mod tokens;
mod transport;
pub mod types;

#[cfg(feature = "simulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "simulator")))]
pub mod simulator;

pub use error::{Error, ErrorKind};
pub use provider::{CallOptions, ChatProvider};
pub use transport::Timeouts;
pub use types::{
    ChatRequest, ChatResponse, ChatStream, ContentPart, Delta, FinishReason, Message,
    RateLimitStatus, ResponseFormat, Role, Tool, ToolCall, ToolChoice, Usage,
};

/// The README's code blocks, compiled as doctests.
#[cfg(all(
    doctest,
    feature = "openai",
    feature = "deepseek",
    feature = "anthropic",
    feature = "gemini"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// Every public handle must be shareable across tasks.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    fn is_send<T: Send>() {}
    is::<Error>();
    is_send::<ChatStream>();
    is::<std::sync::Arc<dyn ChatProvider>>();
    is::<router::Router>();
    is::<std::sync::Arc<dyn state::StateStore>>();
    is::<state::MemoryStore>();
    is::<pricing::PriceTable>();
    #[cfg(feature = "config")]
    is::<config::GatewayConfig>();
    is::<std::sync::Arc<dyn credentials::CredentialSource>>();
    #[cfg(feature = "openai")]
    is::<providers::OpenAi>();
    #[cfg(feature = "deepseek")]
    is::<providers::DeepSeek>();
    #[cfg(feature = "compat")]
    is::<providers::OpenAiCompatible>();
    #[cfg(feature = "anthropic")]
    is::<providers::Anthropic>();
    #[cfg(feature = "gemini")]
    is::<providers::Gemini>();
}
