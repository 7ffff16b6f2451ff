//! The normalized request, response and stream types shared by every provider.

pub(crate) mod media;
pub(crate) mod message;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod route;
pub(crate) mod stream;
pub(crate) mod tool;
pub(crate) mod usage;

pub use media::MediaCache;
pub use message::{ContentPart, ImageSource, Message, Role};
pub use request::{ChatRequest, Reasoning, ReasoningEffort, ResponseFormat};
pub use response::{ChatResponse, FinishReason};
pub use route::{Attempt, AttemptOutcome, AttemptReason, RouteInfo};
pub use stream::{ChatStream, Delta};
pub use tool::{Tool, ToolCall, ToolChoice};
pub use usage::Usage;
