//! OpenAI-format JSON → normalized response; error bodies → [`ErrorDetail`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::providers::serde_util::opt_cow;
use crate::transport::{ErrorDetail, kind_for_status};
use crate::types::{ChatResponse, ContentPart, FinishReason, Message, Role, ToolCall, Usage};

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    message: Option<ResponseMessage<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    // OpenRouter and some compatible servers name it `reasoning`.
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ResponseToolCall>>,
}

#[derive(Deserialize)]
struct ResponseToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ResponseFunction>,
}

#[derive(Deserialize)]
struct ResponseFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A message's (or a stream delta's) `content`: a string, or an array of typed parts, as
/// Mistral sends (`[{"type":"text","text":…}, {"type":"thinking","thinking":[{"type":"text",
/// "text":…}]}]`). A string is borrowed from the input, as a bare string field would be.
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentChunk<'a>>),
}

/// One part of an array `content`. Parts other than text and thinking (images, references…)
/// are skipped.
#[derive(Deserialize)]
pub(super) struct ContentChunk<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "opt_cow")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    /// A thinking part's own content: an array of text parts (or a string).
    #[serde(default, borrow)]
    thinking: Option<Content<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContentVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(ContentVisitor(PhantomData))
    }
}

impl<'a> Content<'a> {
    /// Calls `f(is_thinking, text)` for each non-empty piece of text, in order. Text inside a
    /// `thinking` part is reasoning.
    pub(super) fn for_each(self, f: &mut impl FnMut(bool, Cow<'a, str>)) {
        self.visit(false, f);
    }

    fn visit(self, thinking: bool, f: &mut impl FnMut(bool, Cow<'a, str>)) {
        match self {
            Content::Text(t) if t.is_empty() => {}
            Content::Text(t) => f(thinking, t),
            Content::Parts(parts) => {
                for part in parts {
                    match part.kind.as_deref() {
                        Some("thinking") => {
                            if let Some(inner) = part.thinking {
                                inner.visit(true, f);
                            }
                        }
                        Some("text") | None => {
                            if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                                f(thinking, text);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// `usage` as every flavor sends it; absent fields (`usage: {}`) read as "not reported".
#[derive(Deserialize, Default, Debug)]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cost: Option<f64>,
}

#[derive(Deserialize, Default, Debug)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// The normalized usage, or `None` when the server reported no counts. With
    /// `reasoning_apart` (xAI), `completion_tokens` excludes the reasoning tokens, which are
    /// added to `output_tokens`; elsewhere they are already part of it.
    pub(super) fn normalize(&self, reasoning_apart: bool) -> Option<Usage> {
        if self.prompt_tokens.is_none() && self.completion_tokens.is_none() {
            return None;
        }
        let reasoning = self
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0);
        Some(Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: if reasoning_apart {
                completion + reasoning
            } else {
                completion
            },
            cached_input_tokens: cached,
            cache_creation_input_tokens: 0,
            cache_creation_1h_input_tokens: 0,
            reasoning_tokens: reasoning,
        })
    }
}

/// `finish_reason` → normalized; `None` for an absent or empty one (some servers send `""`).
pub(super) fn finish_reason(reason: &str) -> Option<FinishReason> {
    Some(match reason {
        "" => return None,
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    })
}

/// Decodes a complete answer.
pub(super) fn decode(
    body: &[u8],
    provider: &str,
    reasoning_apart: bool,
) -> Result<ChatResponse, Error> {
    // Leading blank lines (DeepSeek's keep-alive under load) are JSON whitespace.
    let completion: Completion<'_> = serde_json::from_slice(body)
        .map_err(|e| Error::decode(format!("malformed chat completion: {e}")).with_source(e))?;
    if let Some(error) = &completion.error {
        let detail = detail_from_error_value(error);
        return Err(detail.into_stream_error(ErrorKind::Server));
    }
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| Error::decode("chat completion has no choices"))?;
    let wire = choice.message.unwrap_or(ResponseMessage {
        content: None,
        refusal: None,
        reasoning_content: None,
        reasoning: None,
        tool_calls: None,
    });
    let mut message = Message::new(Role::Assistant);
    let mut finish = choice.finish_reason.as_deref().and_then(finish_reason);
    let mut reasoning = wire.reasoning_content.or(wire.reasoning);
    let content = match wire.content {
        None => None,
        Some(Content::Text(text)) => Some(text.into_owned()),
        Some(parts) => {
            // Mistral's parts: text parts are the answer, thinking parts its reasoning.
            let mut text = String::new();
            parts.for_each(&mut |thinking, piece| {
                if thinking {
                    reasoning.get_or_insert_with(String::new).push_str(&piece);
                } else {
                    text.push_str(&piece);
                }
            });
            Some(text)
        }
    };
    match (content, wire.refusal) {
        (Some(text), _) if !text.is_empty() => message.content.push(ContentPart::Text(text)),
        (_, Some(refusal)) if !refusal.is_empty() => {
            message.content.push(ContentPart::Text(refusal));
            finish = Some(FinishReason::ContentFilter);
        }
        _ => {}
    }
    for call in wire.tool_calls.unwrap_or_default() {
        let function = call.function.unwrap_or(ResponseFunction {
            name: None,
            arguments: None,
        });
        message.tool_calls.push(ToolCall::new(
            call.id.unwrap_or_default(),
            function.name.unwrap_or_default(),
            function.arguments.unwrap_or_default(),
        ));
    }
    let reasoning = reasoning.filter(|r| !r.is_empty());
    message.reasoning = reasoning.clone();
    let finish_reason = finish.unwrap_or(if message.tool_calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    });
    Ok(ChatResponse {
        id: completion.id.map(Cow::into_owned).unwrap_or_default(),
        provider: provider.to_owned(),
        model: completion.model.map(Cow::into_owned).unwrap_or_default(),
        message,
        reasoning,
        finish_reason,
        usage: completion
            .usage
            .as_ref()
            .and_then(|u| u.normalize(reasoning_apart)),
        cost: completion.usage.as_ref().and_then(|u| u.cost),
        route: None,
        rate_limit: None,
    })
}

/// Reads an error body: `{"error": {message, type, code, param}}`, `{"error": "text"}`, or the
/// `{"detail": …}` / `{"message": …}` shapes some compatible servers send.
pub(super) fn error_detail(_status: u16, body: &[u8]) -> ErrorDetail {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ErrorDetail::default();
    };
    match value.get("error") {
        Some(error) => detail_from_error_value(error),
        // vLLM and Mistral send the error object itself: `{"object": "error", "message", "type",
        // "code"}`.
        None if is_error_object(&value) => detail_from_error_value(&value),
        None => {
            let message = ["detail", "message"]
                .iter()
                .find_map(|k| value.get(*k))
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned));
            ErrorDetail {
                recognized: message.is_some(),
                message,
                ..ErrorDetail::default()
            }
        }
    }
}

/// Whether a JSON object is itself an error (`"object": "error"`, as vLLM and Mistral send).
pub(super) fn is_error_object(value: &Value) -> bool {
    value.get("object").and_then(Value::as_str) == Some("error")
}

/// The detail of an `error` value (object or string), with the kind its type/code implies.
pub(super) fn detail_from_error_value(error: &Value) -> ErrorDetail {
    if let Some(text) = error.as_str() {
        return ErrorDetail {
            recognized: true,
            message: Some(text.to_owned()),
            ..ErrorDetail::default()
        };
    }
    let text_field = |k: &str| {
        error.get(k).and_then(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let code = text_field("code");
    let kind_name = text_field("type");
    // A numeric code is an HTTP status (OpenRouter: "the same status code as error.code"),
    // which matters when the error arrives inside a 200.
    let status_code = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let message = text_field("message");
    let kind = [code.as_deref(), kind_name.as_deref()]
        .into_iter()
        .flatten()
        .find_map(kind_for_code)
        .or(status_code.map(kind_for_status));
    // DeepSeek (and vLLM) say it only in the message, with the generic `invalid_request_error`:
    // "This model's maximum context length is 65536 tokens. However, you requested …".
    let kind = match kind {
        None | Some(ErrorKind::InvalidRequest)
            if message.as_deref().is_some_and(is_context_length_message) =>
        {
            Some(ErrorKind::ContextLength)
        }
        kind => kind,
    };
    ErrorDetail {
        recognized: true,
        message,
        code: code.or(kind_name),
        kind,
        retry_after: None,
    }
}

/// Whether an error message says the prompt does not fit the model's context window.
fn is_context_length_message(message: &str) -> bool {
    message.contains("maximum context length is")
}

/// OpenAI-format error codes and types that say more than the status does.
fn kind_for_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "insufficient_quota" | "billing_hard_limit_reached" | "insufficient_balance" => {
            ErrorKind::QuotaExceeded
        }
        "context_length_exceeded" | "string_above_max_length" => ErrorKind::ContextLength,
        "rate_limit_exceeded" | "rate_limit_error" | "tokens" | "requests" => {
            ErrorKind::RateLimited
        }
        "invalid_api_key" | "authentication_error" | "permission_error" => ErrorKind::Auth,
        "content_filter" | "content_policy_violation" => ErrorKind::ContentFilter,
        "model_not_found" => ErrorKind::NotFound,
        // `server_error` is deliberately absent: OpenAI sends it with 500 and with 503 ("That
        // model is currently overloaded"), so the status says more than the type does.
        "overloaded_error"
        | "server_overloaded"
        | "engine_overloaded"
        | "server_is_overloaded"
        | "service_unavailable_error" => ErrorKind::Overloaded,
        _ => return None,
    })
}
