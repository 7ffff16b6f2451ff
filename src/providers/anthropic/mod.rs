//! Anthropic (Claude) through the Messages API.
//!
//! API reference: <https://docs.anthropic.com/en/api/messages>.
//! Streaming: <https://docs.anthropic.com/en/docs/build-with-claude/streaming>.
//! Tool use: <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview>.
//! Extended thinking: <https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>.
//! Errors: <https://docs.anthropic.com/en/api/errors>.
//! Rate limits: <https://docs.anthropic.com/en/api/rate-limits>.
//! Versions and beta headers: <https://docs.anthropic.com/en/api/versioning>,
//! <https://docs.anthropic.com/en/api/beta-headers>.
//! Pricing: <https://www.anthropic.com/pricing#api>.
//!
//! The translation rules are documented on [`Anthropic`], where users see them.

mod request;
mod response;
mod stream;

use std::time::SystemTime;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::error::Error;
use crate::providers::common::{Auth, Settings, common_builder_methods};
use crate::providers::http::{HttpProvider, http_chat_provider};
use crate::transport::{Call, Dialect, ErrorDetail, StreamDecoder, WireRequest};
use crate::types::{ChatRequest, ChatResponse};

/// The official API's base URL (the `/v1/messages` path is appended to it).
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` header sent with every request.
const API_VERSION: &str = "2023-06-01";

/// Anthropic's Claude models through the Messages API (`POST /v1/messages`).
///
/// ```no_run
/// # async fn demo() -> Result<(), modelgate::Error> {
/// use modelgate::{ChatProvider, ChatRequest};
/// use modelgate::providers::Anthropic;
/// let claude = Anthropic::from_env()?;
/// let req = ChatRequest::new("claude-sonnet-4-5").system("Be brief.").user("Hi!");
/// let answer = claude.chat(&req).await?;
/// println!("{}", answer.text());
/// # Ok(()) }
/// ```
///
/// # How requests are translated
///
/// - **System and developer messages**, wherever they appear, are lifted into the top-level
///   `system` field, in order: a plain string for one message, text blocks for several. They
///   may carry text only.
/// - **Roles.** User messages become `user` turns with `text` and `image` blocks. Images by
///   `http(s)` URL are sent as `{"type":"url"}` sources, `data:` URLs and inline bytes as
///   `{"type":"base64"}` sources. Tool results ([`Role::Tool`](crate::Role)) become
///   `tool_result` blocks (with `is_error` when [`Message::is_error`](crate::Message) is set)
///   in a `user` turn. Assistant messages become `assistant` turns: the reasoning first, as
///   `thinking` blocks: one per signed [`Message::reasoning_blocks`](crate::Message) entry, each
///   with its own signature, or else one block of `reasoning` when it has its
///   `reasoning_signature` (reasoning without one, from another provider, is not sent); then
///   text; then a `tool_use` block per call, whose JSON arguments become the
///   `input` object (arguments that are not a JSON object fail with
///   `ErrorKind::InvalidRequest`). Empty text parts are left out, and a message left with
///   nothing to send is skipped. Audio is refused with
///   `ErrorKind::InvalidRequest`, as are images in assistant turns.
/// - **Consecutive messages of the same role are merged** into one turn, as the API requires:
///   several tool results answering one assistant turn travel in one `user` message. Within a
///   merged turn, `tool_result` blocks (user) and `thinking` blocks (assistant) are moved first,
///   as the API demands; other blocks keep their order.
/// - **`max_tokens` is required** by the API. It is, in order: the request's
///   [`ChatRequest::max_tokens`]; else the builder's
///   [`default_max_tokens`](AnthropicBuilder::default_max_tokens); else a per-model default:
///   8192 for `claude-3-5-*`, `claude-3-7-*` and the Claude 4 families (`claude-opus-4*`,
///   `claude-sonnet-4*`, `claude-haiku-4*`), 4096 for every other model. When extended
///   thinking is on and the request gave no `max_tokens`, the thinking budget is added to
///   that default, so the answer keeps room after the thinking.
/// - **Extended thinking.** [`Reasoning::Budget(n)`](crate::types::Reasoning) becomes
///   `thinking: {"type":"enabled","budget_tokens":n}`; `n` below 1024 (the API's minimum), or
///   a request `max_tokens` not above `n`, fails with `ErrorKind::InvalidRequest`.
///   [`Reasoning::Effort`](crate::types::Reasoning) is mapped to a budget: low 1024, medium
///   4096, high 16384. The API refuses `temperature` (other than 1) and `top_p` below 0.95
///   while thinking; those are sent as given and the API's answer surfaces.
/// - **Tools** become `{name, description, input_schema}` (a missing schema becomes an empty
///   object schema). [`ToolChoice`](crate::ToolChoice) `Auto` → `auto`, `Required` → `any`,
///   `Function(name)` → `{"type":"tool","name"}`, `None` → `none`;
///   `parallel_tool_calls(false)` adds `disable_parallel_tool_use: true` (with `auto` when no
///   choice was given). No `tool_choice` is sent without tools.
/// - `temperature`, `top_p` and stop sequences (`stop_sequences`) are passed through;
///   [`ChatRequest::seed`] is ignored (the API has none).
/// - **`response_format`** is emulated as Anthropic documents it, through a tool: the Messages
///   API has no JSON mode. [`ResponseFormat::JsonSchema`](crate::ResponseFormat) adds a tool
///   named `modelgate_json` whose `input_schema` is the schema;
///   [`ResponseFormat::JsonObject`](crate::ResponseFormat) adds it with the schema
///   `{"type":"object"}`. Without tools of the caller's it is forced
///   (`tool_choice: {"type":"tool","name":"modelgate_json"}`); with them the choice is `any`
///   (the model calls one of them or answers), unless `ToolChoice::Function` forces one of
///   them; `ToolChoice::None` fails with `ErrorKind::InvalidRequest`, as does a tool of the
///   caller's named `modelgate_json`. While extended thinking is on the choice is `auto`, as
///   the API refuses a forced tool then. The call's input comes back as the answer's text (in
///   streams, its `input_json_delta` fragments are [`Delta::Text`](crate::Delta); an empty input
///   is `{}`), never as a [`ToolCall`](crate::ToolCall), and a turn that ends on it finishes
///   with `Stop`, not `ToolCalls`.
/// - [`ChatRequest::extra`] fields are merged into the top level of the body and override it.
///
/// # How answers are translated
///
/// - `text` blocks are joined into the message text; `tool_use` blocks become
///   [`ToolCall`](crate::ToolCall)s with their `input` as JSON text; `thinking` blocks become
///   [`Message::reasoning_blocks`](crate::Message), each with its own signature, so that a turn
///   with several thinking blocks round-trips exactly; [`ChatResponse::reasoning`] and the
///   message's `reasoning` join their texts (and `reasoning_signature` their signatures);
///   `redacted_thinking` and server-tool blocks are skipped. Streams send each block's
///   signature whole, as one `ReasoningSignature` after its reasoning, and the fold keeps the
///   blocks apart the same way.
/// - `stop_reason`: `end_turn` and `stop_sequence` → `Stop`; `max_tokens` and
///   `model_context_window_exceeded` → `Length` (the answer was cut either way); `tool_use` →
///   `ToolCalls`; `refusal` → `ContentFilter`; anything else (`pause_turn`, …) →
///   `Other(name)`.
/// - **Usage.** Anthropic's `input_tokens` counts only the uncached part of the prompt, while
///   [`Usage::input_tokens`](crate::Usage) counts the whole prompt: it is `input_tokens +
///   cache_read_input_tokens + cache_creation_input_tokens`. `cache_read_input_tokens` is
///   [`Usage::cached_input_tokens`](crate::Usage) and `cache_creation_input_tokens` is kept as
///   is. The API does not report thinking tokens apart, so `reasoning_tokens` stays 0.
/// - **Streams**: `message_start` gives the id, model and prompt usage; each `tool_use` block
///   start gives a [`Delta::ToolCall`](crate::Delta) with id and name, whose `index` counts
///   tool calls (not content blocks); `text_delta`, `input_json_delta`, `thinking_delta` and
///   `signature_delta` become `Text`, `ToolCall` fragments, `Reasoning` and
///   `ReasoningSignature`; a tool call whose input arrives empty (one empty `input_json_delta`,
///   or none) gets the arguments `{}` when its block stops, so that every folded call holds
///   valid JSON; `message_delta` gives the `Finish` and one `Usage` with the
///   cumulative totals; `message_stop` ends the stream (without it the stream ends with
///   `ErrorKind::StreamTruncated`). `ping` and unknown events are ignored. An `error` event
///   becomes an `Err` item with the kind its type says.
///
/// # Errors
///
/// The error body `{"type":"error","error":{"type","message"}}` is read by type:
/// `overloaded_error` (HTTP 529) → `Overloaded`; `rate_limit_error` → `RateLimited`, with
/// [`Error::retry_after`] from `retry-after`; `authentication_error` and `permission_error` →
/// `Auth`; `not_found_error` → `NotFound`; `billing_error`, and an `invalid_request_error` about
/// a too-low credit balance, → `QuotaExceeded`; an `invalid_request_error` saying the prompt is
/// too long (or input plus `max_tokens` exceeds the context limit) → `ContextLength`; other
/// `invalid_request_error`s → `InvalidRequest`; `api_error` → `Server`; `timeout_error` →
/// `Timeout`. HTTP 413 `request_too_large` is `InvalidRequest`: it is the 32 MB byte limit on
/// the HTTP body, enforced before the model is chosen, so a model with a larger context window
/// would refuse it too. The `request-id` header is [`Error::request_id`].
/// `anthropic-ratelimit-requests-remaining` and `anthropic-ratelimit-requests-reset` are
/// [`Error::rate_limit_remaining`] and [`Error::rate_limit_reset`]; a 429 without
/// `retry-after` waits until the latest reset of the exhausted windows (requests, tokens, input
/// or output tokens).
#[derive(Debug)]
pub struct Anthropic {
    http: HttpProvider,
}

/// Builds an [`Anthropic`] provider. Setters never fail; [`AnthropicBuilder::build`] checks.
#[must_use]
#[derive(Debug, Default)]
pub struct AnthropicBuilder {
    settings: Settings,
    default_max_tokens: Option<u32>,
    betas: Vec<String>,
}

impl Anthropic {
    /// A builder with no key and the official base URL.
    pub fn builder() -> AnthropicBuilder {
        AnthropicBuilder::default()
    }

    /// A provider configured from `ANTHROPIC_API_KEY` and, when set, `ANTHROPIC_BASE_URL`.
    ///
    /// # Errors
    /// `ErrorKind::Config` when `ANTHROPIC_API_KEY` is not set or a value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        AnthropicBuilder {
            settings: Settings::from_env("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", true)?,
            ..AnthropicBuilder::default()
        }
        .build()
    }
}

impl AnthropicBuilder {
    common_builder_methods!();

    /// The `max_tokens` sent when a request sets none, replacing the per-model default (see
    /// [`Anthropic`]). Zero is refused by [`build`](AnthropicBuilder::build).
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = Some(max_tokens);
        self
    }

    /// Adds a value to the `anthropic-beta` header (such as `"prompt-caching-2024-07-31"`);
    /// several values are sent comma-separated.
    pub fn beta(mut self, feature: impl Into<String>) -> Self {
        self.betas.push(feature.into());
        self
    }

    /// Builds the provider. It sends `x-api-key` and `anthropic-version: 2023-06-01` (a
    /// [`header`](AnthropicBuilder::header) of the same name replaces the version).
    ///
    /// # Errors
    /// `ErrorKind::Config` when no API key was given, the base URL is not an http(s) URL, a
    /// header or beta value is invalid, `default_max_tokens` is zero or a timeout is zero.
    pub fn build(self) -> Result<Anthropic, Error> {
        if self.default_max_tokens == Some(0) {
            return Err(Error::config(
                "anthropic: default_max_tokens must be at least 1",
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        let betas: Vec<&str> = self
            .betas
            .iter()
            .map(|b| b.trim())
            .filter(|b| !b.is_empty())
            .collect();
        if !betas.is_empty() {
            let value = HeaderValue::from_str(&betas.join(","))
                .map_err(|_| Error::config("anthropic: invalid anthropic-beta value"))?;
            headers.insert("anthropic-beta", value);
        }
        Ok(Anthropic {
            http: HttpProvider::new(
                self.settings.endpoint(
                    "anthropic",
                    ANTHROPIC_BASE_URL,
                    Auth::Header("x-api-key"),
                    true,
                    headers,
                )?,
                AnthropicDialect {
                    default_max_tokens: self.default_max_tokens,
                },
            ),
        })
    }
}

http_chat_provider!(Anthropic);

/// The Messages API wire format.
#[derive(Debug, Clone)]
struct AnthropicDialect {
    /// The builder's `max_tokens` for requests that set none.
    default_max_tokens: Option<u32>,
}

impl Dialect for AnthropicDialect {
    fn provider(&self) -> &str {
        "anthropic"
    }

    fn encode(&self, call: &Call<'_>, stream: bool) -> Result<WireRequest, Error> {
        Ok(WireRequest {
            path: "/v1/messages".to_owned(),
            body: request::encode_call(call, stream, self.default_max_tokens)?,
        })
    }

    fn decode(&self, body: &[u8]) -> Result<ChatResponse, Error> {
        response::decode(body)
    }

    fn stream_decoder(&self, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(stream::AnthropicStream::default())
    }

    fn error_detail(&self, status: u16, body: &[u8]) -> ErrorDetail {
        response::error_detail(status, body)
    }

    fn annotate_error(&self, err: Error, headers: &HeaderMap) -> Error {
        response::annotate_error(err, headers, SystemTime::now())
    }
}
