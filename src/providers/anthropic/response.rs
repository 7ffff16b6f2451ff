//! Messages API JSON → normalized response; error bodies and headers → error details.

use std::borrow::Cow;
use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::request::JSON_TOOL;
use crate::error::{Error, ErrorKind};
use crate::providers::serde_util::opt_cow;
use crate::transport::ErrorDetail;
use crate::transport::retry_after::parse_rfc3339;
use crate::types::{
    ChatResponse, ContentPart, FinishReason, Message, ReasoningBlock, Role, ToolCall, Usage,
};

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Vec<WireBlock<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    signature: Option<Cow<'a, str>>,
}

/// `usage` of a message, `message_start` or `message_delta`. Every field may be absent (or
/// `null`): absent means "not reported here".
#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) output_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_read_input_tokens: Option<u64>,
    /// The cache writes split by TTL (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`).
    #[serde(default)]
    pub(super) cache_creation: Option<WireCacheCreation>,
}

/// `usage.cache_creation`: the prompt tokens written to the cache, by TTL.
#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WireCacheCreation {
    #[serde(default)]
    pub(super) ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes every count `later` reports (streamed usage is cumulative, so a later count
    /// replaces an earlier one; it is never added to it).
    pub(super) fn update(&mut self, later: &WireUsage) {
        let pairs = [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                later.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                later.cache_read_input_tokens,
            ),
        ];
        for (mine, theirs) in pairs {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        if later.cache_creation.is_some() {
            self.cache_creation = later.cache_creation;
        }
    }

    /// The normalized usage: Anthropic's `input_tokens` excludes the prompt tokens read from or
    /// written to the cache, ours includes them.
    pub(super) fn normalize(&self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let split = self.cache_creation.unwrap_or_default();
        let written_1h = split.ephemeral_1h_input_tokens.unwrap_or(0);
        // The total, or the sum of its split when only the split was sent.
        let cache_creation = self.cache_creation_input_tokens.unwrap_or_else(|| {
            split
                .ephemeral_5m_input_tokens
                .unwrap_or(0)
                .saturating_add(written_1h)
        });
        Usage {
            input_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(cache_creation),
            output_tokens: self.output_tokens.unwrap_or(0),
            cached_input_tokens: cache_read,
            cache_creation_input_tokens: cache_creation,
            cache_creation_1h_input_tokens: written_1h.min(cache_creation),
            reasoning_tokens: 0,
        }
    }
}

/// The `error` object of an error body or an `error` stream event.
#[derive(Deserialize, Debug)]
pub(super) struct WireError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl WireError {
    pub(super) fn detail(self) -> ErrorDetail {
        let kind = self
            .kind
            .as_deref()
            .and_then(|k| kind_for_type(k, self.message.as_deref().unwrap_or("")));
        ErrorDetail {
            recognized: true,
            message: self.message.filter(|m| !m.is_empty()),
            code: self.kind,
            kind,
            ..ErrorDetail::default()
        }
    }
}

/// An error body or event: `{"type":"error","error":{"type","message"},"request_id"}`.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: Option<WireError>,
}

/// The kind an Anthropic error type (and, for `invalid_request_error`, its message) means.
pub(super) fn kind_for_type(kind: &str, message: &str) -> Option<ErrorKind> {
    Some(match kind {
        "invalid_request_error" => {
            let message = message.to_ascii_lowercase();
            if message.contains("prompt is too long") || message.contains("exceed context limit") {
                ErrorKind::ContextLength
            } else if message.contains("credit balance is too low") {
                ErrorKind::QuotaExceeded
            } else {
                ErrorKind::InvalidRequest
            }
        }
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "not_found_error" => ErrorKind::NotFound,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "api_error" => ErrorKind::Server,
        "billing_error" => ErrorKind::QuotaExceeded,
        "timeout_error" => ErrorKind::Timeout,
        "request_too_large" => ErrorKind::InvalidRequest,
        _ => return None,
    })
}

/// `stop_reason` → normalized.
pub(super) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The finish reason of a turn: a JSON answer given through [`JSON_TOOL`], with no other
/// tool call, is a natural end (`Stop`), not `ToolCalls`.
pub(super) fn json_finish(reason: FinishReason, json_answer: bool, calls: usize) -> FinishReason {
    match reason {
        FinishReason::ToolCalls if json_answer && calls == 0 => FinishReason::Stop,
        reason => reason,
    }
}

/// Decodes a complete answer.
pub(super) fn decode(body: &[u8]) -> Result<ChatResponse, Error> {
    let wire: WireMessage<'_> = serde_json::from_slice(body)
        .map_err(|e| Error::decode(format!("malformed Anthropic message: {e}")).with_source(e))?;
    if let Some(error) = wire.error {
        return Err(error.detail().into_stream_error(ErrorKind::Server));
    }
    let mut message = Message::new(Role::Assistant);
    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    let mut signature: Option<String> = None;
    let mut json_answer = false;
    for block in wire.content {
        match block.kind.as_ref() {
            "text" => text.push_str(block.text.as_deref().unwrap_or("")),
            // The answer to a JSON response format: the text, not a call.
            "tool_use" if block.name.as_deref() == Some(JSON_TOOL) => {
                json_answer = true;
                text.push_str(block.input.map_or("{}", RawValue::get));
            }
            "tool_use" => message.tool_calls.push(ToolCall::new(
                block.id.unwrap_or_default(),
                block.name.unwrap_or_default(),
                block.input.map_or("{}", RawValue::get),
            )),
            "thinking" => {
                // Each block is kept with its own signature; `reasoning` (and, for callers
                // that read one signature, `reasoning_signature`) join them, as a stream's
                // deltas fold.
                let t = block.thinking.as_deref().unwrap_or("");
                reasoning.get_or_insert_with(String::new).push_str(t);
                let s = block.signature.filter(|s| !s.is_empty());
                if let Some(s) = s.as_deref() {
                    signature.get_or_insert_with(String::new).push_str(s);
                }
                message
                    .reasoning_blocks
                    .push(ReasoningBlock::new(t, s.map(Cow::into_owned)));
            }
            // redacted_thinking, server tools and their results, future block types.
            _ => {}
        }
    }
    if !text.is_empty() {
        message.content.push(ContentPart::Text(text));
    }
    let reasoning = reasoning.filter(|r| !r.is_empty());
    message.reasoning = reasoning.clone();
    message.reasoning_signature = signature;
    if message
        .reasoning_blocks
        .iter()
        .all(|b| b.signature.is_none())
    {
        message.reasoning_blocks.clear();
    }
    let finish_reason = match wire.stop_reason.as_deref() {
        Some(reason) => finish_reason(reason),
        None if message.tool_calls.is_empty() => FinishReason::Stop,
        None => FinishReason::ToolCalls,
    };
    let finish_reason = json_finish(finish_reason, json_answer, message.tool_calls.len());
    Ok(ChatResponse {
        id: wire.id.map(Cow::into_owned).unwrap_or_default(),
        provider: "anthropic".to_owned(),
        model: wire.model.map(Cow::into_owned).unwrap_or_default(),
        message,
        reasoning,
        finish_reason,
        usage: wire.usage.as_ref().map(WireUsage::normalize),
        cost: None,
        route: None,
        rate_limit: None,
    })
}

/// Reads an error body. HTTP 413 is `InvalidRequest` whatever the body (see
/// [`Anthropic`](super::Anthropic)).
pub(super) fn error_detail(status: u16, body: &[u8]) -> ErrorDetail {
    let mut detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error: Some(error) }) => error.detail(),
        _ => ErrorDetail::default(),
    };
    if status == 413 {
        detail.kind = Some(ErrorKind::InvalidRequest);
    }
    detail
}

/// The rate-limit windows Anthropic reports, as in `anthropic-ratelimit-<window>-remaining`.
const WINDOWS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];

/// Adds the `anthropic-ratelimit-*` headers to an error; `now` is the wall clock.
pub(super) fn annotate_error(err: Error, headers: &HeaderMap, now: SystemTime) -> Error {
    let header =
        |name: String| -> Option<&str> { headers.get(name.as_str())?.to_str().ok().map(str::trim) };
    let remaining = |window: &str| -> Option<u64> {
        header(format!("anthropic-ratelimit-{window}-remaining"))?
            .parse()
            .ok()
    };
    let reset = |window: &str| -> Option<SystemTime> {
        parse_rfc3339(header(format!("anthropic-ratelimit-{window}-reset"))?)
    };
    let mut err = err.with_rate_limit(remaining("requests"), reset("requests"));
    if err.retry_after().is_none() && err.kind() == ErrorKind::RateLimited {
        // No `retry-after`: wait until every exhausted window has reset.
        let wait = WINDOWS
            .iter()
            .filter(|w| remaining(w) == Some(0))
            .filter_map(|w| reset(w))
            .max()
            .map(|at| at.duration_since(now).unwrap_or_default());
        err = err.with_retry_after(wait);
    }
    err
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn usage_counts_cached_prompt_tokens_as_input() {
        let wire = WireUsage {
            input_tokens: Some(10),
            output_tokens: Some(7),
            cache_creation_input_tokens: Some(100),
            cache_read_input_tokens: Some(1000),
            cache_creation: None,
        };
        assert_eq!(
            wire.normalize(),
            Usage {
                input_tokens: 1110,
                output_tokens: 7,
                cached_input_tokens: 1000,
                cache_creation_input_tokens: 100,
                cache_creation_1h_input_tokens: 0,
                reasoning_tokens: 0,
            }
        );
    }

    #[test]
    fn cache_writes_are_split_by_ttl() {
        let body = r#"{"input_tokens":10,"output_tokens":7,"cache_creation_input_tokens":300,
            "cache_read_input_tokens":0,
            "cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}"#;
        let wire: WireUsage = serde_json::from_str(body).unwrap();
        let u = wire.normalize();
        assert_eq!(u.input_tokens, 310);
        assert_eq!(u.cache_creation_input_tokens, 300);
        assert_eq!(u.cache_creation_1h_input_tokens, 200);
        // Only the split: the total is its sum.
        let body = r#"{"input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":4,
            "ephemeral_1h_input_tokens":5}}"#;
        let u = serde_json::from_str::<WireUsage>(body).unwrap().normalize();
        assert_eq!((u.input_tokens, u.cache_creation_input_tokens), (10, 9));
        assert_eq!(u.cache_creation_1h_input_tokens, 5);
        // No split: every write is a 5-minute write.
        let body = r#"{"input_tokens":1,"cache_creation_input_tokens":4}"#;
        let u = serde_json::from_str::<WireUsage>(body).unwrap().normalize();
        assert_eq!(u.cache_creation_1h_input_tokens, 0);
    }

    #[test]
    fn later_usage_replaces_and_never_adds() {
        let mut usage = WireUsage {
            input_tokens: Some(10),
            output_tokens: Some(1),
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(5),
            cache_creation: None,
        };
        usage.update(&WireUsage {
            output_tokens: Some(42),
            ..WireUsage::default()
        });
        assert_eq!(usage.normalize().input_tokens, 15);
        assert_eq!(usage.normalize().output_tokens, 42);
    }

    #[test]
    fn decode_reads_every_block_kind() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[
              {"type":"thinking","thinking":"Let me see.","signature":"c2ln"},
              {"type":"redacted_thinking","data":"opaque"},
              {"type":"text","text":"Checking ","citations":null},
              {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}},
              {"type":"text","text":"the weather."},
              {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris"}},
              {"type":"tool_use","id":"toolu_2","name":"now","input":{}}
            ],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":3,"output_tokens":9,"cache_creation_input_tokens":null,"cache_read_input_tokens":2}}"#;
        let r = decode(body).unwrap();
        assert_eq!(r.id, "msg_1");
        assert_eq!(r.provider, "anthropic");
        assert_eq!(r.model, "claude-x");
        assert_eq!(r.text(), "Checking the weather.");
        assert_eq!(r.message.content.len(), 1);
        assert_eq!(
            r.tool_calls(),
            &[
                ToolCall::new("toolu_1", "get_weather", r#"{"city": "Paris"}"#),
                ToolCall::new("toolu_2", "now", "{}"),
            ]
        );
        assert_eq!(r.reasoning.as_deref(), Some("Let me see."));
        assert_eq!(r.message.reasoning.as_deref(), Some("Let me see."));
        assert_eq!(r.message.reasoning_signature.as_deref(), Some("c2ln"));
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        let usage = r.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.cached_input_tokens), (5, 2));
    }

    #[test]
    fn stop_reasons() {
        for (wire, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Other("pause_turn".into())),
        ] {
            assert_eq!(finish_reason(wire), expected, "{wire}");
        }
    }

    #[test]
    fn a_200_error_body_is_an_error() {
        let err = decode(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.code(), Some("overloaded_error"));
        assert_eq!(decode(b"<html>").unwrap_err().kind(), ErrorKind::Decode);
    }

    #[test]
    fn error_types_map_to_kinds() {
        let kind = |status: u16, body: &str| error_detail(status, body.as_bytes()).kind;
        let body = |t: &str, m: &str| {
            format!(
                r#"{{"type":"error","error":{{"type":"{t}","message":"{m}"}},"request_id":"req_1"}}"#
            )
        };
        let typed = [
            (529, "overloaded_error", "Overloaded", ErrorKind::Overloaded),
            (429, "rate_limit_error", "slow", ErrorKind::RateLimited),
            (401, "authentication_error", "bad key", ErrorKind::Auth),
            (403, "permission_error", "no", ErrorKind::Auth),
            (404, "not_found_error", "model: x", ErrorKind::NotFound),
            (402, "billing_error", "pay", ErrorKind::QuotaExceeded),
            (500, "api_error", "oops", ErrorKind::Server),
            (504, "timeout_error", "slow", ErrorKind::Timeout),
            (
                400,
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum",
                ErrorKind::ContextLength,
            ),
            (
                400,
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
                ErrorKind::ContextLength,
            ),
            (
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API.",
                ErrorKind::QuotaExceeded,
            ),
            (
                400,
                "invalid_request_error",
                "messages: field required",
                ErrorKind::InvalidRequest,
            ),
            (
                413,
                "request_too_large",
                "too big",
                ErrorKind::InvalidRequest,
            ),
        ];
        for (status, error_type, message, expected) in typed {
            assert_eq!(
                kind(status, &body(error_type, message)),
                Some(expected),
                "{status} {error_type}: {message}"
            );
        }
        assert_eq!(
            kind(413, "<html>413</html>"),
            Some(ErrorKind::InvalidRequest)
        );
        assert_eq!(kind(418, &body("teapot_error", "?")), None);
        assert_eq!(kind(502, "Bad Gateway"), None);
        let detail = error_detail(429, body("rate_limit_error", "slow").as_bytes());
        assert!(detail.recognized);
        assert_eq!(detail.code.as_deref(), Some("rate_limit_error"));
        assert_eq!(detail.message.as_deref(), Some("slow"));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: u64 = 1_767_225_600;

    #[test]
    fn rate_limit_headers_are_attached() {
        let now = UNIX_EPOCH + Duration::from_secs(NEW_YEAR);
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "17"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:12Z"),
        ]);
        let err = annotate_error(Error::new(ErrorKind::Server, "x"), &h, now);
        assert_eq!(err.rate_limit_remaining(), Some(17));
        assert_eq!(err.rate_limit_reset(), Some(now + Duration::from_secs(12)));
        assert_eq!(err.retry_after(), None);
        let bare = annotate_error(Error::new(ErrorKind::Server, "x"), &HeaderMap::new(), now);
        assert_eq!(
            (bare.rate_limit_remaining(), bare.rate_limit_reset()),
            (None, None)
        );
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_exhausted_windows() {
        let now = UNIX_EPOCH + Duration::from_secs(NEW_YEAR);
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:50Z"),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:20Z"),
            ("anthropic-ratelimit-output-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-01-01T00:00:30Z",
            ),
        ]);
        let err = annotate_error(Error::new(ErrorKind::RateLimited, "x"), &h, now);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
        // A retry-after the transport read wins.
        let told =
            Error::new(ErrorKind::RateLimited, "x").with_retry_after(Some(Duration::from_secs(4)));
        assert_eq!(
            annotate_error(told, &h, now).retry_after(),
            Some(Duration::from_secs(4))
        );
        // Resets in the past mean "now".
        let late = now + Duration::from_secs(3600);
        let err = annotate_error(Error::new(ErrorKind::RateLimited, "x"), &h, late);
        assert_eq!(err.retry_after(), Some(Duration::ZERO));
    }
}
