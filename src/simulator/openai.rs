//! OpenAI Chat Completions and DeepSeek's dialect of it.
//!
//! References: OpenAI's OpenAPI spec (`CreateChatCompletionResponse`,
//! `CreateChatCompletionStreamResponse`) and DeepSeek's API docs
//! (<https://api-docs.deepseek.com/api/create-chat-completion>). DeepSeek differs in three ways
//! that clients must handle: `reasoning_content` beside `content`, `prompt_cache_hit_tokens` /
//! `prompt_cache_miss_tokens` in usage, and usage riding on the chunk that carries
//! `finish_reason` instead of a separate `choices: []` chunk.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::answer::{Answer, Usage};
use super::reply::{
    Event, EventStream, Framing, Problem, Reply, ReplyBody, argument_pieces, chunks, request_id,
    unix_now,
};
use super::request::{Call, Wire};
use super::scenario::RateLimitSpec;

/// Real servers send a fingerprint on every completion and chunk; clients must ignore it.
const FINGERPRINT: &str = "fp_simulator";

/// Refuses bodies the real API refuses with a 400: no model, or no messages.
pub(super) fn validate(body: &Value) -> Result<(), Problem> {
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Problem::Invalid(
            "you must provide a model parameter".into(),
        ));
    }
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return Err(Problem::Invalid(
            "'messages' is a required property and must be a non-empty array".into(),
        ));
    }
    Ok(())
}

/// Renders an answer as a `chat.completion` or a stream of `chat.completion.chunk`s.
pub(super) fn answer(call: &Call, answer: &Answer) -> Reply {
    let dialect = Dialect {
        deepseek: call.wire == Wire::DeepSeek,
    };
    let head = Head {
        id: format!("chatcmpl-sim{:08}", call.serial),
        created: unix_now(),
        model: answer.model.clone(),
    };
    let reply = if call.stream {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: ReplyBody::Stream(stream(&head, dialect, call.include_usage, answer)),
        }
    } else {
        Reply::json(StatusCode::OK, &completion(&head, dialect, answer))
    };
    reply.header("x-request-id", request_id(call.serial))
}

/// Renders a refusal or failure as `{"error":{message, type, param, code}}`.
pub(super) fn problem(problem: &Problem, serial: u64) -> Reply {
    let (status, message, kind, code) = match problem {
        Problem::NotFound(m) => (
            StatusCode::NOT_FOUND,
            m.as_str(),
            "invalid_request_error",
            Some("unknown_url"),
        ),
        Problem::Invalid(m) => (
            StatusCode::BAD_REQUEST,
            m.as_str(),
            "invalid_request_error",
            None,
        ),
        Problem::Unauthenticated(m) => (
            StatusCode::UNAUTHORIZED,
            m.as_str(),
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        Problem::RateLimited(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        Problem::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
        ),
    };
    let reply = Reply::json(status, &error_body(message, kind, code))
        .header("x-request-id", request_id(serial));
    match problem {
        Problem::RateLimited(delay) => reply
            .retry_headers(*delay)
            .header("x-ratelimit-limit-requests", "60")
            .header("x-ratelimit-remaining-requests", "0")
            .header("x-ratelimit-reset-requests", reset_duration(*delay)),
        _ => reply,
    }
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// The quota headers OpenAI sends on every answer.
pub(super) fn rate_limit_headers(reply: Reply, spec: &RateLimitSpec) -> Reply {
    reply
        .header(
            "x-ratelimit-remaining-requests",
            spec.remaining_requests.to_string(),
        )
        .header(
            "x-ratelimit-remaining-tokens",
            spec.remaining_tokens.to_string(),
        )
        .header("x-ratelimit-reset-requests", reset_duration(spec.reset))
        .header("x-ratelimit-reset-tokens", reset_duration(spec.reset))
}

/// OpenAI's `x-ratelimit-reset-*` format: `120ms`, `1.5s`, `6m0s`.
fn reset_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[derive(Clone, Copy)]
struct Dialect {
    deepseek: bool,
}

/// The fields shared by a completion and all its chunks.
struct Head {
    id: String,
    created: u64,
    model: String,
}

fn completion(head: &Head, dialect: Dialect, answer: &Answer) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    // `content` is null, not "", when the model only calls tools.
    let content = if answer.text.is_empty() && answer.calls_tools() {
        Value::Null
    } else {
        json!(answer.text)
    };
    message.insert("content".into(), content);
    if dialect.deepseek {
        if let Some(reasoning) = &answer.reasoning {
            message.insert("reasoning_content".into(), json!(reasoning));
        }
    } else {
        message.insert("refusal".into(), Value::Null);
        message.insert("annotations".into(), json!([]));
    }
    if answer.calls_tools() {
        let calls: Vec<Value> = answer
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let mut body = json!({
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(answer),
        }],
        "usage": usage(answer.usage, dialect),
        "system_fingerprint": FINGERPRINT,
    });
    if !dialect.deepseek {
        body["service_tier"] = json!("default");
    }
    body
}

fn finish_reason(answer: &Answer) -> &'static str {
    if answer.calls_tools() {
        "tool_calls"
    } else {
        "stop"
    }
}

fn usage(u: Usage, dialect: Dialect) -> Value {
    let mut usage = json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": { "cached_tokens": u.cached, "audio_tokens": 0 },
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    });
    if dialect.deepseek {
        usage["prompt_cache_hit_tokens"] = json!(u.cached);
        usage["prompt_cache_miss_tokens"] = json!(u.input.saturating_sub(u.cached));
    }
    usage
}

fn stream(head: &Head, dialect: Dialect, include_usage: bool, answer: &Answer) -> EventStream {
    // OpenAI puts `"usage": null` on every chunk only when usage was asked for; DeepSeek sends
    // usage on the finish chunk and leaves the key out elsewhere.
    let usage_key = include_usage && !dialect.deepseek;
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({
            "id": head.id,
            "object": "chat.completion.chunk",
            "created": head.created,
            "model": head.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if usage_key {
            c["usage"] = Value::Null;
        }
        c
    };
    let n = answer.chunk_chars;
    let mut chunks_out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if dialect.deepseek {
        for piece in chunks(answer.reasoning.as_deref().unwrap_or(""), n) {
            chunks_out.push(chunk(
                json!({"content": null, "reasoning_content": piece}),
                None,
            ));
        }
    }
    for piece in chunks(&answer.text, n) {
        chunks_out.push(chunk(json!({"content": piece}), None));
    }
    for (index, call) in answer.tool_calls.iter().enumerate() {
        // Only the first fragment of each call names it; the rest carry argument pieces.
        chunks_out.push(chunk(
            json!({"tool_calls": [{
                "index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]}),
            None,
        ));
        for piece in argument_pieces(&call.arguments, n) {
            chunks_out.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }
    let mut finish = chunk(json!({}), Some(finish_reason(answer)));
    if dialect.deepseek {
        finish["usage"] = usage(answer.usage, dialect);
    }
    chunks_out.push(finish);
    if usage_key {
        let mut last = chunk(json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage(answer.usage, dialect);
        chunks_out.push(last);
    }

    let mut events: Vec<Event> = chunks_out
        .iter()
        .map(|c| Event::plain(c, Framing::SseLf))
        .collect();
    events.push(Event {
        name: None,
        data: "[DONE]".into(),
        framing: Framing::SseLf,
    });
    let error = error_body(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    );
    EventStream {
        content_type: "text/event-stream; charset=utf-8",
        events,
        terminal: 1,
        error_event: Event::plain(&error, Framing::SseLf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations() {
        assert_eq!(reset_duration(Duration::from_millis(120)), "120ms");
        assert_eq!(reset_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_duration(Duration::from_secs(360)), "6m0s");
    }

    #[test]
    fn last_user_text_reads_parts() {
        let body = json!({"messages": [
            {"role": "user", "content": "old"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "x"},
        ]});
        assert_eq!(super::super::request::messages_last_user_text(&body), "ab");
    }
}
