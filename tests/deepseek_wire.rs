//! DeepSeek wire tests: exact transcripts replayed in 1- to 7-byte pieces, several piece-size
//! seeds each: `reasoning_content`, cache-hit counts, keep-alive comments and blank lines, usage
//! on the finish chunk, and DeepSeek's error statuses.
#![cfg(feature = "deepseek")]

mod support;

use modelgate::providers::DeepSeek;
use modelgate::{
    ChatProvider, ChatRequest, ContentPart, Delta, Error, ErrorKind, FinishReason, Tool, ToolCall,
    Usage,
};
use serde_json::json;
use support::{Canned, MockServer, drain};

const KEY: &str = "sk-ds-test-0123456789abcdef";
const SEEDS: [u64; 4] = [0x5eed, 2, 77, 0xfeed_f00d];

fn deepseek(server: &MockServer) -> DeepSeek {
    DeepSeek::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

#[tokio::test]
async fn reasoner_answer_after_keep_alive_blank_lines() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("deepseek/chat_reasoner_keepalive.http")],
            seed,
        )
        .await;
        let req = ChatRequest::new("deepseek-reasoner")
            .developer("Answer in one sentence.")
            .user("Which is larger, 9.11 or 9.8?")
            .max_tokens(2048);
        let r = deepseek(&server).chat(&req).await.unwrap();
        let reasoning = "The user asks which is larger, 9.11 or 9.8. Compare the tenths: 1 < 8, \
                         so 9.8 is larger.";
        assert_eq!(r.id, "a3f1c2e4-7b8d-4e6f-9a0b-1c2d3e4f5a6b");
        assert_eq!(r.provider, "deepseek");
        assert_eq!(r.model, "deepseek-reasoner");
        assert_eq!(r.text(), "9.8 is larger than 9.11.");
        assert_eq!(
            r.message.content,
            vec![ContentPart::text("9.8 is larger than 9.11.")]
        );
        assert_eq!(r.reasoning.as_deref(), Some(reasoning));
        assert_eq!(r.message.reasoning.as_deref(), Some(reasoning));
        assert!(r.tool_calls().is_empty());
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Some(
                Usage::new(21, 164)
                    .with_cached_input_tokens(16)
                    .with_reasoning_tokens(148)
            )
        );
        // Priced from the built-in table: 5 × $0.14 + 16 × $0.0028 + 164 × $0.28.
        assert!((r.cost.unwrap() - 0.0000466648).abs() < 1e-12);

        let sent = server.last();
        assert_eq!(sent.path, "/chat/completions");
        assert_eq!(
            sent.header("authorization"),
            Some("Bearer sk-ds-test-0123456789abcdef")
        );
        assert_eq!(
            sent.body,
            json!({
                "model": "deepseek-reasoner",
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": "Which is larger, 9.11 or 9.8?"}
                ],
                "max_tokens": 2048
            })
        );
    }
}

#[tokio::test]
async fn reasoning_goes_back_as_reasoning_content_in_a_tool_loop() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("deepseek/chat_reasoner_tool_call.http"),
                Canned::fixture("deepseek/chat_reasoner_after_tool.http"),
            ],
            seed,
        )
        .await;
        let provider = deepseek(&server);
        let req = ChatRequest::new("deepseek-reasoner")
            .user("What's the weather in Hangzhou?")
            .tool(weather_tool());
        let first = provider.chat(&req).await.unwrap();
        assert_eq!(first.finish_reason, FinishReason::ToolCalls);
        assert!(
            first.message.content.is_empty(),
            "content \"\" is no text part"
        );
        assert_eq!(
            first.tool_calls(),
            &[ToolCall::new(
                "call_00_Xk2Lm9Np4Qr7St1Uv5Wx8Yz3",
                "get_weather",
                r#"{"city": "Hangzhou"}"#
            )]
        );
        assert_eq!(
            first.reasoning.as_deref(),
            Some("I need the current weather in Hangzhou; call get_weather.")
        );
        assert_eq!(
            first.usage,
            Some(
                Usage::new(312, 58)
                    .with_cached_input_tokens(256)
                    .with_reasoning_tokens(31)
            )
        );

        let call_id = first.tool_calls()[0].id.clone();
        let req = req
            .message(first.message)
            .tool_result(call_id, r#"{"temp_c":24,"sky":"sunny"}"#);
        let second = provider.chat(&req).await.unwrap();
        assert_eq!(second.text(), "It is 24°C and sunny in Hangzhou.");
        assert_eq!(
            second.reasoning.as_deref(),
            Some("The tool says 24°C, sunny.")
        );
        assert_eq!(second.usage.unwrap().cached_input_tokens, 384);

        let sent = server.last().body;
        assert_eq!(
            sent["messages"],
            json!([
                {"role": "user", "content": "What's the weather in Hangzhou?"},
                {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "call_00_Xk2Lm9Np4Qr7St1Uv5Wx8Yz3",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Hangzhou\"}"}
                    }],
                    "reasoning_content": "I need the current weather in Hangzhou; call get_weather."
                },
                {"role": "tool", "content": "{\"temp_c\":24,\"sky\":\"sunny\"}", "tool_call_id": "call_00_Xk2Lm9Np4Qr7St1Uv5Wx8Yz3"}
            ])
        );
        assert!(sent.get("max_completion_tokens").is_none());
    }
}

#[tokio::test]
async fn streamed_reasoning_with_keep_alive_comments_and_usage_on_the_finish_chunk() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("deepseek/stream_reasoner_keepalive.http"),
                Canned::fixture("deepseek/stream_reasoner_keepalive.http"),
            ],
            seed,
        )
        .await;
        let provider = deepseek(&server);
        let req = ChatRequest::new("deepseek-reasoner").user("Hi");
        let stream = provider.chat_stream(&req).await.unwrap();
        assert_eq!(stream.provider(), "deepseek");
        let (deltas, err) = drain(stream).await;
        assert!(err.is_none(), "{err:?}");
        let usage = Usage::new(12, 48).with_reasoning_tokens(39);
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("Okay".into()),
                Delta::Reasoning(", the user".into()),
                Delta::Reasoning(" greets me.".into()),
                Delta::Text("Hello".into()),
                Delta::Text("! How can I help?".into()),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(usage),
            ]
        );
        assert_eq!(
            server.last().body,
            json!({
                "model": "deepseek-reasoner",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );

        let r = provider
            .chat_stream(&req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.id, "f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190");
        assert_eq!(r.provider, "deepseek");
        assert_eq!(r.model, "deepseek-reasoner");
        assert_eq!(r.text(), "Hello! How can I help?");
        assert_eq!(r.reasoning.as_deref(), Some("Okay, the user greets me."));
        assert_eq!(
            r.message.reasoning.as_deref(),
            Some("Okay, the user greets me.")
        );
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.usage, Some(usage));
    }
}

#[tokio::test]
async fn streamed_tool_call_with_cache_hits_on_the_finish_chunk() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("deepseek/stream_chat_tool_call.http")],
            seed,
        )
        .await;
        let req = ChatRequest::new("deepseek-chat")
            .user("Weather in Beijing?")
            .tool(weather_tool());
        let stream = deepseek(&server).chat_stream(&req).await.unwrap();
        let (deltas, err) = drain(stream).await;
        assert!(err.is_none(), "{err:?}");
        let mut expected = vec![Delta::ToolCall {
            index: 0,
            id: Some("call_0_5b8e2d9f3a6c".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
        }];
        for a in ["{\"", "city", "\":\"", "Beijing", "\"}"] {
            expected.push(Delta::ToolCall {
                index: 0,
                id: None,
                name: None,
                arguments: a.into(),
            });
        }
        expected.push(Delta::Finish(FinishReason::ToolCalls));
        expected.push(Delta::Usage(
            Usage::new(190, 21).with_cached_input_tokens(128),
        ));
        assert_eq!(deltas, expected);
    }
}

async fn both_errors(fixture: &str, seed: u64) -> [Error; 2] {
    let server = MockServer::start_with_seed(
        vec![Canned::fixture(fixture), Canned::fixture(fixture)],
        seed,
    )
    .await;
    let provider = deepseek(&server);
    let req = ChatRequest::new("deepseek-chat").user("hi");
    [
        provider.chat(&req).await.unwrap_err(),
        provider.chat_stream(&req).await.unwrap_err(),
    ]
}

#[tokio::test]
async fn a_402_insufficient_balance_is_quota_exceeded() {
    for seed in SEEDS {
        for err in both_errors("deepseek/error_402_insufficient_balance.http", seed).await {
            assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
            assert_eq!(err.status(), Some(402));
            assert_eq!(err.provider(), Some("deepseek"));
            assert_eq!(err.message(), "Insufficient Balance");
            assert_eq!(err.code(), Some("invalid_request_error"));
            assert_eq!(err.request_id(), Some("6c1e8a3f0d5b2e9c4a7f1d6b3e0a8c5f"));
            assert_eq!(err.retry_after(), None);
            assert!(!err.is_retryable());
            assert!(err.should_fallback());
        }
    }
}

#[tokio::test]
async fn a_503_is_overloaded() {
    for err in both_errors("deepseek/error_503_overloaded.http", 5).await {
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.message(), "Server overloaded, please try again later.");
        assert_eq!(err.request_id(), Some("4b9d2f7a0c5e3b8d1f6a9c2e7b0d5f3a"));
        assert!(err.is_retryable());
        assert!(err.is_provider_health_failure());
    }
}

#[tokio::test]
async fn a_401_is_auth() {
    for err in both_errors("deepseek/error_401_authentication.http", 6).await {
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.status(), Some(401));
        assert_eq!(
            err.message(),
            "Authentication Fails, Your api key: ****3456 is invalid"
        );
        assert!(!err.is_retryable());
        assert!(!format!("{err:?}{err}").contains(KEY));
    }
}

#[tokio::test]
async fn a_422_is_invalid_request() {
    for err in both_errors("deepseek/error_422_invalid_parameters.http", 8).await {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.status(), Some(422));
        assert!(
            err.message()
                .starts_with("Failed to deserialize the JSON body")
        );
        assert!(!err.is_retryable());
        assert!(!err.should_fallback());
    }
}

#[tokio::test]
async fn a_400_about_the_context_length_is_context_length() {
    // DeepSeek names no `context_length_exceeded` code: only the message says it.
    for err in both_errors("deepseek/error_400_context_length.http", 9).await {
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.code(), Some("invalid_request_error"));
        assert!(
            err.message()
                .starts_with("This model's maximum context length is 65536 tokens.")
        );
        assert_eq!(err.request_id(), Some("2f8c4a1e7d0b5c9e3a6f1d8b4c0e7a2d"));
        assert!(!err.is_retryable());
    }
}

#[test]
fn builder_checks() {
    let err = DeepSeek::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = DeepSeek::builder()
        .api_key(KEY)
        .base_url("api.deepseek.com")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let ok = DeepSeek::builder().api_key(KEY).build().unwrap();
    let shown = format!("{ok:?}");
    assert!(shown.contains("\"https://api.deepseek.com\""), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
    assert_eq!(ok.name(), "deepseek");
}
