use super::*;
use serde_json::json;
use std::time::Duration;

fn decode_json(v: Value) -> Result<ChatResponse, Error> {
    decode(v.to_string().as_bytes())
}

#[test]
fn text_thoughts_signature_and_usage() {
    let r = decode_json(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Let me check the **units**.", "thought": true},
                {"text": "It is 21 °C"},
                {"text": " in Paris.", "thoughtSignature": "c2lnLTE="},
                {"text": "", "thoughtSignature": "c2lnLTI="}
            ]},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": []
        }],
        "usageMetadata": {
            "promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 59,
            "thoughtsTokenCount": 40, "cachedContentTokenCount": 4,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1"
    }))
    .unwrap();
    assert_eq!(r.id, "resp-1");
    assert_eq!(r.provider, "gemini");
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.text(), "It is 21 °C in Paris.");
    assert_eq!(r.message.content.len(), 1);
    assert_eq!(r.reasoning.as_deref(), Some("Let me check the **units**."));
    assert_eq!(r.message.reasoning, r.reasoning);
    assert_eq!(r.message.reasoning_signature.as_deref(), Some("c2lnLTE="));
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.tool_calls().is_empty());
    assert_eq!(
        r.usage,
        Some(Usage {
            input_tokens: 12,
            output_tokens: 47,
            cached_input_tokens: 4,
            cache_creation_input_tokens: 0,
            cache_creation_1h_input_tokens: 0,
            reasoning_tokens: 40,
        })
    );
    assert_eq!(r.cost, None);
}

#[test]
fn function_calls_get_ids_and_keep_signatures() {
    let r = decode_json(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": "c2lnLWZj"},
                {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
                {"functionCall": {"id": "srv-7", "name": "ping"}}
            ]},
            "finishReason": "STOP"
        }],
        "modelVersion": "gemini-2.5-pro"
    }))
    .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.usage, None);
    assert_eq!(r.id, "");
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(
        calls[0].parse_arguments().unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(calls[0].signature.as_deref(), Some("c2lnLWZj"));
    assert_eq!(calls[1].signature, None);
    assert_eq!(calls[1].arguments, r#"{"tz":"CET"}"#);
    assert_eq!(calls[2].id, "srv-7");
    assert_eq!(calls[2].arguments, "{}");
    // Generated ids: call_<n>_<token>, one token per response.
    let token = calls[0].id.strip_prefix("call_0_").expect("generated id");
    assert_eq!(token.len(), 12);
    assert_eq!(calls[1].id, format!("call_1_{token}"));
    assert!(r.message.reasoning_signature.is_none());

    // Another response gets another token.
    let again = decode_json(json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "get_weather", "args": {}}}]}, "finishReason": "STOP"}]}))
    .unwrap();
    assert_ne!(again.tool_calls()[0].id, calls[0].id);
}

#[test]
fn finish_reasons() {
    let cases = [
        ("STOP", false, FinishReason::Stop),
        ("STOP", true, FinishReason::ToolCalls),
        ("MAX_TOKENS", true, FinishReason::Length),
        ("SAFETY", false, FinishReason::ContentFilter),
        ("RECITATION", false, FinishReason::ContentFilter),
        ("BLOCKLIST", false, FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", false, FinishReason::ContentFilter),
        ("SPII", false, FinishReason::ContentFilter),
        ("IMAGE_SAFETY", false, FinishReason::ContentFilter),
        ("LANGUAGE", false, FinishReason::Other("LANGUAGE".into())),
        (
            "MALFORMED_FUNCTION_CALL",
            false,
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into()),
        ),
        ("OTHER", false, FinishReason::Other("OTHER".into())),
    ];
    for (reason, calls, expected) in cases {
        assert_eq!(finish_reason(reason, calls), expected, "{reason}");
    }
    // A candidate stopped for safety may have no content at all.
    let r = decode_json(json!({"candidates": [{"finishReason": "SAFETY"}]})).unwrap();
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.text(), "");
    // No finish reason at all reads as a natural stop.
    let r = decode_json(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})).unwrap();
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

#[test]
fn a_blocked_prompt_is_a_content_filter_error() {
    let err = decode_json(json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT",
                           "blockReasonMessage": "The prompt violates policy."},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash"
    }))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFilter);
    assert_eq!(err.code(), Some("PROHIBITED_CONTENT"));
    assert!(err.message().contains("PROHIBITED_CONTENT"));
    assert!(err.message().contains("violates policy"));
    assert!(!err.is_retryable());

    let err = decode_json(json!({"modelVersion": "x"})).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(decode(b"{not json").unwrap_err().kind(), ErrorKind::Decode);
}

#[test]
fn a_success_status_with_an_error_body_is_an_error() {
    let body = json!([{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]);
    let err = decode_json(body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    let body = json!({"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}});
    assert_eq!(decode_json(body).unwrap_err().kind(), ErrorKind::Server);
}

fn detail(status: u16, body: Value) -> ErrorDetail {
    error_detail(status, body.to_string().as_bytes())
}

fn quota_body(quota_id: &str, message: &str) -> Value {
    json!({"error": {
        "code": 429,
        "message": message,
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10"
            }]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
        ]
    }})
}

const QUOTA_MESSAGE: &str =
    "You exceeded your current quota, please check your plan and billing details.";

#[test]
fn per_minute_limits_are_rate_limits_with_the_body_retry_delay() {
    let d = detail(
        429,
        quota_body(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            QUOTA_MESSAGE,
        ),
    );
    assert!(d.recognized);
    assert_eq!(d.kind, Some(ErrorKind::RateLimited));
    assert_eq!(d.retry_after, Some(Duration::from_secs(37)));
    assert_eq!(d.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(d.message.as_deref(), Some(QUOTA_MESSAGE));

    let bare = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}});
    let d = detail(429, bare);
    assert_eq!(d.kind, Some(ErrorKind::RateLimited));
    assert_eq!(d.retry_after, None);
}

#[test]
fn hard_quotas_are_quota_exceeded() {
    let d = detail(
        429,
        quota_body(
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            QUOTA_MESSAGE,
        ),
    );
    assert_eq!(d.kind, Some(ErrorKind::QuotaExceeded));
    assert_eq!(d.retry_after, Some(Duration::from_secs(37)));

    let mut zero = quota_body(
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        QUOTA_MESSAGE,
    );
    zero["error"]["details"][0]["violations"][0]["quotaValue"] = json!("0");
    assert_eq!(detail(429, zero).kind, Some(ErrorKind::QuotaExceeded));

    let limit_zero = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
        "You exceeded your current quota.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro\nPlease retry in 20.04s."}});
    assert_eq!(detail(429, limit_zero).kind, Some(ErrorKind::QuotaExceeded));

    let credits = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
        "Your prepayment credits are depleted. Please go to AI Studio to manage your project and billing."}});
    assert_eq!(detail(429, credits).kind, Some(ErrorKind::QuotaExceeded));
}

#[test]
fn statuses_and_reasons_map_to_kinds() {
    let overloaded = json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}});
    assert_eq!(detail(503, overloaded).kind, Some(ErrorKind::Overloaded));

    let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": "API key not valid. Please pass a valid API key."}]}});
    let d = detail(400, bad_key);
    assert_eq!(d.kind, Some(ErrorKind::Auth));
    assert_eq!(d.code.as_deref(), Some("API_KEY_INVALID"));

    let denied = json!({"error": {"code": 403, "message": "Method doesn't allow unregistered callers.", "status": "PERMISSION_DENIED"}});
    assert_eq!(detail(403, denied).kind, Some(ErrorKind::Auth));

    let missing = json!({"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta.", "status": "NOT_FOUND"}});
    assert_eq!(detail(404, missing).kind, Some(ErrorKind::NotFound));

    let too_long = json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}});
    assert_eq!(detail(400, too_long).kind, Some(ErrorKind::ContextLength));

    let invalid = json!({"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}});
    assert_eq!(detail(400, invalid).kind, Some(ErrorKind::InvalidRequest));

    let region = json!({"error": {"code": 400, "message": "User location is not supported for the API use.", "status": "FAILED_PRECONDITION"}});
    assert_eq!(detail(400, region).kind, Some(ErrorKind::InvalidRequest));

    let internal = json!({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}});
    assert_eq!(detail(500, internal).kind, Some(ErrorKind::Server));

    let deadline = json!({"error": {"code": 504, "message": "Deadline expired.", "status": "DEADLINE_EXCEEDED"}});
    assert_eq!(detail(504, deadline).kind, Some(ErrorKind::Timeout));

    // Inside a stream (no HTTP status) the body's own code decides.
    let d = detail(0, json!({"error": {"code": 503, "message": "busy"}}));
    assert_eq!(d.kind, Some(ErrorKind::Overloaded));
    // An unknown status leaves the transport's status mapping in charge.
    assert_eq!(
        detail(418, json!({"error": {"code": 418, "message": "teapot"}})).kind,
        None
    );
}

#[test]
fn wrapped_and_foreign_bodies() {
    let wrapped = json!([{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}]);
    let d = detail(429, wrapped);
    assert_eq!(d.kind, Some(ErrorKind::RateLimited));
    assert_eq!(d.retry_after, Some(Duration::from_millis(1500)));
    assert_eq!(d.message.as_deref(), Some("slow down"));

    assert_eq!(
        error_detail(502, b"<html>Bad Gateway</html>"),
        ErrorDetail::default()
    );
    assert_eq!(
        detail(400, json!({"message": "nope"})),
        ErrorDetail::default()
    );
    assert_eq!(detail(400, json!([])), ErrorDetail::default());
    assert_eq!(
        detail(400, json!({"error": "text"})),
        ErrorDetail::default()
    );
}

#[test]
fn strings_are_borrowed_from_the_body_unless_escaped() {
    let data = r#"{"candidates": [{"content": {"parts": [{"text": "plain", "thoughtSignature": "c2ln"}, {"text": "tab\there"}]}, "finishReason": "STOP"}], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}"#;
    let wire: WireResponse<'_> = serde_json::from_str(data).unwrap();
    assert!(matches!(
        wire.model_version,
        Some(Cow::Borrowed("gemini-2.5-flash"))
    ));
    assert!(matches!(wire.response_id, Some(Cow::Borrowed("r1"))));
    let candidate = wire.candidates.unwrap();
    assert!(matches!(
        candidate.finish_reason,
        Some(Cow::Borrowed("STOP"))
    ));
    let parts = candidate.content.unwrap().parts;
    assert!(matches!(parts[0].text, Some(Cow::Borrowed("plain"))));
    assert!(matches!(
        parts[0].thought_signature,
        Some(Cow::Borrowed("c2ln"))
    ));
    assert_eq!(parts[1].text.as_deref(), Some("tab\there"));
}
