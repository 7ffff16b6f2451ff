//! The normalized chat response.

use crate::types::message::Message;
use crate::types::rate_limit::RateLimitStatus;
use crate::types::route::RouteInfo;
use crate::types::tool::ToolCall;
use crate::types::usage::Usage;

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit was reached.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider withheld content for safety reasons.
    ContentFilter,
    /// Anything else, with the provider's own name for it.
    Other(String),
}

/// A complete answer, whichever provider gave it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The provider's id for the answer.
    pub id: String,
    /// The provider that answered (`"openai"`, `"deepseek"`, …).
    pub provider: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// The assistant's message: text parts and tool calls.
    pub message: Message,
    /// The model's reasoning, when it shared it.
    pub reasoning: Option<String>,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// Token counts, when the provider reported them.
    pub usage: Option<Usage>,
    /// The cost in US dollars, when known (reported by the provider, such as OpenRouter's
    /// `usage.cost`, or computed from a price table).
    pub cost: Option<f64>,
    /// How a router served the request; `None` when a provider was called directly.
    pub route: Option<RouteInfo>,
    /// The quota the provider announced in the answer's headers (`x-ratelimit-*`,
    /// `anthropic-ratelimit-*`); `None` when it sent none. Through a router, the quota of the
    /// target that answered.
    pub rate_limit: Option<RateLimitStatus>,
}

impl ChatResponse {
    /// A response from `provider`'s `model` with this message, finish reason `Stop` and
    /// nothing else known (no id, usage, cost, route or rate limit): the start for a custom
    /// [`ChatProvider`](crate::ChatProvider) or a test double. Set the other fields directly.
    pub fn new(provider: impl Into<String>, model: impl Into<String>, message: Message) -> Self {
        ChatResponse {
            id: String::new(),
            provider: provider.into(),
            model: model.into(),
            message,
            reasoning: None,
            finish_reason: FinishReason::Stop,
            usage: None,
            cost: None,
            route: None,
            rate_limit: None,
        }
    }

    /// All text parts of the answer joined.
    pub fn text(&self) -> String {
        self.message.text_content()
    }

    /// The tool calls of the answer.
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.message.tool_calls
    }
}
