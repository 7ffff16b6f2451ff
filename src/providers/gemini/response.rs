//! `GenerateContentResponse` JSON → normalized response; error bodies → [`ErrorDetail`].
//!
//! The wire structs borrow from the body (text, signatures and arguments are copied only once,
//! into the normalized values) and are shared with the stream decoder, whose chunks are whole
//! `GenerateContentResponse`s.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind};
use crate::providers::serde_util::{first, opt_cow};
use crate::transport::ErrorDetail;
use crate::transport::retry_after::parse_google_duration;
use crate::types::{ChatResponse, ContentPart, FinishReason, Message, Role, ToolCall, Usage};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResponse<'a> {
    // Only the first candidate matters (candidateCount is never set); reading it this way
    // allocates no Vec per chunk.
    #[serde(default, borrow, deserialize_with = "first")]
    pub(super) candidates: Option<Candidate<'a>>,
    #[serde(default, borrow)]
    pub(super) prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub(super) usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) response_id: Option<Cow<'a, str>>,
    /// Set when the body is an error object rather than a response.
    #[serde(default)]
    pub(super) error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate<'a> {
    #[serde(default, borrow)]
    pub(super) content: Option<CandidateContent<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct CandidateContent<'a> {
    #[serde(default, borrow)]
    pub(super) parts: Vec<WirePart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePart<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) thought: Option<bool>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) function_call: Option<WireFunctionCall<'a>>,
}

impl WirePart<'_> {
    pub(super) fn is_thought(&self) -> bool {
        self.thought == Some(true)
    }
}

#[derive(Deserialize)]
pub(super) struct WireFunctionCall<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) args: Option<&'a RawValue>,
}

impl WireFunctionCall<'_> {
    /// The arguments as the server wrote them; `{}` when it sent none.
    pub(super) fn arguments(&self) -> String {
        self.args
            .map_or_else(|| "{}".to_owned(), |a| a.get().to_owned())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) block_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(super) block_reason_message: Option<Cow<'a, str>>,
}

/// `usageMetadata`; absent counts read as zero.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<u64>,
    #[serde(default)]
    total_token_count: Option<u64>,
}

impl UsageMetadata {
    /// The normalized usage, or `None` when the server reported no counts.
    ///
    /// Input is `promptTokenCount` (cached tokens included) plus `toolUsePromptTokenCount`;
    /// output is `candidatesTokenCount + thoughtsTokenCount`, since Gemini counts thoughts apart
    /// from the candidates but bills them as output.
    pub(super) fn normalize(&self) -> Option<Usage> {
        if self.prompt_token_count.is_none()
            && self.candidates_token_count.is_none()
            && self.thoughts_token_count.is_none()
            && self.total_token_count.is_none()
        {
            return None;
        }
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        Some(Usage {
            input_tokens: self.prompt_token_count.unwrap_or(0)
                + self.tool_use_prompt_token_count.unwrap_or(0),
            output_tokens: self.candidates_token_count.unwrap_or(0) + thoughts,
            cached_input_tokens: self.cached_content_token_count.unwrap_or(0),
            cache_creation_input_tokens: 0,
            cache_creation_1h_input_tokens: 0,
            reasoning_tokens: thoughts,
        })
    }
}

/// Ids for function calls the server sent without one: `call_<n>_<token>`, where `n` counts the
/// calls of the response and `token` is random per response, so that ids stay unique across the
/// turns of a conversation (a tool result finds its call's name by id).
#[derive(Debug, Default)]
pub(super) struct CallIds {
    token: Option<String>,
}

impl CallIds {
    pub(super) fn id(&mut self, n: usize) -> String {
        let token = self
            .token
            .get_or_insert_with(|| (0..12).map(|_| fastrand::alphanumeric()).collect());
        format!("call_{n}_{token}")
    }
}

/// `Some(owned)` for a non-empty string.
pub(super) fn non_empty(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// `finishReason` → normalized. `STOP` in a turn that called functions is `ToolCalls`.
pub(super) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The error for a prompt Gemini refused to answer (`promptFeedback.blockReason`).
pub(super) fn blocked(feedback: &PromptFeedback<'_>) -> Option<Error> {
    let reason = feedback.block_reason.as_deref().filter(|r| !r.is_empty())?;
    let mut message = format!("the prompt was blocked ({reason})");
    if let Some(detail) = feedback
        .block_reason_message
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        message.push_str(": ");
        message.push_str(detail);
    }
    Some(Error::new(ErrorKind::ContentFilter, message).with_code(Some(reason.to_owned())))
}

/// Decodes a complete answer.
pub(super) fn decode(body: &[u8]) -> Result<ChatResponse, Error> {
    let resp: WireResponse<'_> = match serde_json::from_slice(body) {
        Ok(resp) => resp,
        Err(e) => {
            return Err(body_error(body).unwrap_or_else(|| {
                Error::decode(format!("malformed Gemini response: {e}")).with_source(e)
            }));
        }
    };
    if resp.error.is_some() {
        return Err(body_error(body)
            .unwrap_or_else(|| Error::decode("the Gemini response carries an unreadable error")));
    }
    let Some(candidate) = resp.candidates else {
        if let Some(err) = resp.prompt_feedback.as_ref().and_then(blocked) {
            return Err(err);
        }
        return Err(Error::decode("the Gemini response has no candidates"));
    };

    let mut ids = CallIds::default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut signature: Option<String> = None;
    let mut calls: Vec<ToolCall> = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = &part.function_call {
            let n = calls.len();
            calls.push(ToolCall {
                id: non_empty(call.id.clone()).unwrap_or_else(|| ids.id(n)),
                name: call.name.as_deref().unwrap_or_default().to_owned(),
                arguments: call.arguments(),
                signature: non_empty(part.thought_signature),
            });
            continue;
        }
        if let Some(t) = &part.text {
            if part.is_thought() {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        }
        // Text parts carry at most one signature (on the last part); keep the first seen.
        if signature.is_none() {
            signature = non_empty(part.thought_signature);
        }
    }

    let finish = match candidate.finish_reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => finish_reason(reason, !calls.is_empty()),
        None if calls.is_empty() => FinishReason::Stop,
        None => FinishReason::ToolCalls,
    };
    let mut message = Message::new(Role::Assistant);
    if !text.is_empty() {
        message.content.push(ContentPart::Text(text));
    }
    message.tool_calls = calls;
    let reasoning = (!reasoning.is_empty()).then_some(reasoning);
    message.reasoning = reasoning.clone();
    message.reasoning_signature = signature;
    Ok(ChatResponse {
        id: resp.response_id.map(Cow::into_owned).unwrap_or_default(),
        provider: super::PROVIDER.to_owned(),
        model: resp.model_version.map(Cow::into_owned).unwrap_or_default(),
        message,
        reasoning,
        finish_reason: finish,
        usage: resp
            .usage_metadata
            .as_ref()
            .and_then(UsageMetadata::normalize),
        cost: None,
        route: None,
        rate_limit: None,
    })
}

/// The error a body (or a piece of a stream) describes, when it is Gemini's error object.
pub(super) fn body_error(text: &[u8]) -> Option<Error> {
    let value: Value = serde_json::from_slice(text).ok()?;
    let detail = detail_from_value(&value, 0);
    detail
        .recognized
        .then(|| detail.into_stream_error(ErrorKind::Server))
}

/// Reads an error body (see [`detail_from_value`]).
pub(super) fn error_detail(status: u16, body: &[u8]) -> ErrorDetail {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => detail_from_value(&value, status),
        Err(_) => ErrorDetail::default(),
    }
}

/// The detail of `{"error": {code, message, status, details}}`, possibly wrapped in a
/// one-element array. `http_status` is the response's status (0 inside a stream, where the
/// body's own `code` stands in for it).
///
/// Classification, by the body's `status` first, then by the status code:
/// - `RESOURCE_EXHAUSTED` / 429: `RateLimited`, with the retry hint from the
///   `google.rpc.RetryInfo` `retryDelay`; `QuotaExceeded` only for a hard quota (see
///   [`is_hard_quota`]);
/// - `UNAVAILABLE` / 503: `Overloaded`; `INTERNAL`, `UNKNOWN` / 500: `Server`;
///   `DEADLINE_EXCEEDED` / 504: `Timeout`;
/// - `INVALID_ARGUMENT` / 400: `Auth` when an `ErrorInfo` reason says the key is invalid,
///   `ContextLength` when the message says the input exceeds the token limit, else
///   `InvalidRequest`; `FAILED_PRECONDITION` (such as an unsupported region): `InvalidRequest`;
/// - `UNAUTHENTICATED` / 401, `PERMISSION_DENIED` / 403: `Auth`; `NOT_FOUND` / 404: `NotFound`.
pub(super) fn detail_from_value(value: &Value, http_status: u16) -> ErrorDetail {
    let value = match value {
        Value::Array(items) => match items.first() {
            Some(first) => first,
            None => return ErrorDetail::default(),
        },
        other => other,
    };
    let Some(error) = value.get("error").filter(|e| e.is_object()) else {
        return ErrorDetail::default();
    };
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let status = error.get("status").and_then(Value::as_str).unwrap_or("");
    let code = match http_status {
        0 | 200..=299 => error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        s => s,
    };
    let details: &[Value] = error
        .get("details")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let of_type = |suffix: &'static str| {
        details.iter().filter(move |d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(suffix))
        })
    };
    let reason = of_type("google.rpc.ErrorInfo")
        .find_map(|d| d.get("reason").and_then(Value::as_str))
        .map(str::to_owned);
    let retry_after = of_type("google.rpc.RetryInfo")
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(parse_google_duration);
    let text = message.as_deref().unwrap_or("").to_ascii_lowercase();

    let key_rejected = matches!(
        reason.as_deref(),
        Some("API_KEY_INVALID" | "API_KEY_EXPIRED" | "API_KEY_SERVICE_BLOCKED")
    ) || text.contains("api key not valid")
        || text.contains("api key expired");
    let kind = match (status, code) {
        _ if key_rejected => Some(ErrorKind::Auth),
        ("RESOURCE_EXHAUSTED", _) | (_, 429) => Some(if is_hard_quota(details, &text) {
            ErrorKind::QuotaExceeded
        } else {
            ErrorKind::RateLimited
        }),
        ("INVALID_ARGUMENT", _) | ("", 400) => Some(
            if text.contains("exceeds the maximum number of tokens")
                || (text.contains("input token count") && text.contains("exceeds"))
            {
                ErrorKind::ContextLength
            } else {
                ErrorKind::InvalidRequest
            },
        ),
        ("FAILED_PRECONDITION" | "OUT_OF_RANGE", _) => Some(ErrorKind::InvalidRequest),
        ("UNAUTHENTICATED" | "PERMISSION_DENIED", _) | ("", 401 | 403) => Some(ErrorKind::Auth),
        ("NOT_FOUND", _) | ("", 404) => Some(ErrorKind::NotFound),
        ("UNAVAILABLE", _) | ("", 503) => Some(ErrorKind::Overloaded),
        ("DEADLINE_EXCEEDED", _) | ("", 504) => Some(ErrorKind::Timeout),
        ("INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "ABORTED", _) | ("", 500) => {
            Some(ErrorKind::Server)
        }
        _ => None,
    };
    ErrorDetail {
        recognized: true,
        message,
        code: reason.or_else(|| (!status.is_empty()).then(|| status.to_owned())),
        kind,
        retry_after,
    }
}

/// Whether a `RESOURCE_EXHAUSTED` error is a quota that waiting a little will not refill.
///
/// Gemini words every 429 "You exceeded your current quota, please check your plan and billing
/// details", per-minute limits included, so the message alone says nothing. The `QuotaFailure`
/// violations do: a per-day quota (`…PerDay…` in the quota id or metric) or a quota of `0` (the
/// model is not available on the project's tier; also visible as `limit: 0` in the message)
/// is hard. So are depleted prepaid credits and a reached spending cap. Everything else,
/// per-minute request and token limits and the bare "Resource has been exhausted", is a rate
/// limit, retried after the server's `retryDelay`.
fn is_hard_quota(details: &[Value], lower_message: &str) -> bool {
    let violations = details
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.QuotaFailure"))
        })
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten();
    for v in violations {
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        let per_day = ["quotaId", "quotaMetric", "subject", "description"]
            .iter()
            .any(|k| {
                let f = field(k).to_ascii_lowercase();
                f.contains("perday") || f.contains("per_day") || f.contains("per day")
            });
        let zero =
            field("quotaValue") == "0" || v.get("quotaValue").and_then(Value::as_u64) == Some(0);
        if per_day || zero {
            return true;
        }
    }
    lower_message.contains("limit: 0,")
        || lower_message.contains("prepayment credits")
        || lower_message.contains("spending cap")
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
