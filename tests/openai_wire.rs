//! OpenAI wire tests: exact transcripts replayed in 1- to 7-byte pieces, several piece-size seeds
//! each, checking every normalized field and what was sent.
#![cfg(feature = "openai")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use modelgate::providers::{OpenAi, OpenAiBuilder};
use modelgate::types::ReasoningEffort;
use modelgate::{
    ChatProvider, ChatRequest, ContentPart, Delta, Error, ErrorKind, FinishReason, Role, Tool,
    ToolCall, ToolChoice, Usage,
};
use serde_json::json;
use support::{Canned, Ending, MockServer, drain, text};

const KEY: &str = "sk-test-key-123456";
const SEEDS: [u64; 4] = [0x5eed, 1, 42, 0xdead_beef];

fn builder(server: &MockServer) -> OpenAiBuilder {
    OpenAi::builder()
        .api_key(KEY)
        .base_url(format!("{}/v1", server.url()))
}

fn openai(server: &MockServer) -> OpenAi {
    builder(server).build().unwrap()
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

// ---------------------------------------------------------------------------------------------
// Non-streaming answers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn chat_text_answer_with_cached_tokens() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("openai/chat_text.http")], seed).await;
        let req = ChatRequest::new("gpt-4o")
            .developer("Be terse.")
            .user("What is the capital of France?")
            .max_tokens(50)
            .temperature(0.5)
            .metadata("tenant", "acme");
        let r = openai(&server).chat(&req).await.unwrap();
        assert_eq!(r.id, "chatcmpl-CdE3x9YbQk2LwPz7Vn4RtS8uA1mJo");
        assert_eq!(r.provider, "openai");
        assert_eq!(r.model, "gpt-4o-2024-08-06");
        assert_eq!(r.message.role, Role::Assistant);
        assert_eq!(
            r.message.content,
            vec![ContentPart::text("Paris is the capital of France.")]
        );
        assert_eq!(r.text(), "Paris is the capital of France.");
        assert!(r.tool_calls().is_empty());
        assert_eq!(r.reasoning, None);
        assert_eq!(r.message.reasoning, None);
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Some(Usage::new(1342, 9).with_cached_input_tokens(1280))
        );
        // Priced from the built-in table: 62 × $2.50 + 1280 × $1.25 + 9 × $10.
        assert!((r.cost.unwrap() - 0.001845).abs() < 1e-12);
        assert!(r.route.is_none());

        let sent = server.last();
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(
            sent.header("authorization"),
            Some("Bearer sk-test-key-123456")
        );
        assert_eq!(sent.header("content-type"), Some("application/json"));
        // Exactly these keys: no `stream`, no nulls, metadata is never sent.
        assert_eq!(
            sent.body,
            json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "developer", "content": "Be terse."},
                    {"role": "user", "content": "What is the capital of France?"}
                ],
                "temperature": 0.5,
                "max_completion_tokens": 50
            })
        );
    }
}

#[tokio::test]
async fn chat_parallel_tool_calls() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("openai/chat_tool_calls.http")], seed)
                .await;
        let req = ChatRequest::new("gpt-4.1")
            .user("Weather in Paris and Tokyo?")
            .tool(weather_tool().strict(true))
            .tool_choice(ToolChoice::Required)
            .parallel_tool_calls(true);
        let r = openai(&server).chat(&req).await.unwrap();
        assert_eq!(r.model, "gpt-4.1-2025-04-14");
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert!(r.message.content.is_empty());
        assert_eq!(r.text(), "");
        assert_eq!(
            r.tool_calls(),
            &[
                ToolCall::new(
                    "call_Qm3vX8pLr2TnY6kWb1ZsH4dC",
                    "get_weather",
                    r#"{"city":"Paris","unit":"celsius"}"#
                ),
                ToolCall::new(
                    "call_9ZxGh2Jk5Lm8Np1Qr4St7Uv0",
                    "get_weather",
                    r#"{"city":"Tokyo","unit":"celsius"}"#
                ),
            ]
        );
        assert_eq!(
            r.tool_calls()[1].parse_arguments().unwrap(),
            json!({"city": "Tokyo", "unit": "celsius"})
        );
        assert_eq!(r.usage, Some(Usage::new(118, 52)));

        let sent = server.last().body;
        assert_eq!(
            sent["tools"],
            json!([{
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                    "strict": true
                }
            }])
        );
        assert_eq!(sent["tool_choice"], "required");
        assert_eq!(sent["parallel_tool_calls"], true);
    }
}

#[tokio::test]
async fn a_tool_loop_sends_the_calls_and_results_back() {
    let server = MockServer::start(vec![
        Canned::fixture("openai/chat_tool_calls.http"),
        Canned::fixture("openai/chat_text.http"),
    ])
    .await;
    let provider = openai(&server);
    let req = ChatRequest::new("gpt-4.1")
        .system("You are a weather bot.")
        .user("Weather in Paris and Tokyo?")
        .tool(weather_tool())
        .tool_choice(ToolChoice::Function("get_weather".into()));
    let first = provider.chat(&req).await.unwrap();
    let calls = first.tool_calls().to_vec();
    let req = req
        .message(first.message)
        .tool_result(&calls[0].id, r#"{"temp":18}"#)
        .tool_result(&calls[1].id, r#"{"temp":24}"#);
    provider.chat(&req).await.unwrap();

    let sent = server.last().body;
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_Qm3vX8pLr2TnY6kWb1ZsH4dC", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},
                {"id": "call_9ZxGh2Jk5Lm8Np1Qr4St7Uv0", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\",\"unit\":\"celsius\"}"}}
            ]},
            {"role": "tool", "content": "{\"temp\":18}", "tool_call_id": "call_Qm3vX8pLr2TnY6kWb1ZsH4dC"},
            {"role": "tool", "content": "{\"temp\":24}", "tool_call_id": "call_9ZxGh2Jk5Lm8Np1Qr4St7Uv0"}
        ])
    );
}

#[tokio::test]
async fn chat_reasoning_model_with_json_schema() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("openai/chat_reasoning.http")], seed)
                .await;
        let schema = json!({
            "type": "object",
            "properties": {"answer": {"type": "integer"}, "confidence": {"type": "string"}},
            "required": ["answer", "confidence"],
            "additionalProperties": false
        });
        let req = ChatRequest::new("o4-mini")
            .user_parts([
                ContentPart::text("What is in this image?"),
                ContentPart::image_url("https://example.com/cat.png"),
                ContentPart::image_base64("image/png", "iVBORw0KGgo="),
            ])
            .json_schema("answer", schema.clone())
            .reasoning_effort(ReasoningEffort::High)
            .max_tokens(1000)
            .seed(7);
        let r = openai(&server).chat(&req).await.unwrap();
        assert_eq!(r.model, "o4-mini-2025-04-16");
        assert_eq!(r.text(), r#"{"answer":42,"confidence":"high"}"#);
        // OpenAI counts reasoning tokens but does not share the reasoning text.
        assert_eq!(r.reasoning, None);
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Some(
                Usage::new(2210, 868)
                    .with_cached_input_tokens(2048)
                    .with_reasoning_tokens(832)
            )
        );

        let sent = server.last().body;
        assert_eq!(
            sent,
            json!({
                "model": "o4-mini",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]}],
                "max_completion_tokens": 1000,
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}},
                "seed": 7,
                "reasoning_effort": "high"
            })
        );
    }
}

#[tokio::test]
async fn chat_refusal_is_a_content_filter_finish() {
    let server = MockServer::start(vec![Canned::fixture("openai/chat_refusal.http")]).await;
    let r = openai(&server)
        .chat(&ChatRequest::new("gpt-4o").user("…"))
        .await
        .unwrap();
    assert_eq!(r.text(), "I'm sorry, I can't help with that.");
    assert_eq!(r.finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.usage.unwrap().output_tokens, 11);
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn streamed_text_with_usage() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("openai/stream_text.http")], seed)
                .await;
        let provider = openai(&server);
        let req = ChatRequest::new("gpt-4o-mini").user("Say hello in French");
        let stream = provider.chat_stream(&req).await.unwrap();
        assert_eq!(stream.provider(), "openai");
        assert_eq!(
            stream.model(),
            "gpt-4o-mini",
            "the requested model until a chunk arrives"
        );
        let mut stream = stream;
        assert_eq!(stream.next().await.unwrap().unwrap(), text("Bonjour"));
        assert_eq!(stream.model(), "gpt-4o-mini-2024-07-18");
        assert_eq!(stream.id(), Some("chatcmpl-B1"));
        let (deltas, err) = drain(stream).await;
        assert!(err.is_none());
        assert_eq!(
            deltas,
            vec![
                text(" le monde — ça va? \"ok\""),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage::new(19, 10)),
            ]
        );
        let sent = server.last();
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(
            sent.header("authorization"),
            Some("Bearer sk-test-key-123456")
        );
        assert_eq!(
            sent.body,
            json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Say hello in French"}],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }
}

#[tokio::test]
async fn streamed_parallel_tool_calls_in_fragments() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("openai/stream_tool_calls.http"),
                Canned::fixture("openai/stream_tool_calls.http"),
            ],
            seed,
        )
        .await;
        let provider = openai(&server);
        let req = ChatRequest::new("gpt-4.1")
            .user("Weather and time in Paris?")
            .tool(weather_tool())
            .tool(Tool::function(
                "get_time",
                "Local time",
                json!({"type": "object"}),
            ))
            .tool_choice(ToolChoice::Auto)
            .parallel_tool_calls(true);
        let (deltas, err) = drain(provider.chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        let frag = |index, id: Option<&str>, name: Option<&str>, args: &str| Delta::ToolCall {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        };
        assert_eq!(
            deltas,
            vec![
                frag(
                    0,
                    Some("call_Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8"),
                    Some("get_weather"),
                    ""
                ),
                frag(0, None, None, "{\"ci"),
                frag(0, None, None, "ty\": \"Pa"),
                frag(0, None, None, "ris\"}"),
                frag(
                    1,
                    Some("call_Ii9Jj8Kk7Ll6Mm5Nn4Oo3Pp2"),
                    Some("get_time"),
                    ""
                ),
                frag(1, None, None, "{\"tz\""),
                frag(1, None, None, ": \"Europe/"),
                frag(1, None, None, "Paris\"}"),
                Delta::Finish(FinishReason::ToolCalls),
                Delta::Usage(Usage::new(96, 41)),
            ]
        );
        let sent = server.last().body;
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));
        assert_eq!(sent["tool_choice"], "auto");

        let r = provider
            .chat_stream(&req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.id, "chatcmpl-CdE7Tc3Fr5Gt7Hy9Ju1Ki3Lo5");
        assert_eq!(r.provider, "openai");
        assert_eq!(r.model, "gpt-4.1-2025-04-14");
        assert_eq!(
            r.tool_calls(),
            &[
                ToolCall::new(
                    "call_Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8",
                    "get_weather",
                    r#"{"city": "Paris"}"#
                ),
                ToolCall::new(
                    "call_Ii9Jj8Kk7Ll6Mm5Nn4Oo3Pp2",
                    "get_time",
                    r#"{"tz": "Europe/Paris"}"#
                ),
            ]
        );
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.usage.unwrap().total_tokens(), 137);
    }
}

#[tokio::test]
async fn streamed_reasoning_model_counts_reasoning_and_cached_tokens() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("openai/stream_reasoning.http")],
            seed,
        )
        .await;
        let req = ChatRequest::new("o4-mini")
            .user("What is 6 × 7?")
            .max_tokens(1000);
        let (deltas, err) = drain(openai(&server).chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                text("The answer"),
                text(" is 42"),
                text("."),
                Delta::Finish(FinishReason::Length),
                Delta::Usage(
                    Usage::new(2210, 1000)
                        .with_cached_input_tokens(1920)
                        .with_reasoning_tokens(996)
                ),
            ]
        );
        assert_eq!(server.last().body["max_completion_tokens"], 1000);
        assert!(server.last().body.get("max_tokens").is_none());
    }
}

#[tokio::test]
async fn streamed_refusal_folds_like_a_non_streamed_one() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("openai/stream_refusal.http")], seed)
                .await;
        let (deltas, err) = drain(
            openai(&server)
                .chat_stream(&ChatRequest::new("gpt-4o").user("…"))
                .await
                .unwrap(),
        )
        .await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                text("I'm sorry"),
                text(", I can't"),
                text(" help with that."),
                Delta::Finish(FinishReason::ContentFilter),
                Delta::Usage(Usage::new(61, 11)),
            ]
        );
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_err_item_after_the_good_deltas() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("openai/stream_error_midstream.http")],
            seed,
        )
        .await;
        let stream = openai(&server)
            .chat_stream(&ChatRequest::new("gpt-4o-mini").user("Tell me a story"))
            .await
            .unwrap();
        let (deltas, err) = drain(stream).await;
        assert_eq!(deltas, vec![text("Once upon"), text(" a time")]);
        let err = err.expect("an error item");
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(
            err.message(),
            "The server had an error while processing your request. Sorry about that!"
        );
        assert_eq!(err.code(), Some("server_error"));
        assert_eq!(err.provider(), Some("openai"));
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn a_stream_cut_before_done_is_truncated() {
    let full = Canned::fixture("openai/stream_text.http").body_text();
    let cut = &full[..full.find("data: [DONE]").unwrap()];
    let server = MockServer::start(vec![Canned::sse(cut)]).await;
    let stream = openai(&server)
        .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
        .await
        .unwrap();
    let err = stream.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("openai"));
    assert!(err.is_retryable());
}

// ---------------------------------------------------------------------------------------------
// Error answers, before a stream starts and for plain calls
// ---------------------------------------------------------------------------------------------

/// The error of a plain call and of a stream request answered with the same fixture.
async fn both_errors(fixture: &str, seed: u64) -> [Error; 2] {
    let server = MockServer::start_with_seed(
        vec![Canned::fixture(fixture), Canned::fixture(fixture)],
        seed,
    )
    .await;
    let provider = openai(&server);
    let req = ChatRequest::new("gpt-4o-mini").user("hi");
    let plain = provider.chat(&req).await.unwrap_err();
    let streamed = provider.chat_stream(&req).await.unwrap_err();
    [plain, streamed]
}

#[tokio::test]
async fn a_401_is_auth_and_never_shows_the_key() {
    for seed in SEEDS {
        for err in both_errors("openai/error_401_invalid_key.http", seed).await {
            assert_eq!(err.kind(), ErrorKind::Auth);
            assert_eq!(err.status(), Some(401));
            assert_eq!(err.provider(), Some("openai"));
            assert_eq!(err.code(), Some("invalid_api_key"));
            assert_eq!(err.request_id(), Some("req_401_b1c2d3e4f5a6b7c8d9e0"));
            assert_eq!(err.retry_after(), None);
            assert!(!err.is_retryable());
            assert!(!err.should_fallback());
            assert_eq!(
                err.message(),
                "Incorrect API key provided: [REDACTED]. You can find your API key at \
                 https://platform.openai.com/account/api-keys."
            );
            let body = err.body().unwrap();
            assert!(body.contains("\"code\": \"invalid_api_key\""), "{body}");
            assert!(body.contains("[REDACTED]"));
            for shown in [format!("{err}"), format!("{err:?}"), body.to_owned()] {
                assert!(!shown.contains(KEY), "the key leaked: {shown}");
            }
        }
    }
}

#[tokio::test]
async fn a_400_context_length_exceeded_is_context_length() {
    for err in both_errors("openai/error_400_context_length.http", 3).await {
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.code(), Some("context_length_exceeded"));
        assert!(
            err.message()
                .starts_with("This model's maximum context length is 128000 tokens.")
        );
        assert_eq!(err.request_id(), Some("req_400_c1d2e3f4a5b6c7d8e9f0"));
        assert!(!err.is_retryable());
        assert!(!err.should_fallback());
    }
}

#[tokio::test]
async fn a_plain_429_is_rate_limited_and_retry_after_ms_wins() {
    for seed in SEEDS {
        for err in both_errors("openai/error_429_rate_limit.http", seed).await {
            assert_eq!(err.kind(), ErrorKind::RateLimited);
            assert_eq!(err.status(), Some(429));
            assert_eq!(err.code(), Some("rate_limit_exceeded"));
            assert_eq!(err.retry_after(), Some(Duration::from_millis(1250)));
            assert_eq!(err.request_id(), Some("req_429_d1e2f3a4b5c6d7e8f9a0"));
            assert!(
                err.message()
                    .starts_with("Rate limit reached for gpt-4o-mini")
            );
            assert!(err.is_retryable());
            assert!(err.should_fallback());
            assert!(!err.is_provider_health_failure());
        }
    }
}

#[tokio::test]
async fn a_429_with_only_retry_after_seconds() {
    for err in both_errors("openai/error_429_tokens_retry_after.http", 9).await {
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.request_id(), Some("req_429_e1f2a3b4c5d6e7f8a9b0"));
    }
}

#[tokio::test]
async fn a_429_insufficient_quota_is_quota_exceeded_and_not_retryable() {
    for err in both_errors("openai/error_429_insufficient_quota.http", 11).await {
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.code(), Some("insufficient_quota"));
        assert_eq!(err.retry_after(), None);
        assert!(!err.is_retryable());
        assert!(err.should_fallback());
        assert!(err.message().starts_with("You exceeded your current quota"));
    }
}

#[tokio::test]
async fn a_503_is_overloaded() {
    for seed in SEEDS {
        for err in both_errors("openai/error_503_overloaded.http", seed).await {
            assert_eq!(err.kind(), ErrorKind::Overloaded);
            assert_eq!(err.status(), Some(503));
            assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
            assert_eq!(err.request_id(), Some("req_503_a1b2c3d4e5f6a7b8c9d0"));
            assert!(
                err.message()
                    .starts_with("That model is currently overloaded")
            );
            assert!(err.is_retryable());
            assert!(err.is_provider_health_failure());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transport: bodies that cannot be read, streams that break, timeouts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_json_body_is_a_decode_error_with_its_reason() {
    let server = MockServer::start(vec![Canned::fixture("openai/chat_malformed_json.http")]).await;
    let err = openai(&server)
        .chat(&ChatRequest::new("gpt-4o-mini").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.provider(), Some("openai"));
    assert!(
        err.message()
            .starts_with("malformed chat completion: EOF while parsing"),
        "{}",
        err.message()
    );
    assert!(!err.is_retryable());
}

fn huge_completion() -> String {
    json!({
        "id": "chatcmpl-huge",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "a".repeat(8000)}, "finish_reason": "stop"}]
    })
    .to_string()
}

#[tokio::test]
async fn a_body_over_max_response_bytes_is_a_decode_error() {
    let mut chunked = Canned::json(200, &huge_completion());
    chunked.chunked = true;
    // With a content length the answer is refused before it is read; without one, while it is.
    let server = MockServer::start(vec![Canned::json(200, &huge_completion()), chunked]).await;
    let provider = builder(&server).max_response_bytes(4096).build().unwrap();
    let req = ChatRequest::new("gpt-4o-mini").user("hi");
    for _ in 0..2 {
        let err = provider.chat(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert_eq!(err.message(), "response body exceeds 4096 bytes");
        assert_eq!(err.provider(), Some("openai"));
    }
    // The same answer under the cap is fine.
    let server = MockServer::start(vec![Canned::json(200, &huge_completion())]).await;
    let provider = builder(&server)
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    assert_eq!(provider.chat(&req).await.unwrap().text().len(), 8000);
}

#[tokio::test]
async fn invalid_utf8_in_a_stream_is_a_decode_error_after_the_good_deltas() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("openai/stream_invalid_utf8.http")],
            seed,
        )
        .await;
        let stream = openai(&server)
            .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
            .await
            .unwrap();
        let (deltas, err) = drain(stream).await;
        assert_eq!(deltas, vec![text("Hi")]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert!(err.message().contains("invalid UTF-8"), "{}", err.message());
        assert_eq!(err.provider(), Some("openai"));
    }
}

#[tokio::test]
async fn a_malformed_chunk_is_a_decode_error_after_the_good_deltas() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("openai/stream_malformed_chunk.http")],
            seed,
        )
        .await;
        let stream = openai(&server)
            .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
            .await
            .unwrap();
        let (deltas, err) = drain(stream).await;
        assert_eq!(deltas, vec![text("Hello")]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert!(
            err.message().starts_with("malformed stream chunk"),
            "{}",
            err.message()
        );
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn a_stream_ending_mid_event_is_truncated() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("openai/stream_cut_mid_event.http")],
            seed,
        )
        .await;
        let stream = openai(&server)
            .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
            .await
            .unwrap();
        let (deltas, err) = drain(stream).await;
        // The unfinished last event is dropped, never half-decoded.
        assert_eq!(deltas, vec![text("Hello")]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::StreamTruncated);
        assert_eq!(err.provider(), Some("openai"));
    }
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_truncated() {
    for seed in SEEDS {
        let canned = Canned::fixture("openai/stream_text.http");
        let cut = canned.offset_after("\"content\":\"Bonjour\"");
        let server =
            MockServer::start_with_seed(vec![canned.ending(Ending::CutAfter(cut))], seed).await;
        let stream = openai(&server)
            .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
            .await
            .unwrap();
        let (deltas, err) = drain(stream).await;
        assert_eq!(deltas, vec![]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::StreamTruncated, "{err:?}");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn an_idle_stream_times_out_under_the_paused_clock() {
    let canned = Canned::fixture("openai/stream_text.http");
    let after_bonjour = canned.offset_after("\"obfuscation\":\"abc\"}\n\n");
    let server = MockServer::start(vec![canned.ending(Ending::StallAfter(after_bonjour))]).await;
    let provider = builder(&server)
        .idle_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut stream = provider
        .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
        .await
        .unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), text("Bonjour"));
    // Real time while bytes are in flight (a paused clock jumps to the next timer whenever the
    // runtime waits on a socket), virtual time once the server has sent its last byte: from
    // here only the idle limit can end the wait.
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), "the stream sent nothing for 20s");
    assert_eq!(err.provider(), Some("openai"));
    // Virtual time: the idle limit (timers fire on a 1 ms tick), not the 600 s total.
    let waited = start.elapsed();
    assert!(waited <= Duration::from_millis(20_001), "{waited:?}");
    assert!(stream.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn no_response_head_within_first_byte_timeout_is_a_timeout() {
    let server = MockServer::start(vec![
        Canned::fixture("openai/chat_text.http").ending(Ending::StallBeforeHead),
        Canned::fixture("openai/stream_text.http").ending(Ending::StallBeforeHead),
    ])
    .await;
    let provider = builder(&server)
        .first_byte_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let req = ChatRequest::new("gpt-4o-mini").user("hi");
    let start = tokio::time::Instant::now();
    let err = provider.chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), "no response head within 5s");
    assert_eq!(err.provider(), Some("openai"));
    assert!(err.is_retryable());
    let err = provider.chat_stream(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), "no response head within 5s");
    // Virtual time: both waits ended at the first-byte limit, not at the 600 s total.
    assert!(
        start.elapsed() <= Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_plain_answer_ends_at_the_request_timeout() {
    let canned = Canned::fixture("openai/chat_text.http");
    let server = MockServer::start(vec![canned.ending(Ending::StallAfter(40))]).await;
    let req = ChatRequest::new("gpt-4o-mini")
        .user("hi")
        .timeout(Duration::from_secs(30));
    let err = openai(&server).chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), "no answer within 30s");
    assert_eq!(err.provider(), Some("openai"));
}

#[tokio::test]
async fn builder_checks() {
    let err = OpenAi::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = OpenAi::builder()
        .api_key(KEY)
        .base_url("ftp://example.com")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = OpenAi::builder()
        .api_key(KEY)
        .base_url("not a url")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let ok = OpenAi::builder().api_key(KEY).build().unwrap();
    let shown = format!("{ok:?}");
    assert!(shown.contains("https://api.openai.com/v1"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    assert_eq!(ok.name(), "openai");
}

#[tokio::test]
async fn organization_and_project_headers_are_sent() {
    let server = MockServer::start(vec![Canned::fixture("openai/chat_text.http")]).await;
    let provider = builder(&server)
        .organization("org-mg7f2k1q9x")
        .project("proj_4TqkX9cYbH2mWzR1")
        .header("x-trace", "abc")
        .build()
        .unwrap();
    provider
        .chat(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap();
    let sent = server.last();
    assert_eq!(sent.header("openai-organization"), Some("org-mg7f2k1q9x"));
    assert_eq!(sent.header("openai-project"), Some("proj_4TqkX9cYbH2mWzR1"));
    assert_eq!(sent.header("x-trace"), Some("abc"));
}
