//! Anthropic Messages (`POST /v1/messages`).
//!
//! References: <https://docs.anthropic.com/en/api/messages>, the streaming guide
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming> and anthropic-sdk-python's
//! types. Streams name each event (`event:` equals the JSON `type`), send a `ping` early, and
//! report `output_tokens` cumulatively in `message_delta`.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::answer::Answer;
use super::reply::{
    Event, EventStream, Framing, Problem, Reply, ReplyBody, argument_pieces, chunks, request_id,
    unix_now,
};
use super::request::{Call, RecordedRequest};
use super::scenario::{RateLimitSpec, ToolCallSpec};

/// A stand-in for the opaque signature Anthropic puts on thinking blocks (base64 of
/// "simulated thinking signature"); clients must only store it and send it back.
const SIGNATURE: &str = "c2ltdWxhdGVkIHRoaW5raW5nIHNpZ25hdHVyZQ==";

/// Anthropic's non-standard overload status.
fn overloaded_status() -> StatusCode {
    StatusCode::from_u16(529).expect("529 is a valid status code")
}

/// Refuses what the real API refuses: a missing key (401) or version header, model,
/// `max_tokens` or `messages` (400).
pub(super) fn validate(request: &RecordedRequest, body: &Value) -> Result<(), Problem> {
    if request.header("x-api-key").is_none_or(str::is_empty) {
        return Err(Problem::Unauthenticated(
            "x-api-key header is required".into(),
        ));
    }
    if request
        .header("anthropic-version")
        .is_none_or(str::is_empty)
    {
        return Err(Problem::Invalid(
            "anthropic-version: header is required".into(),
        ));
    }
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Problem::Invalid("model: Field required".into()));
    }
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(Problem::Invalid("max_tokens: Field required".into()));
    }
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(Problem::Invalid("messages: Field required".into()));
    }
    Ok(())
}

/// Renders an answer as a Message or its event stream.
pub(super) fn answer(call: &Call, answer: &Answer) -> Reply {
    let id = format!("msg_sim{:016}", call.serial);
    let reply = if call.stream {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: ReplyBody::Stream(stream(&id, answer)),
        }
    } else {
        Reply::json(StatusCode::OK, &message(&id, answer))
    };
    reply.header("request-id", request_id(call.serial))
}

/// The quota headers Anthropic sends on every answer, resets as RFC 3339 times.
pub(super) fn rate_limit_headers(reply: Reply, spec: &RateLimitSpec) -> Reply {
    let reset = rfc3339(unix_now().saturating_add(spec.reset.as_secs_f64().ceil() as u64));
    reply
        .header(
            "anthropic-ratelimit-requests-remaining",
            spec.remaining_requests.to_string(),
        )
        .header("anthropic-ratelimit-requests-reset", reset.clone())
        .header(
            "anthropic-ratelimit-tokens-remaining",
            spec.remaining_tokens.to_string(),
        )
        .header("anthropic-ratelimit-tokens-reset", reset)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Renders a refusal or failure as `{"type":"error","error":{type, message},"request_id"}`.
pub(super) fn problem(problem: &Problem, serial: u64) -> Reply {
    let (status, kind, message) = match problem {
        Problem::NotFound(m) => (StatusCode::NOT_FOUND, "not_found_error", m.as_str()),
        Problem::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid_request_error", m.as_str()),
        Problem::Unauthenticated(m) => {
            (StatusCode::UNAUTHORIZED, "authentication_error", m.as_str())
        }
        Problem::RateLimited(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "This request would exceed your organization's rate limit. Please try again later.",
        ),
        Problem::Overloaded => (overloaded_status(), "overloaded_error", "Overloaded"),
    };
    let id = request_id(serial);
    let body =
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": id});
    let reply = Reply::json(status, &body).header("request-id", id);
    match problem {
        Problem::RateLimited(delay) => reply
            .retry_headers(*delay)
            .header("anthropic-ratelimit-requests-limit", "50")
            .header("anthropic-ratelimit-requests-remaining", "0"),
        _ => reply,
    }
}

/// One content block of the answer, in the order Claude produces them.
enum Block<'a> {
    Thinking(&'a str),
    Text(&'a str),
    ToolUse(&'a ToolCallSpec),
}

fn blocks(answer: &Answer) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    if let Some(reasoning) = &answer.reasoning {
        blocks.push(Block::Thinking(reasoning));
    }
    // A tool-only answer has no text block; any other answer has one, even if empty.
    if !answer.text.is_empty() || !answer.calls_tools() {
        blocks.push(Block::Text(&answer.text));
    }
    blocks.extend(answer.tool_calls.iter().map(Block::ToolUse));
    blocks
}

/// Tool input as an object; arguments that are not JSON travel as a string (see
/// `Scenario::with_tool_call`).
fn tool_input(call: &ToolCallSpec) -> Value {
    serde_json::from_str(&call.arguments).unwrap_or_else(|_| Value::String(call.arguments.clone()))
}

fn stop_reason(answer: &Answer) -> &'static str {
    if answer.calls_tools() {
        "tool_use"
    } else {
        "end_turn"
    }
}

/// Usage as Anthropic reports it: `input_tokens` excludes tokens read from the cache.
fn usage(answer: &Answer, output_tokens: u64) -> Value {
    let u = answer.usage;
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
    })
}

fn message(id: &str, answer: &Answer) -> Value {
    let content: Vec<Value> = blocks(answer)
        .into_iter()
        .map(|block| match block {
            Block::Thinking(t) => {
                json!({"type": "thinking", "thinking": t, "signature": SIGNATURE})
            }
            Block::Text(t) => json!({"type": "text", "text": t}),
            Block::ToolUse(c) => {
                json!({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c)})
            }
        })
        .collect();
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": usage(answer, answer.usage.output),
    })
}

/// A stream event whose `event:` name and JSON `type` agree by construction.
fn event(kind: &'static str, mut data: Value) -> Event {
    data["type"] = json!(kind);
    Event::named(kind, &data, Framing::SseLf)
}

fn stream(id: &str, answer: &Answer) -> EventStream {
    let n = answer.chunk_chars;
    let mut events = vec![
        event(
            "message_start",
            json!({"message": {
                "id": id, "type": "message", "role": "assistant", "model": answer.model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": usage(answer, 1),
            }}),
        ),
        event("ping", json!({})),
    ];
    for (index, block) in blocks(answer).into_iter().enumerate() {
        let (start, deltas): (Value, Vec<Value>) = match block {
            Block::Thinking(t) => (
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                chunks(t, n)
                    .into_iter()
                    .map(|p| json!({"type": "thinking_delta", "thinking": p}))
                    .chain([json!({"type": "signature_delta", "signature": SIGNATURE})])
                    .collect(),
            ),
            Block::Text(t) => (
                json!({"type": "text", "text": ""}),
                chunks(t, n)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect(),
            ),
            Block::ToolUse(c) => (
                json!({"type": "tool_use", "id": c.id, "name": c.name, "input": {}}),
                // Anthropic opens every tool input with an empty fragment.
                std::iter::once("")
                    .chain(argument_pieces(&c.arguments, n))
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            ),
        };
        events.push(event(
            "content_block_start",
            json!({"index": index, "content_block": start}),
        ));
        events.extend(
            deltas
                .into_iter()
                .map(|d| event("content_block_delta", json!({"index": index, "delta": d}))),
        );
        events.push(event("content_block_stop", json!({"index": index})));
    }
    events.push(event(
        "message_delta",
        json!({
            "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
            "usage": {"output_tokens": answer.usage.output},
        }),
    ));
    events.push(event("message_stop", json!({})));

    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    EventStream {
        content_type: "text/event-stream; charset=utf-8",
        events,
        terminal: 1,
        error_event: Event::named("error", &error, Framing::SseLf),
    }
}

#[cfg(test)]
mod rate_limit_tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_renders_civil_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600 + 3_723), "2026-01-01T01:02:03Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
