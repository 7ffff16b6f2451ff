//! The normalized request, response and stream types shared by every provider.

pub(crate) mod media;
pub(crate) mod message;
pub(crate) mod rate_limit;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod route;
pub(crate) mod stream;
pub(crate) mod tool;
pub(crate) mod usage;

pub use media::MediaCache;
pub use message::{ContentPart, ImageSource, Message, ReasoningBlock, Role};
pub use rate_limit::RateLimitStatus;
pub use request::{ChatRequest, Reasoning, ReasoningEffort, ResponseFormat};
pub use response::{ChatResponse, FinishReason};
pub use route::{Attempt, AttemptOutcome, AttemptReason, RouteInfo};
pub use stream::{ChatStream, Delta};
pub use tool::{Tool, ToolCall, ToolChoice};
pub use usage::Usage;

/// The public structs that will grow are `#[non_exhaustive]`: code outside the crate builds them
/// through their constructors, so a new field breaks no one. Each block below must not compile.
///
/// ```compile_fail,E0639
/// let _ = modelgate::Usage { input_tokens: 1, output_tokens: 2, cached_input_tokens: 0,
///     cache_creation_input_tokens: 0, reasoning_tokens: 0 };
/// ```
/// ```compile_fail,E0639
/// let _ = modelgate::ChatResponse { id: String::new(), provider: String::new(),
///     model: String::new(), message: modelgate::Message::assistant(""), reasoning: None,
///     finish_reason: modelgate::FinishReason::Stop, usage: None, cost: None, route: None,
///     rate_limit: None };
/// ```
/// ```compile_fail,E0639
/// let _ = modelgate::types::RouteInfo { route: String::new(), target_index: None,
///     attempts: Vec::new() };
/// ```
/// ```compile_fail,E0639
/// use modelgate::types::{Attempt, AttemptOutcome, AttemptReason};
/// let _ = Attempt { provider: String::new(), model: String::new(),
///     reason: AttemptReason::First, outcome: AttemptOutcome::Success,
///     latency: std::time::Duration::ZERO };
/// ```
/// ```compile_fail,E0639
/// use std::time::Duration;
/// let _ = modelgate::Timeouts { connect: Duration::ZERO, first_byte: Duration::ZERO,
///     idle: Duration::ZERO, total: None };
/// ```
/// ```compile_fail,E0639
/// let _ = modelgate::RateLimitStatus { remaining_requests: None, remaining_tokens: None,
///     requests_reset: None, tokens_reset: None };
/// ```
/// ```compile_fail,E0639
/// let _ = modelgate::ChatRequest { model: "m".into(), ..Default::default() };
/// ```
/// ```compile_fail,E0639
/// let _ = modelgate::ToolCall { id: String::new(), name: String::new(),
///     arguments: String::new(), signature: None };
/// ```
/// ```compile_fail
/// // A match on the circuit's state must allow for states to come.
/// fn f(s: modelgate::router::CircuitStatus) -> u8 {
///     use modelgate::router::CircuitStatus::*;
///     match s { Closed => 0, Open => 1, HalfOpen => 2 }
/// }
/// ```
/// And they can be built:
/// ```
/// use std::time::Duration;
/// use modelgate::{ChatResponse, Message, Timeouts, Usage};
/// let usage = Usage::new(10, 5).with_cached_input_tokens(4).with_reasoning_tokens(2);
/// let mut response = ChatResponse::new("mine", "m1", Message::assistant("hi"));
/// response.usage = Some(usage);
/// let timeouts = Timeouts::default().with_idle(Duration::from_secs(30)).with_total(None);
/// assert_eq!(response.usage.unwrap().total_tokens(), 15);
/// assert_eq!(timeouts.total, None);
/// ```
#[allow(dead_code)]
struct NonExhaustiveChecks;
