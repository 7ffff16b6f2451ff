//! The normalized chat request and its builder methods.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::types::message::{ContentPart, Message, Role};
use crate::types::tool::{Tool, ToolChoice};

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// A name for the schema (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// Strict adherence (OpenAI).
        strict: bool,
    },
}

/// How much a reasoning model should think.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reasoning {
    /// OpenAI-style effort: `low`, `medium` or `high`.
    Effort(ReasoningEffort),
    /// A token budget for thinking (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    Budget(u32),
}

/// OpenAI's `reasoning_effort` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReasoningEffort {
    /// Fewer reasoning tokens, faster answers.
    Low,
    /// The provider's default.
    Medium,
    /// More reasoning tokens.
    High,
}

impl ReasoningEffort {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// A chat request: a model (or a router alias), a conversation and sampling options.
///
/// It is a plain value; every builder method takes `self` and cannot fail. Providers check what
/// they cannot express when the request is sent, and fail with `ErrorKind::InvalidRequest`.
///
/// ```
/// use modelgate::{ChatRequest, Tool};
/// let req = ChatRequest::new("gpt-4o-mini")
///     .system("You are terse.")
///     .user("What is the capital of France?")
///     .temperature(0.2)
///     .max_tokens(100)
///     .metadata("tier", "free");
/// assert_eq!(req.messages.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The provider's model name, or a route alias when sent through a router.
    pub model: String,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// The most tokens to generate (OpenAI `max_completion_tokens`, Anthropic `max_tokens`, Gemini
    /// `maxOutputTokens`).
    pub max_tokens: Option<u32>,
    /// Sequences that stop generation.
    pub stop: Vec<String>,
    /// The shape of the answer.
    pub response_format: Option<ResponseFormat>,
    /// A seed for reproducible sampling, where supported.
    pub seed: Option<u64>,
    /// Reasoning effort or budget, for reasoning models.
    pub reasoning: Option<Reasoning>,
    /// Free-form tags for routing rules and logs. Never sent to a provider.
    pub metadata: BTreeMap<String, String>,
    /// Provider-specific fields merged into the top level of the wire body as they are
    /// (they override fields the library sets).
    pub extra: Map<String, Value>,
    /// The overall deadline of the request, retries and fallbacks included.
    pub timeout: Option<Duration>,
}

impl ChatRequest {
    /// A request for `model` (a provider's model name, or a route alias) with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        ChatRequest {
            model: model.into(),
            ..ChatRequest::default()
        }
    }

    /// Appends a message.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Appends several messages.
    pub fn messages(mut self, messages: impl IntoIterator<Item = Message>) -> Self {
        self.messages.extend(messages);
        self
    }

    /// Appends a system message.
    pub fn system(self, text: impl Into<String>) -> Self {
        self.message(Message::system(text))
    }

    /// Appends a developer message (OpenAI's instructions role for reasoning models).
    pub fn developer(self, text: impl Into<String>) -> Self {
        self.message(Message::text(Role::Developer, text))
    }

    /// Appends a user message.
    pub fn user(self, text: impl Into<String>) -> Self {
        self.message(Message::user(text))
    }

    /// Appends a user message made of several parts (text, images, audio).
    pub fn user_parts(self, parts: impl IntoIterator<Item = ContentPart>) -> Self {
        let mut m = Message::new(Role::User);
        m.content.extend(parts);
        self.message(m)
    }

    /// Appends an assistant message.
    pub fn assistant(self, text: impl Into<String>) -> Self {
        self.message(Message::assistant(text))
    }

    /// Appends a tool result answering the call `tool_call_id`.
    pub fn tool_result(self, tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        self.message(Message::tool_result(tool_call_id, content))
    }

    /// Offers a tool to the model.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Offers several tools.
    pub fn tools(mut self, tools: impl IntoIterator<Item = Tool>) -> Self {
        self.tools.extend(tools);
        self
    }

    /// Sets whether and which tool the model must call.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Allows or forbids several tool calls in one turn.
    pub fn parallel_tool_calls(mut self, allowed: bool) -> Self {
        self.parallel_tool_calls = Some(allowed);
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets nucleus sampling.
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = Some(top_p);
        self
    }

    /// Sets the most tokens to generate.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds a stop sequence.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }

    /// Sets the response format.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Asks for strict JSON that follows `schema`.
    pub fn json_schema(self, name: impl Into<String>, schema: Value) -> Self {
        self.response_format(ResponseFormat::JsonSchema {
            name: name.into(),
            schema,
            strict: true,
        })
    }

    /// Sets the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets OpenAI-style reasoning effort.
    pub fn reasoning_effort(mut self, effort: ReasoningEffort) -> Self {
        self.reasoning = Some(Reasoning::Effort(effort));
        self
    }

    /// Sets a thinking budget in tokens (Anthropic, Gemini).
    pub fn thinking_budget(mut self, tokens: u32) -> Self {
        self.reasoning = Some(Reasoning::Budget(tokens));
        self
    }

    /// Adds a routing tag. Tags are read by router rules and never sent to a provider.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a provider-specific field to the wire body, as it is.
    pub fn extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Sets the overall deadline of the request, retries and fallbacks included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same request aimed at another model (what a router does for each target).
    pub fn with_model(&self, model: &str) -> ChatRequest {
        let mut req = self.clone();
        req.model = model.to_owned();
        req
    }

    /// Whether any message carries an image.
    pub fn has_images(&self) -> bool {
        self.messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|p| matches!(p, ContentPart::Image { .. }))
    }

    /// Whether any message carries audio.
    pub fn has_audio(&self) -> bool {
        self.messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|p| matches!(p, ContentPart::Audio { .. }))
    }
}
