//! OpenAI's chat-completions wire format as the gateway serves it: a request body in, and a
//! response, stream chunks and errors out, whatever provider answered.
//!
//! Parsing is strict where a mistake would change the answer (a wrong type, an unknown role or
//! content part) and names the offending parameter as OpenAI does (`messages[2].content[0].type`);
//! fields the gateway does not interpret are passed to the provider as extra fields.

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, Delta, FinishReason, Message, ResponseFormat, Role,
    Tool, ToolCall, ToolChoice, Usage,
};

/// A client's request that cannot be served as written: OpenAI's `invalid_request_error`, with
/// the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    /// What is wrong.
    pub message: String,
    /// The parameter at fault, as a path (`messages[0].role`), when there is one.
    pub param: Option<String>,
}

impl InvalidRequest {
    fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The error in OpenAI's format.
    pub fn to_json(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": Value::Null,
        }})
    }
}

/// A parsed `POST /v1/chat/completions` body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompletionRequest {
    /// The request for the router (`model` is the route or model the client named).
    pub request: ChatRequest,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// Fields the gateway reads; any other top-level field is passed through to the provider.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "response_format",
    "seed",
    "metadata",
    "reasoning_effort",
    "user",
];

/// Parses a chat-completions request body.
///
/// # Errors
/// An [`InvalidRequest`] naming the parameter for malformed JSON (or invalid UTF-8), a missing
/// `model` or `messages`, a wrong type, an unknown role or content part.
pub fn parse_request(body: &[u8]) -> Result<CompletionRequest, InvalidRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InvalidRequest {
        message: format!("the body is not valid JSON: {e}"),
        param: None,
    })?;
    let Value::Object(obj) = value else {
        return Err(InvalidRequest {
            message: "the body must be a JSON object".into(),
            param: None,
        });
    };
    let model =
        string(&obj, "model")?.ok_or_else(|| InvalidRequest::at("model", "`model` is required"))?;
    let mut req = ChatRequest::new(model);
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(InvalidRequest::at(
                "messages",
                "`messages` must not be empty",
            ));
        }
        Some(_) => {
            return Err(InvalidRequest::at(
                "messages",
                "`messages` must be an array",
            ));
        }
        None => return Err(InvalidRequest::at("messages", "`messages` is required")),
    };
    for (i, m) in messages.iter().enumerate() {
        req.messages.push(message(m, &format!("messages[{i}]"))?);
    }
    if let Some(tools) = obj.get("tools") {
        let Value::Array(tools) = tools else {
            return Err(InvalidRequest::at("tools", "`tools` must be an array"));
        };
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(tool(t, &format!("tools[{i}]"))?);
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        req.tool_choice = Some(tool_choice(choice)?);
    }
    req.parallel_tool_calls = boolean(&obj, "parallel_tool_calls")?;
    req.temperature = number(&obj, "temperature")?.map(|n| n as f32);
    req.top_p = number(&obj, "top_p")?.map(|n| n as f32);
    let max = match integer(&obj, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => integer(&obj, "max_tokens")?,
    };
    req.max_tokens = max
        .map(|n| {
            u32::try_from(n)
                .map_err(|_| InvalidRequest::at("max_tokens", "`max_tokens` is too large"))
        })
        .transpose()?;
    req.seed = integer(&obj, "seed")?;
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => req.stop.push(s.clone()),
        Some(Value::Array(a)) => {
            for (i, s) in a.iter().enumerate() {
                match s {
                    Value::String(s) => req.stop.push(s.clone()),
                    _ => {
                        return Err(InvalidRequest::at(
                            format!("stop[{i}]"),
                            "a stop sequence must be a string",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(InvalidRequest::at(
                "stop",
                "`stop` must be a string or an array of strings",
            ));
        }
    }
    if let Some(format) = obj.get("response_format") {
        req.response_format = Some(response_format(format)?);
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(tags)) => {
            for (k, v) in tags {
                match v {
                    Value::String(v) => {
                        req.metadata.insert(k.clone(), v.clone());
                    }
                    _ => {
                        return Err(InvalidRequest::at(
                            format!("metadata.{k}"),
                            "metadata values must be strings",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(InvalidRequest::at(
                "metadata",
                "`metadata` must be an object of strings",
            ));
        }
    }
    if let Some(effort) = string(&obj, "reasoning_effort")? {
        req.extra
            .insert("reasoning_effort".into(), Value::String(effort));
    }
    let stream = boolean(&obj, "stream")?.unwrap_or(false);
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(InvalidRequest::at(
                    "stream_options.include_usage",
                    "must be a boolean",
                ));
            }
        },
        Some(_) => {
            return Err(InvalidRequest::at(
                "stream_options",
                "`stream_options` must be an object",
            ));
        }
    };
    for (k, v) in obj {
        if !KNOWN.contains(&k.as_str()) {
            req.extra.insert(k, v);
        }
    }
    Ok(CompletionRequest {
        request: req,
        stream,
        include_usage,
    })
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, InvalidRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(InvalidRequest::at(key, format!("`{key}` must be a string"))),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, InvalidRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(InvalidRequest::at(
            key,
            format!("`{key}` must be a boolean"),
        )),
    }
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, InvalidRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(InvalidRequest::at(key, format!("`{key}` must be a number"))),
    }
}

fn integer(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, InvalidRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            InvalidRequest::at(key, format!("`{key}` must be a non-negative integer"))
        }),
        Some(_) => Err(InvalidRequest::at(
            key,
            format!("`{key}` must be an integer"),
        )),
    }
}

fn message(m: &Value, at: &str) -> Result<Message, InvalidRequest> {
    let Value::Object(m) = m else {
        return Err(InvalidRequest::at(at, "a message must be an object"));
    };
    let role = match m.get("role").and_then(Value::as_str) {
        Some("system") => Role::System,
        Some("developer") => Role::Developer,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        Some(other) => {
            return Err(InvalidRequest::at(
                format!("{at}.role"),
                format!("unknown role `{other}`"),
            ));
        }
        None => {
            return Err(InvalidRequest::at(
                format!("{at}.role"),
                "a message needs a `role`",
            ));
        }
    };
    let mut msg = Message::new(role);
    match m.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => msg.content.push(ContentPart::Text(s.clone())),
        Some(Value::Array(parts)) => {
            for (i, p) in parts.iter().enumerate() {
                msg.content.push(part(p, &format!("{at}.content[{i}]"))?);
            }
        }
        Some(_) => {
            return Err(InvalidRequest::at(
                format!("{at}.content"),
                "`content` must be a string or an array of parts",
            ));
        }
    }
    if let Some(name) = m.get("name").and_then(Value::as_str) {
        msg.name = Some(name.to_owned());
    }
    if role == Role::Tool {
        match m.get("tool_call_id").and_then(Value::as_str) {
            Some(id) => msg.tool_call_id = Some(id.to_owned()),
            None => {
                return Err(InvalidRequest::at(
                    format!("{at}.tool_call_id"),
                    "a tool message needs `tool_call_id`",
                ));
            }
        }
    }
    if let Some(calls) = m.get("tool_calls") {
        let Value::Array(calls) = calls else {
            return Err(InvalidRequest::at(
                format!("{at}.tool_calls"),
                "`tool_calls` must be an array",
            ));
        };
        for (i, c) in calls.iter().enumerate() {
            let path = format!("{at}.tool_calls[{i}]");
            let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
            let f = c.get("function").ok_or_else(|| {
                InvalidRequest::at(format!("{path}.function"), "a tool call needs `function`")
            })?;
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                InvalidRequest::at(format!("{path}.function.name"), "a tool call needs a name")
            })?;
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            msg.tool_calls.push(ToolCall::new(id, name, args));
        }
    }
    if let Some(r) = m.get("reasoning_content").and_then(Value::as_str) {
        msg.reasoning = Some(r.to_owned());
    }
    Ok(msg)
}

fn part(p: &Value, at: &str) -> Result<ContentPart, InvalidRequest> {
    let kind = p.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => match p.get("text").and_then(Value::as_str) {
            Some(t) => Ok(ContentPart::Text(t.to_owned())),
            None => Err(InvalidRequest::at(
                format!("{at}.text"),
                "a text part needs `text`",
            )),
        },
        Some("image_url") => {
            let image = p.get("image_url");
            let url = image
                .and_then(|i| i.get("url").and_then(Value::as_str).or_else(|| i.as_str()))
                .ok_or_else(|| {
                    InvalidRequest::at(
                        format!("{at}.image_url.url"),
                        "an image part needs `image_url.url`",
                    )
                })?;
            let detail = image
                .and_then(|i| i.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut part = match crate::types::ImageSource::parse_data_url(url) {
                Some((media_type, data)) => ContentPart::image_base64(media_type, data),
                None if url.starts_with("data:") => {
                    return Err(InvalidRequest::at(
                        format!("{at}.image_url.url"),
                        "a data URL image must be base64 (`data:image/png;base64,…`)",
                    ));
                }
                None => ContentPart::image_url(url),
            };
            if let ContentPart::Image { detail: d, .. } = &mut part {
                *d = detail;
            }
            Ok(part)
        }
        Some("input_audio") => {
            let audio = p.get("input_audio");
            let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
            let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
            match (data, format) {
                (Some(d), Some(f)) => Ok(ContentPart::audio(d, f)),
                _ => Err(InvalidRequest::at(
                    format!("{at}.input_audio"),
                    "an audio part needs `data` and `format`",
                )),
            }
        }
        Some(other) => Err(InvalidRequest::at(
            format!("{at}.type"),
            format!("unknown content part type `{other}`"),
        )),
        None => Err(InvalidRequest::at(
            format!("{at}.type"),
            "a content part needs a `type`",
        )),
    }
}

fn tool(t: &Value, at: &str) -> Result<Tool, InvalidRequest> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(InvalidRequest::at(
            format!("{at}.type"),
            "only `function` tools are supported",
        ));
    }
    let f = t
        .get("function")
        .ok_or_else(|| InvalidRequest::at(format!("{at}.function"), "a tool needs `function`"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| InvalidRequest::at(format!("{at}.function.name"), "a tool needs a name"))?;
    let description = f
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parameters = f
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let mut tool = Tool::function(name, description, parameters);
    if description.is_empty() {
        tool.description = None;
    }
    if let Some(strict) = f.get("strict").and_then(Value::as_bool) {
        tool = tool.strict(strict);
    }
    Ok(tool)
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, InvalidRequest> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(InvalidRequest::at(
                "tool_choice",
                format!("unknown tool_choice `{other}`"),
            )),
        },
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Function(n.to_owned()))
            .ok_or_else(|| {
                InvalidRequest::at(
                    "tool_choice.function.name",
                    "a named tool choice needs `function.name`",
                )
            }),
        _ => Err(InvalidRequest::at(
            "tool_choice",
            "`tool_choice` must be a string or an object",
        )),
    }
}

fn response_format(format: &Value) -> Result<ResponseFormat, InvalidRequest> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let s = format.get("json_schema").ok_or_else(|| {
                InvalidRequest::at(
                    "response_format.json_schema",
                    "a JSON-schema format needs `json_schema`",
                )
            })?;
            let name = s
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_owned();
            let schema = s.get("schema").cloned().ok_or_else(|| {
                InvalidRequest::at(
                    "response_format.json_schema.schema",
                    "a JSON-schema format needs `schema`",
                )
            })?;
            let strict = s.get("strict").and_then(Value::as_bool).unwrap_or(false);
            Ok(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            })
        }
        _ => Err(InvalidRequest::at(
            "response_format.type",
            "`response_format.type` must be text, json_object or json_schema",
        )),
    }
}

/// OpenAI's name for a finish reason.
pub fn finish_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other(_) => "stop",
    }
}

/// OpenAI's usage object, with `cost` (USD) when known, as OpenRouter reports it.
pub fn usage_json(usage: &Usage, cost: Option<f64>) -> Value {
    let mut u = json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    });
    if let Some(cost) = cost {
        u["cost"] = json!(cost);
    }
    u
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect(),
    )
}

/// A `chat.completion` object for `response`; `model` is what the client asked for when the
/// gateway should echo it (else the model that answered), `created` the Unix time.
pub fn response_json(response: &ChatResponse, created: u64) -> Value {
    let mut message = json!({"role": "assistant", "content": Value::Null});
    let text = response.text();
    if !text.is_empty() || response.tool_calls().is_empty() {
        message["content"] = Value::String(text);
    }
    if !response.tool_calls().is_empty() {
        message["tool_calls"] = tool_calls_json(response.tool_calls());
    }
    if let Some(r) = &response.reasoning {
        message["reasoning_content"] = Value::String(r.clone());
    }
    let mut out = json!({
        "id": completion_id(&response.id),
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": Value::Null,
            "finish_reason": finish_reason(&response.finish_reason),
        }],
    });
    if let Some(u) = &response.usage {
        out["usage"] = usage_json(u, response.cost);
    }
    out
}

fn completion_id(id: &str) -> String {
    if id.is_empty() {
        format!("chatcmpl-{:016x}", fastrand::u64(..))
    } else {
        id.to_owned()
    }
}

/// Builds the `chat.completion.chunk` events of one stream.
#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    sent_role: bool,
}

impl ChunkWriter {
    /// A writer for a stream `id` (empty: one is made up) from `model`, created at `created`.
    pub fn new(id: &str, model: &str, created: u64) -> Self {
        ChunkWriter {
            id: completion_id(id),
            model: model.to_owned(),
            created,
            sent_role: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": Value::Null, "finish_reason": finish}],
        })
    }

    /// The chunk for one delta, `None` for a delta OpenAI's format has no chunk for (usage,
    /// which goes in [`usage`](Self::usage); signatures).
    pub fn delta(&mut self, delta: &Delta) -> Option<Value> {
        let mut d = match delta {
            Delta::Text(t) => json!({"content": t}),
            Delta::Reasoning(t) => json!({"reasoning_content": t}),
            Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                json!({"tool_calls": [call]})
            }
            Delta::Finish(reason) => {
                return Some(self.chunk(json!({}), Some(finish_reason(reason))));
            }
            _ => return None,
        };
        if !self.sent_role {
            self.sent_role = true;
            d["role"] = json!("assistant");
        }
        Some(self.chunk(d, None))
    }

    /// The last chunk OpenAI sends with `stream_options.include_usage`: no choices, the usage,
    /// and its `cost`.
    pub fn usage(&self, usage: &Usage, cost: Option<f64>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(usage, cost),
        })
    }
}

/// The HTTP status and OpenAI-format body for a router error, per the gateway's contract: an
/// upstream's own 401/403 (the gateway's provider key) is a 502 naming the provider, never the
/// client's 401.
///
/// A router's `AllTargetsFailed` is a 429 when every attempt was rate limited, a 503 when every
/// target's circuit was open, else a 502.
pub fn error_response(err: &Error) -> (u16, Value) {
    let all = |kind: ErrorKind| {
        !err.attempts().is_empty() && err.attempts().iter().all(|e| e.kind() == kind)
    };
    let (status, kind, code) = match err.kind() {
        ErrorKind::AllTargetsFailed if all(ErrorKind::RateLimited) => {
            (429, "rate_limit_error", "rate_limit_exceeded")
        }
        ErrorKind::AllTargetsFailed if all(ErrorKind::CircuitOpen) => {
            (503, "server_error", "circuit_open")
        }
        ErrorKind::InvalidRequest => (400, "invalid_request_error", "invalid_request"),
        ErrorKind::ContextLength => (400, "invalid_request_error", "context_length_exceeded"),
        ErrorKind::ContentFilter => (400, "invalid_request_error", "content_filter"),
        ErrorKind::NotFound => (404, "invalid_request_error", "model_not_found"),
        ErrorKind::BudgetExceeded => (429, "insufficient_quota", "budget_exceeded"),
        ErrorKind::RateLimited | ErrorKind::QuotaExceeded => {
            (429, "rate_limit_error", "rate_limit_exceeded")
        }
        ErrorKind::CircuitOpen => (503, "server_error", "circuit_open"),
        ErrorKind::StateUnavailable => (503, "server_error", "state_unavailable"),
        ErrorKind::Timeout => (504, "timeout", "timeout"),
        ErrorKind::Auth => (502, "upstream_error", "upstream_auth"),
        _ => (502, "upstream_error", err.kind().as_str()),
    };
    let message = match (err.kind(), err.provider()) {
        (ErrorKind::Auth, Some(p)) => {
            format!("the gateway's key for provider `{p}` was refused: {err}")
        }
        // "all 2 attempts failed" alone tells the client nothing: name each attempt's failure.
        (ErrorKind::AllTargetsFailed | ErrorKind::Timeout, _) if !err.attempts().is_empty() => {
            let attempts: Vec<String> = err.attempts().iter().map(ToString::to_string).collect();
            format!("{err} ({})", attempts.join("; "))
        }
        _ => err.to_string(),
    };
    (
        status,
        json!({"error": {"message": message, "type": kind, "param": Value::Null, "code": code}}),
    )
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
