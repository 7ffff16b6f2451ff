//! Reading an incoming request: which wire it speaks, what it asks for, and what gets recorded.

use serde_json::Value;

use super::reply::Problem;
use super::{anthropic, gemini, openai};

/// The provider wire format a request was sent in, chosen by the first segment of its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI Chat Completions, served under `/openai/v1`.
    OpenAi,
    /// DeepSeek's OpenAI-style API with `reasoning_content` and cache-hit usage, under `/deepseek`.
    DeepSeek,
    /// Anthropic Messages, under `/anthropic`.
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent`, under `/gemini`.
    Gemini,
}

impl Wire {
    const ALL: [Wire; 4] = [Wire::OpenAi, Wire::DeepSeek, Wire::Anthropic, Wire::Gemini];

    /// The first path segment that selects this wire.
    fn prefix(self) -> &'static str {
        match self {
            Wire::OpenAi => "/openai",
            Wire::DeepSeek => "/deepseek",
            Wire::Anthropic => "/anthropic",
            Wire::Gemini => "/gemini",
        }
    }

    /// What follows the server's origin in this wire's base URL. Each matches what the official
    /// SDK appends its endpoint paths to (OpenAI's base URL ends in `/v1`, the others do not).
    pub(super) fn base_path(self) -> &'static str {
        match self {
            Wire::OpenAi => "/openai/v1",
            other => other.prefix(),
        }
    }
}

/// A request as the simulator received it, kept for assertions with [`Simulator::requests`](super::Simulator::requests).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The wire the request was routed to. Requests outside the four prefixes are answered
    /// with a 404 in OpenAI's error format and recorded as [`Wire::OpenAi`].
    pub wire: Wire,
    /// The HTTP method, e.g. `"POST"`.
    pub method: String,
    /// The path with its query string, e.g. `/gemini/v1beta/models/m:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Every header in arrival order, names lower-cased, values decoded as UTF-8 (invalid bytes
    /// replaced by U+FFFD).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Value::Null` if it was not JSON.
    pub body: Value,
    /// The requested model: the body's `model`, or for Gemini the model in the path.
    pub model: Option<String>,
    /// Whether a stream was asked for (`"stream": true`, or Gemini's `streamGenerateContent`).
    pub stream: bool,
}

impl RecordedRequest {
    /// The first value of header `name` (matched case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A valid model call, with what the renderers need to know about the request.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) wire: Wire,
    pub(super) model: String,
    pub(super) stream: bool,
    /// Gemini only: `alt=sse` was given, so the stream is SSE rather than one JSON array.
    pub(super) sse: bool,
    /// OpenAI only: `stream_options.include_usage` was true.
    pub(super) include_usage: bool,
    pub(super) last_user_text: String,
    /// The function the request forces the model to call (`tool_choice` naming one), which an
    /// echo answer then calls, as a real model would.
    pub(super) forced_tool: Option<String>,
    /// Characters of prompt text, for estimating input tokens.
    pub(super) prompt_chars: usize,
    /// A number unique within this simulator, used to build response and request ids.
    pub(super) serial: u64,
}

/// Which endpoint of a wire a path names.
enum Endpoint {
    /// OpenAI/DeepSeek chat completions or Anthropic messages: model and stream are in the body.
    BodyDriven,
    /// Gemini: model and method are in the path.
    Gemini {
        model: String,
        stream: bool,
        sse: bool,
    },
}

/// Reads one request. The [`RecordedRequest`] is always produced; the [`Call`] only if the
/// request is one the wire would serve.
pub(super) fn read(
    method: &str,
    path_and_query: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
    serial: u64,
) -> (RecordedRequest, Result<Call, Problem>) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let (wire, endpoint) = route(method, path, query);
    let json: Option<Value> = serde_json::from_slice(body).ok();

    let (model, stream) = match &endpoint {
        Ok(Endpoint::Gemini { model, stream, .. }) => (Some(model.clone()), *stream),
        _ => {
            let field = |key: &str| json.as_ref().and_then(|b| b.get(key));
            let model = field("model").and_then(Value::as_str).map(str::to_owned);
            (
                model,
                field("stream").and_then(Value::as_bool).unwrap_or(false),
            )
        }
    };
    let recorded = RecordedRequest {
        wire,
        method: method.to_owned(),
        path: path_and_query.to_owned(),
        headers,
        body: json.clone().unwrap_or(Value::Null),
        model: model.clone(),
        stream,
    };

    let call = endpoint.and_then(|endpoint| {
        let body =
            json.ok_or_else(|| Problem::Invalid("The request body is not valid JSON.".into()))?;
        if !body.is_object() {
            return Err(Problem::Invalid(
                "The request body must be a JSON object.".into(),
            ));
        }
        match wire {
            Wire::OpenAi | Wire::DeepSeek => openai::validate(&body)?,
            Wire::Anthropic => anthropic::validate(&recorded, &body)?,
            Wire::Gemini => gemini::validate(&recorded, &body)?,
        }
        let last_user_text = match wire {
            // Both formats list `messages` whose content is a string or typed `text` parts.
            Wire::OpenAi | Wire::DeepSeek | Wire::Anthropic => messages_last_user_text(&body),
            Wire::Gemini => gemini::last_user_text(&body),
        };
        let forced_tool = match wire {
            Wire::OpenAi | Wire::DeepSeek => body.pointer("/tool_choice/function/name"),
            Wire::Anthropic => body.pointer("/tool_choice/name").filter(|_| {
                body.pointer("/tool_choice/type").and_then(Value::as_str) == Some("tool")
            }),
            Wire::Gemini => {
                body.pointer("/toolConfig/functionCallingConfig/allowedFunctionNames/0")
            }
        }
        .and_then(Value::as_str)
        .map(str::to_owned);
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Call {
            wire,
            // Validation guarantees a model for body-driven wires.
            model: model.unwrap_or_default(),
            stream,
            sse: matches!(endpoint, Endpoint::Gemini { sse: true, .. }),
            include_usage,
            last_user_text,
            forced_tool,
            prompt_chars: prompt_chars(&body),
            serial,
        })
    });
    (recorded, call)
}

/// Maps a method and path to a wire and endpoint, or to the 404 that wire would answer.
fn route(method: &str, path: &str, query: Option<&str>) -> (Wire, Result<Endpoint, Problem>) {
    let not_found = || Problem::NotFound(format!("Unknown request URL: {method} {path}"));
    let found = Wire::ALL.into_iter().find_map(|wire| {
        let rest = path.strip_prefix(wire.prefix())?;
        (rest.is_empty() || rest.starts_with('/')).then_some((wire, rest))
    });
    let Some((wire, rest)) = found else {
        return (Wire::OpenAi, Err(not_found()));
    };
    if method != "POST" {
        return (wire, Err(not_found()));
    }
    let endpoint = match (wire, rest) {
        (Wire::OpenAi, "/v1/chat/completions") => Some(Endpoint::BodyDriven),
        // DeepSeek serves both spellings; its docs use the bare one.
        (Wire::DeepSeek, "/chat/completions" | "/v1/chat/completions") => {
            Some(Endpoint::BodyDriven)
        }
        (Wire::Anthropic, "/v1/messages") => Some(Endpoint::BodyDriven),
        (Wire::Gemini, rest) => gemini_endpoint(rest, query),
        _ => None,
    };
    (wire, endpoint.ok_or_else(not_found))
}

/// Parses `/v1beta/models/{model}:{method}` (or `/v1/…`).
fn gemini_endpoint(rest: &str, query: Option<&str>) -> Option<Endpoint> {
    let target = rest
        .strip_prefix("/v1beta/models/")
        .or_else(|| rest.strip_prefix("/v1/models/"))?;
    let (model, method) = target.rsplit_once(':')?;
    if model.is_empty() {
        return None;
    }
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    let sse = query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
    Some(Endpoint::Gemini {
        model: model.to_owned(),
        stream,
        sse,
    })
}

/// Counts the characters of every string in the prompt-bearing fields of any wire's body.
fn prompt_chars(body: &Value) -> usize {
    fn strings(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.iter().map(strings).sum(),
            Value::Object(map) => map.values().map(strings).sum(),
            _ => 0,
        }
    }
    ["messages", "system", "contents", "systemInstruction"]
        .iter()
        .filter_map(|key| body.get(key))
        .map(strings)
        .sum()
}

/// Joins the `text` of every text part in `parts`, the shape shared by OpenAI content parts,
/// Anthropic content blocks and Gemini parts. `keep` filters parts (e.g. by their `type`).
/// The text of the last `user` message of an OpenAI- or Anthropic-style `messages` list, whether
/// its content is a string or a list of typed parts (non-text parts are skipped).
pub(super) fn messages_last_user_text(body: &Value) -> String {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let Some(content) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
    else {
        return String::new();
    };
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => join_texts(parts, |p| {
            p.get("type").and_then(Value::as_str) == Some("text")
        }),
        _ => String::new(),
    }
}

pub(super) fn join_texts(parts: &[Value], keep: impl Fn(&Value) -> bool) -> String {
    parts
        .iter()
        .filter(|p| keep(p))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(method: &str, path: &str, body: &str) -> (RecordedRequest, Result<Call, Problem>) {
        read(method, path, Vec::new(), body.as_bytes(), 1)
    }

    #[test]
    fn routes_each_wire_by_prefix() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let (rec, call) = read_json("POST", "/openai/v1/chat/completions", body);
        assert_eq!(rec.wire, Wire::OpenAi);
        assert_eq!(call.unwrap().last_user_text, "hi");
        let (rec, call) = read_json("POST", "/deepseek/chat/completions", body);
        assert_eq!(rec.wire, Wire::DeepSeek);
        assert!(call.is_ok());
        let (rec, call) = read_json("POST", "/openai/v1/embeddings", body);
        assert_eq!(rec.wire, Wire::OpenAi);
        assert!(matches!(call, Err(Problem::NotFound(_))));
        let (rec, call) = read_json("POST", "/nowhere", body);
        assert_eq!(rec.wire, Wire::OpenAi);
        assert!(matches!(call, Err(Problem::NotFound(_))));
        let (_, call) = read_json("GET", "/openai/v1/chat/completions", body);
        assert!(matches!(call, Err(Problem::NotFound(_))));
    }

    #[test]
    fn gemini_model_and_stream_come_from_the_path() {
        let body = r#"{"contents":[{"role":"user","parts":[{"text":"a"},{"text":"b"}]}]}"#;
        let headers = vec![("x-goog-api-key".to_owned(), "k".to_owned())];
        let path = "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
        let (rec, call) = read("POST", path, headers, body.as_bytes(), 1);
        assert_eq!(rec.model.as_deref(), Some("gemini-2.5-flash"));
        assert!(rec.stream);
        let call = call.unwrap();
        assert!(call.sse);
        assert_eq!(call.last_user_text, "ab");
        let (_, call) = read_json("POST", "/gemini/v1beta/models/:generateContent", body);
        assert!(matches!(call, Err(Problem::NotFound(_))));
    }

    #[test]
    fn bad_json_is_recorded_as_null_and_refused() {
        let (rec, call) = read_json("POST", "/openai/v1/chat/completions", "{not json");
        assert_eq!(rec.body, Value::Null);
        assert!(matches!(call, Err(Problem::Invalid(_))));
    }

    #[test]
    fn prompt_chars_counts_message_strings_only() {
        let body = serde_json::json!({"model": "ignored", "messages": [{"role": "user", "content": "abcd"}]});
        // "user" (4) + "abcd" (4)
        assert_eq!(prompt_chars(&body), 8);
    }
}
