//! [`Scenario`]: what the simulator answers to one request, and which faults it injects.
//!
//! A scenario is wire-neutral: it says "answer with this text and these tool calls" or "be
//! overloaded", and each wire module renders that in its provider's native format. This is what
//! lets one router test run the same story against OpenAI, Anthropic and Gemini targets.

use std::time::Duration;

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};

/// One scripted answer of the [`Simulator`](super::Simulator), built with chained methods.
///
/// Start from an answer ([`Scenario::text`], [`Scenario::echo`], [`Scenario::tool_call`]) or a
/// failure ([`Scenario::error`], [`Scenario::rate_limited`], [`Scenario::overloaded`]), then add
/// content and faults:
///
/// ```
/// # use modelgate::simulator::Scenario;
/// # use std::time::Duration;
/// let slow_tool_call = Scenario::text("Let me check.")
///     .with_tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#)
///     .with_first_byte_delay(Duration::from_secs(2))
///     .with_chunk_chars(2);
/// # let _ = slow_tool_call;
/// ```
///
/// Token counts follow the normalized convention: `input` counts every prompt token, cached ones
/// included, and `output` counts every generated token, reasoning included. Each wire reports
/// them the way its provider does (for example Anthropic's `input_tokens` excludes cache reads).
///
/// Content methods (`with_reasoning`, `with_tool_call`, `with_usage`, …) only matter for answers;
/// on an error scenario they are kept but unused. Stream faults (`with_stall_after`,
/// `with_truncate_after`, `with_malformed_chunk_at`, `with_error_event_at`, `with_chunk_delay`) only
/// apply when the request asked for a stream. Events are counted from 0 in the order the wire
/// sends them (for OpenAI the first event is the `role` chunk, for Anthropic `message_start`).
/// A Gemini stream requested without `alt=sse` is one JSON array, not events, and takes none
/// of the stream faults.
#[derive(Clone, Debug)]
#[must_use]
pub struct Scenario {
    pub(super) outcome: Outcome,
    pub(super) answer: AnswerSpec,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) rate_limit: Option<RateLimitSpec>,
    pub(super) faults: Faults,
}

/// The quota an answer announces, rendered in each wire's own headers.
#[derive(Clone, Copy, Debug)]
pub(super) struct RateLimitSpec {
    pub(super) remaining_requests: u64,
    pub(super) remaining_tokens: u64,
    pub(super) reset: Duration,
}

/// Whether the scenario answers or fails, and how.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Answer,
    Error { status: StatusCode, body: String },
    RateLimited(Duration),
    Overloaded,
}

/// The assistant message an answer carries, before it is resolved against a request.
#[derive(Clone, Debug)]
pub(super) struct AnswerSpec {
    pub(super) text: TextSpec,
    pub(super) reasoning: Option<String>,
    pub(super) tool_calls: Vec<ToolCallSpec>,
    pub(super) usage: Option<(u64, u64)>,
    pub(super) cached_tokens: u64,
    pub(super) reasoning_tokens: Option<u64>,
    pub(super) model: Option<String>,
    pub(super) chunk_chars: usize,
}

/// The answer's text: fixed, or derived from the request.
#[derive(Clone, Debug)]
pub(super) enum TextSpec {
    Fixed(String),
    /// "You said: <last user text>"; handy as a default because it proves the prompt arrived.
    Echo,
}

/// One function call the answer makes.
#[derive(Clone, Debug)]
pub(super) struct ToolCallSpec {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) arguments: String,
}

/// Timing and framing faults.
#[derive(Clone, Debug, Default)]
pub(super) struct Faults {
    pub(super) first_byte_delay: Duration,
    pub(super) chunk_delay: Duration,
    pub(super) stall_after: Option<usize>,
    pub(super) truncate_after: Option<usize>,
    pub(super) malformed_at: Option<usize>,
    pub(super) error_event_at: Option<usize>,
    pub(super) piece_size: Option<usize>,
}

/// Characters of text per streamed delta when [`Scenario::with_chunk_chars`] is not called.
const DEFAULT_CHUNK_CHARS: usize = 4;

impl Scenario {
    fn with_outcome(outcome: Outcome, text: TextSpec) -> Self {
        Scenario {
            outcome,
            answer: AnswerSpec {
                text,
                reasoning: None,
                tool_calls: Vec::new(),
                usage: None,
                cached_tokens: 0,
                reasoning_tokens: None,
                model: None,
                chunk_chars: DEFAULT_CHUNK_CHARS,
            },
            headers: Vec::new(),
            rate_limit: None,
            faults: Faults::default(),
        }
    }

    /// An assistant answer with this text (may be empty, e.g. beside tool calls).
    pub fn text(text: impl Into<String>) -> Self {
        Self::with_outcome(Outcome::Answer, TextSpec::Fixed(text.into()))
    }

    /// An answer that repeats the prompt: `"You said: <text of the last user message>"`.
    ///
    /// This is the simulator's initial default, so a test that enqueues nothing still gets a
    /// well-formed answer that shows which prompt arrived.
    pub fn echo() -> Self {
        Self::with_outcome(Outcome::Answer, TextSpec::Echo)
    }

    /// An answer with no text and one function call; shorthand for
    /// `Scenario::text("").with_tool_call(id, name, arguments_json)`.
    pub fn tool_call(id: &str, name: &str, arguments_json: &str) -> Self {
        Self::text("").with_tool_call(id, name, arguments_json)
    }

    /// Adds reasoning ("thinking") before the answer.
    ///
    /// Rendered as DeepSeek's `reasoning_content`, an Anthropic `thinking` block with a
    /// signature, or Gemini parts with `thought: true`. OpenAI's Chat Completions API does not
    /// return reasoning text, so on that wire it only shows in `reasoning_tokens`.
    pub fn with_reasoning(mut self, reasoning: impl Into<String>) -> Self {
        self.answer.reasoning = Some(reasoning.into());
        self
    }

    /// Adds a function call to the answer; call it several times for parallel tool calls.
    ///
    /// `arguments_json` should be a JSON object. OpenAI-style wires send it verbatim as a string;
    /// Anthropic and Gemini send it as an object, and fall back to a JSON string if it does not
    /// parse (which a real provider would never do, so only use that to test client errors).
    /// Gemini's `functionCall` carries no id, so `id` is not sent on that wire.
    pub fn with_tool_call(mut self, id: &str, name: &str, arguments_json: &str) -> Self {
        self.answer.tool_calls.push(ToolCallSpec {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments_json.to_owned(),
        });
        self
    }

    /// Sets the reported token usage: `input` prompt tokens (cached ones included) and `output`
    /// generated tokens (reasoning included).
    ///
    /// Without it both are estimated from text lengths, about one token per four characters and
    /// at least one.
    pub fn with_usage(mut self, input: u64, output: u64) -> Self {
        self.answer.usage = Some((input, output));
        self
    }

    /// Reports this many of the input tokens as served from the provider's prompt cache
    /// (default 0).
    pub fn with_cached_tokens(mut self, cached: u64) -> Self {
        self.answer.cached_tokens = cached;
        self
    }

    /// Reports this many of the output tokens as reasoning tokens.
    ///
    /// Default: estimated from the reasoning text, or 0 without [`Scenario::with_reasoning`].
    pub fn with_reasoning_tokens(mut self, n: u64) -> Self {
        self.answer.reasoning_tokens = Some(n);
        self
    }

    /// Reports this model name in the answer instead of the requested one (as when a provider
    /// resolves an alias such as `gpt-4o` to a dated snapshot).
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.answer.model = Some(model.into());
        self
    }

    /// Sets how many characters of text or reasoning each streamed delta carries (default 4;
    /// 0 counts as 1).
    pub fn with_chunk_chars(mut self, n: usize) -> Self {
        self.answer.chunk_chars = n.max(1);
        self
    }

    /// Fails with this HTTP status and this raw body, sent as `application/json` whatever it
    /// holds (streaming requests get the same non-streamed answer).
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100–999).
    pub fn error(status: u16, body: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("Scenario::error: invalid HTTP status {status}"));
        Self::with_outcome(
            Outcome::Error {
                status,
                body: body.into(),
            },
            TextSpec::Echo,
        )
    }

    /// Fails with HTTP 429 and the provider's native rate-limit body, asking the client to wait
    /// `retry_after`.
    ///
    /// Every wire gets the headers `retry-after-ms` (milliseconds) and `retry-after` (whole
    /// seconds, rounded up). The body is OpenAI's `rate_limit_exceeded` error, Anthropic's
    /// `rate_limit_error`, or Gemini's `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo`
    /// `retryDelay`. To test a client that must read the delay from Gemini's body alone, send
    /// such a body with [`Scenario::error`] instead.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::with_outcome(Outcome::RateLimited(retry_after), TextSpec::Echo)
    }

    /// Fails the way the provider does when overloaded: HTTP 503 for OpenAI and DeepSeek,
    /// 529 `overloaded_error` for Anthropic, 503 `UNAVAILABLE` for Gemini.
    pub fn overloaded() -> Self {
        Self::with_outcome(Outcome::Overloaded, TextSpec::Echo)
    }

    /// Adds a response header, e.g. `retry-after` on an [`Scenario::error`]. It is sent after
    /// the simulator's own headers, so it can add to but not remove them.
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not valid in an HTTP header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("Scenario::with_header: invalid header name {name:?}"));
        let header_value = HeaderValue::from_str(value).unwrap_or_else(|_| {
            panic!("Scenario::with_header: invalid value for {name}: {value:?}")
        });
        self.headers.push((header_name, header_value));
        self
    }

    /// Announces the remaining quota on the answer, in the wire's own headers: for OpenAI and
    /// DeepSeek `x-ratelimit-remaining-requests`, `x-ratelimit-remaining-tokens` and
    /// `x-ratelimit-reset-{requests,tokens}` (Go durations such as `1.5s` or `6m0s`); for
    /// Anthropic `anthropic-ratelimit-{requests,tokens}-remaining` and `-reset` (RFC 3339 times,
    /// `reset` after the system clock, to the second). Gemini sends no such headers, so neither
    /// does the simulator there. Only answers carry them; error scenarios ignore it
    /// ([`Scenario::rate_limited`] sends its own).
    pub fn with_rate_limit(
        mut self,
        remaining_requests: u64,
        remaining_tokens: u64,
        reset: Duration,
    ) -> Self {
        self.rate_limit = Some(RateLimitSpec {
            remaining_requests,
            remaining_tokens,
            reset,
        });
        self
    }

    /// Waits this long (on tokio's clock) before sending the response status and headers.
    pub fn with_first_byte_delay(mut self, d: Duration) -> Self {
        self.faults.first_byte_delay = d;
        self
    }

    /// Streams: waits this long (on tokio's clock) before each event.
    pub fn with_chunk_delay(mut self, d: Duration) -> Self {
        self.faults.chunk_delay = d;
        self
    }

    /// Streams: after `events` events, sends nothing more but keeps the connection open until
    /// the client goes away (the connection is then closed promptly).
    pub fn with_stall_after(mut self, events: usize) -> Self {
        self.faults.stall_after = Some(events);
        self
    }

    /// Streams: ends the body cleanly after `events` events, never sending the terminal marker
    /// (`[DONE]`, `message_stop`, or Gemini's chunk with `finishReason`), even when `events` is
    /// larger than the stream.
    pub fn with_truncate_after(mut self, events: usize) -> Self {
        self.faults.truncate_after = Some(events);
        self
    }

    /// Streams: event number `event` (from 0) carries invalid JSON (its JSON cut in half) in
    /// otherwise valid SSE framing.
    pub fn with_malformed_chunk_at(mut self, event: usize) -> Self {
        self.faults.malformed_at = Some(event);
        self
    }

    /// Streams: event number `event` (from 0) is replaced by the wire's native mid-stream error,
    /// and the body ends after it.
    ///
    /// OpenAI and DeepSeek send `data: {"error":{…}}`; Anthropic `event: error` with an
    /// `overloaded_error`; Gemini a bare, pretty-printed `{"error":{…}}` object outside SSE
    /// framing, as its servers do. An `event` past the end replaces the terminal marker.
    pub fn with_error_event_at(mut self, event: usize) -> Self {
        self.faults.error_event_at = Some(event);
        self
    }

    /// Writes the response body in pieces of at most `bytes` bytes (0 counts as 1), each
    /// flushed on its own, so clients meet events and UTF-8 characters split across reads.
    /// Without it, each streamed event is written whole and a non-streamed body at once.
    pub fn with_piece_size(mut self, bytes: usize) -> Self {
        self.faults.piece_size = Some(bytes.max(1));
        self
    }
}
