//! Gemini `generateContent` and `streamGenerateContent`.
//!
//! References: <https://ai.google.dev/api/generate-content> and googleapis/python-genai. Every
//! stream chunk is a whole `GenerateContentResponse` whose text parts are increments; a function
//! call arrives whole; the last chunk carries `finishReason` and the usage; there is no `[DONE]`.
//! Error bodies are Google RPC statuses, pretty-printed as Google's servers print them.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::answer::Answer;
use super::reply::{Event, EventStream, Framing, Problem, Reply, ReplyBody, chunks};
use super::request::{Call, RecordedRequest, join_texts};

/// Refuses what the real API refuses: no `x-goog-api-key` (403) or no `contents` (400).
pub(super) fn validate(request: &RecordedRequest, body: &Value) -> Result<(), Problem> {
    if request.header("x-goog-api-key").is_none_or(str::is_empty) {
        return Err(Problem::Unauthenticated(
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API."
                .into(),
        ));
    }
    if body
        .get("contents")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
    {
        return Err(Problem::Invalid(
            "* GenerateContentRequest.contents: contents is not specified".into(),
        ));
    }
    Ok(())
}

/// The text of the last `user` turn (a turn without a role is a user turn); thoughts skipped.
pub(super) fn last_user_text(body: &Value) -> String {
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    contents
        .iter()
        .rev()
        .find(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        })
        .and_then(|c| c.get("parts").and_then(Value::as_array))
        .map(|parts| {
            join_texts(parts, |p| {
                p.get("thought").and_then(Value::as_bool) != Some(true)
            })
        })
        .unwrap_or_default()
}

/// Renders an answer as one response, an SSE stream of responses, or (streaming without
/// `alt=sse`) one JSON array of responses.
pub(super) fn answer(call: &Call, answer: &Answer) -> Reply {
    let head = Head {
        response_id: format!("sim{:019}", call.serial),
        answer,
    };
    if !call.stream {
        return Reply::json(StatusCode::OK, &head.response(whole_parts(answer), true));
    }
    let chunks = stream_chunks(&head);
    if !call.sse {
        return Reply::json(StatusCode::OK, &Value::Array(chunks));
    }
    let events = chunks
        .iter()
        .map(|c| Event::plain(c, Framing::SseCrLf))
        .collect();
    let error = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        OVERLOADED,
        None,
    );
    let error_event = Event {
        name: None,
        data: pretty(&error),
        framing: Framing::Raw,
    };
    let stream = EventStream {
        content_type: "text/event-stream",
        events,
        terminal: 1,
        error_event,
    };
    Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: ReplyBody::Stream(stream),
    }
}

const OVERLOADED: &str = "The model is overloaded. Please try again later.";

/// Renders a refusal or failure as `{"error":{code, message, status, details?}}`.
pub(super) fn problem(problem: &Problem) -> Reply {
    let (status, name, message, details) = match problem {
        Problem::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m.as_str(), None),
        Problem::Invalid(m) => (
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            m.as_str(),
            None,
        ),
        Problem::Unauthenticated(m) => {
            (StatusCode::FORBIDDEN, "PERMISSION_DENIED", m.as_str(), None)
        }
        Problem::RateLimited(delay) => (
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            Some(json!([
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }],
                },
                { "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay(*delay) },
            ])),
        ),
        Problem::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            OVERLOADED,
            None,
        ),
    };
    let error = rpc_error(status, name, message, details);
    let reply = Reply {
        status,
        headers: Vec::new(),
        body: ReplyBody::Whole {
            content_type: "application/json; charset=UTF-8",
            bytes: pretty(&error).into_bytes(),
        },
    };
    match problem {
        Problem::RateLimited(delay) => reply.retry_headers(*delay),
        _ => reply,
    }
}

fn rpc_error(status: StatusCode, name: &str, message: &str, details: Option<Value>) -> Value {
    let mut error = json!({ "code": status.as_u16(), "message": message, "status": name });
    if let Some(details) = details {
        error["details"] = details;
    }
    json!({ "error": error })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A protobuf `Duration` in JSON: seconds with an `s` suffix, fractional when needed (`"1.5s"`).
fn retry_delay(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The fields every response of one answer shares.
struct Head<'a> {
    response_id: String,
    answer: &'a Answer,
}

impl Head<'_> {
    /// A `GenerateContentResponse` with these parts; the final one carries `finishReason` and
    /// usage.
    fn response(&self, parts: Vec<Value>, last: bool) -> Value {
        let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
        let mut response = Map::new();
        if last {
            candidate["finishReason"] = json!("STOP");
        }
        response.insert("candidates".into(), json!([candidate]));
        if last {
            response.insert("usageMetadata".into(), self.usage());
        }
        response.insert("modelVersion".into(), json!(self.answer.model));
        response.insert("responseId".into(), json!(self.response_id));
        Value::Object(response)
    }

    /// Usage as Gemini reports it: candidates exclude thoughts, the prompt includes cached
    /// tokens, and zero-valued optional counts are left out, as proto3 JSON does.
    fn usage(&self) -> Value {
        let u = self.answer.usage;
        let mut usage = json!({
            "promptTokenCount": u.input,
            "candidatesTokenCount": u.output.saturating_sub(u.reasoning),
            "totalTokenCount": u.input + u.output,
        });
        if u.reasoning > 0 {
            usage["thoughtsTokenCount"] = json!(u.reasoning);
        }
        if u.cached > 0 {
            usage["cachedContentTokenCount"] = json!(u.cached);
        }
        usage
    }
}

fn thought_part(text: &str) -> Value {
    json!({ "text": text, "thought": true })
}

fn function_call_parts(answer: &Answer) -> impl Iterator<Item = Value> + '_ {
    answer.tool_calls.iter().map(|c| {
        // Gemini sends arguments as an object; see `Scenario::with_tool_call` for non-JSON ones.
        let args = serde_json::from_str(&c.arguments)
            .unwrap_or_else(|_| Value::String(c.arguments.clone()));
        json!({ "functionCall": { "name": c.name, "args": args } })
    })
}

fn whole_parts(answer: &Answer) -> Vec<Value> {
    let mut parts: Vec<Value> = answer.reasoning.iter().map(|r| thought_part(r)).collect();
    if !answer.text.is_empty() || !answer.calls_tools() {
        parts.push(json!({ "text": answer.text }));
    }
    parts.extend(function_call_parts(answer));
    parts
}

/// One response per thought or text increment and per function call; the last also finishes.
fn stream_chunks(head: &Head<'_>) -> Vec<Value> {
    let answer = head.answer;
    let n = answer.chunk_chars;
    let mut parts: Vec<Value> = chunks(answer.reasoning.as_deref().unwrap_or(""), n)
        .into_iter()
        .map(thought_part)
        .collect();
    parts.extend(
        chunks(&answer.text, n)
            .into_iter()
            .map(|t| json!({ "text": t })),
    );
    parts.extend(function_call_parts(answer));
    if parts.is_empty() {
        parts.push(json!({ "text": "" }));
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| head.response(vec![part], i == last))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_is_a_protobuf_duration() {
        assert_eq!(retry_delay(Duration::from_secs(37)), "37s");
        assert_eq!(retry_delay(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn last_user_text_skips_model_turns_and_thoughts() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"parts": [{"text": "x", "thought": true}, {"text": "second"}]},
            {"role": "model", "parts": [{"text": "answer"}]},
        ]});
        assert_eq!(last_user_text(&body), "second");
    }
}
