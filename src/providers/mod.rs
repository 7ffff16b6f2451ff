//! One module per provider, each behind its cargo feature. Each is a translator between the
//! normalized types and the provider's wire format; HTTP is the transport's.

pub(crate) mod common;
#[cfg(any(
    feature = "openai",
    feature = "deepseek",
    feature = "compat",
    feature = "anthropic",
    feature = "gemini"
))]
pub(crate) mod http;
#[cfg(any(
    feature = "openai",
    feature = "deepseek",
    feature = "compat",
    feature = "anthropic",
    feature = "gemini"
))]
pub(crate) mod serde_util;

#[cfg(any(feature = "openai", feature = "deepseek", feature = "compat"))]
mod openai_format;

#[cfg(feature = "openai")]
mod openai;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub use openai::{OPENAI_BASE_URL, OpenAi, OpenAiBuilder};

#[cfg(feature = "deepseek")]
mod deepseek;
#[cfg(feature = "deepseek")]
#[cfg_attr(docsrs, doc(cfg(feature = "deepseek")))]
pub use deepseek::{DEEPSEEK_BASE_URL, DeepSeek, DeepSeekBuilder};

#[cfg(feature = "compat")]
mod compat;
#[cfg(feature = "compat")]
#[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
pub use compat::{OpenAiCompatible, OpenAiCompatibleBuilder, Preset};

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "anthropic")]
#[cfg_attr(docsrs, doc(cfg(feature = "anthropic")))]
pub use anthropic::{ANTHROPIC_BASE_URL, Anthropic, AnthropicBuilder};

#[cfg(feature = "gemini")]
mod gemini;
#[cfg(feature = "gemini")]
#[cfg_attr(docsrs, doc(cfg(feature = "gemini")))]
pub use gemini::{GEMINI_BASE_URL, Gemini, GeminiBuilder};
