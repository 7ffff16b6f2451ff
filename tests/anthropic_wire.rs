//! Anthropic wire tests: exact Messages API transcripts replayed in 1- to 7-byte pieces, with
//! several piece patterns (seeds), and the request bodies checked field by field.
#![cfg(feature = "anthropic")]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use futures::StreamExt;
use modelgate::providers::Anthropic;
use modelgate::types::ReasoningBlock;
use modelgate::{
    ChatProvider, ChatRequest, ContentPart, Delta, Error, ErrorKind, FinishReason, Message, Tool,
    ToolCall, ToolChoice, Usage,
};
use serde_json::json;
use support::{Canned, MockServer};

const KEY: &str = "sk-ant-test-key-0123456789";
const SEEDS: [u64; 3] = [1, 0x5eed, 0xdead_beef];

fn anthropic(server: &MockServer) -> Anthropic {
    Anthropic::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

async fn serve(fixture: &str, seed: u64) -> MockServer {
    MockServer::start_with_seed(vec![Canned::fixture(fixture)], seed).await
}

/// Every item of a stream, stopping after the first error.
async fn collect(
    provider: &Anthropic,
    req: &ChatRequest,
) -> (Vec<Delta>, Option<Error>, String, Option<String>) {
    let mut stream = provider.chat_stream(req).await.unwrap();
    let mut deltas = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(d) => deltas.push(d),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(
        stream.next().await.is_none(),
        "a stream ends after its error or its end"
    );
    (
        deltas,
        error,
        stream.model().to_owned(),
        stream.id().map(str::to_owned),
    )
}

fn call(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> Delta {
    Delta::ToolCall {
        index,
        id: id.map(Into::into),
        name: name.map(Into::into),
        arguments: arguments.into(),
    }
}

#[tokio::test]
async fn non_streamed_text_with_cache_usage() {
    for seed in SEEDS {
        let server = serve("anthropic/message_text.http", seed).await;
        let req = ChatRequest::new("claude-sonnet-4-5")
            .system("Answer in French.")
            .user("Hello!");
        let r = anthropic(&server).chat(&req).await.unwrap();
        assert_eq!(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
        assert_eq!(r.provider, "anthropic");
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
        assert_eq!(r.text(), "Bonjour ! Comment ça va ? \"Très bien\", merci.");
        assert_eq!(r.message.role, modelgate::Role::Assistant);
        assert_eq!(r.message.content.len(), 1);
        assert!(r.tool_calls().is_empty());
        assert_eq!(r.reasoning, None);
        assert_eq!(r.message.reasoning_signature, None);
        assert_eq!(r.finish_reason, FinishReason::Stop);
        // Anthropic's input_tokens (12) excludes cache reads (3000) and writes (1500); ours
        // includes them.
        assert_eq!(
            r.usage,
            Some(
                Usage::new(4512, 17)
                    .with_cached_input_tokens(3000)
                    .with_cache_creation_input_tokens(1500)
            )
        );
        // Priced from the built-in table: 12 × $3 + 3000 × $0.30 + 1500 × $3.75 + 17 × $15.
        assert!((r.cost.unwrap() - 0.006816).abs() < 1e-12);
        assert!(r.route.is_none());

        let sent = server.last();
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some(KEY));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(sent.header("anthropic-beta"), None);
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(
            sent.body,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 8192,
                "system": "Answer in French.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]
            })
        );
    }
}

#[tokio::test]
async fn non_streamed_tool_use_with_thinking() {
    let server = serve("anthropic/message_tool_use.http", 7).await;
    let req = ChatRequest::new("claude-sonnet-4-5")
        .user("Weather in Paris?")
        .thinking_budget(1024);
    let r = anthropic(&server).chat(&req).await.unwrap();
    assert_eq!(r.id, "msg_01ToolNonStream");
    assert_eq!(r.text(), "Let me look that up.");
    assert_eq!(
        r.tool_calls(),
        &[ToolCall::new(
            "toolu_01A09q90qw90lq917835lq9",
            "get_weather",
            r#"{"city":"Paris","days":[1,2]}"#
        )]
    );
    assert_eq!(
        r.tool_calls()[0].parse_arguments().unwrap(),
        json!({"city": "Paris", "days": [1, 2]})
    );
    assert_eq!(
        r.reasoning.as_deref(),
        Some("The user wants Paris weather.")
    );
    assert_eq!(
        r.message.reasoning.as_deref(),
        Some("The user wants Paris weather.")
    );
    assert_eq!(
        r.message.reasoning_signature.as_deref(),
        Some("ErUBCkYIBRgCIkA=")
    );
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let usage = r.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens
        ),
        (472, 91, 0)
    );

    let sent = server.last().body;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(sent["max_tokens"], 1024 + 8192);
    assert!(sent.get("stream").is_none());
}

#[tokio::test]
async fn streamed_text_with_one_usage_total() {
    for seed in SEEDS {
        let server = serve("anthropic/stream_text.http", seed).await;
        let provider = anthropic(&server);
        let req = ChatRequest::new("claude-sonnet-4-5").user("Say hello in French");
        let (deltas, error, model, id) = collect(&provider, &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(model, "claude-sonnet-4-5-20250929");
        assert_eq!(id.as_deref(), Some("msg_01Stream7oKxTextAbc"));
        assert_eq!(
            deltas,
            vec![
                Delta::Text("Bonjour".into()),
                Delta::Text(" le monde — ça va ? \"oui\" 🌍".into()),
                Delta::Finish(FinishReason::Stop),
                // message_start and message_delta both report the 2048 cached tokens: counted once.
                Delta::Usage(Usage::new(14 + 2048, 15).with_cached_input_tokens(2048)),
            ],
            "seed {seed}"
        );
        let sent = server.last();
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some(KEY));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(sent.body["stream"], true);
        assert_eq!(sent.body["max_tokens"], 8192);
        assert!(sent.body.get("stream_options").is_none());
    }
}

#[tokio::test]
async fn streamed_tool_use_with_fragmented_arguments() {
    for seed in SEEDS {
        let server = serve("anthropic/stream_tool_use.http", seed).await;
        let provider = anthropic(&server);
        let req = ChatRequest::new("claude-haiku-4-5").user("Weather in Paris and Rome?");
        let (deltas, error, model, id) = collect(&provider, &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(model, "claude-haiku-4-5-20251001");
        assert_eq!(id.as_deref(), Some("msg_01ToolsQm9Zb2kP"));
        assert_eq!(
            deltas,
            vec![
                Delta::Text("I'll check both cities.".into()),
                // Content block 1, tool call 0; the empty first fragment adds nothing.
                call(0, Some("toolu_01Paris9bXq2"), Some("get_weather"), ""),
                call(0, None, None, "{\"city\": "),
                call(0, None, None, "\"Paris\", \"unit\""),
                call(0, None, None, ": \"celsius\"}"),
                call(1, Some("toolu_01Rome4kLm7"), Some("get_weather"), ""),
                call(1, None, None, "{\"city\": \"Rome\"}"),
                Delta::Finish(FinishReason::ToolCalls),
                Delta::Usage(Usage::new(640, 98)),
            ],
            "seed {seed}"
        );
    }

    // Folded, the calls are whole.
    let server = serve("anthropic/stream_tool_use.http", 3).await;
    let r = anthropic(&server)
        .chat_stream(&ChatRequest::new("claude-haiku-4-5").user("x"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.id, "msg_01ToolsQm9Zb2kP");
    assert_eq!(r.text(), "I'll check both cities.");
    assert_eq!(
        r.tool_calls(),
        &[
            ToolCall::new(
                "toolu_01Paris9bXq2",
                "get_weather",
                r#"{"city": "Paris", "unit": "celsius"}"#
            ),
            ToolCall::new("toolu_01Rome4kLm7", "get_weather", r#"{"city": "Rome"}"#),
        ]
    );
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn streamed_tool_calls_without_arguments_get_an_empty_object() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("anthropic/stream_tool_use_no_arguments.http"),
                Canned::fixture("anthropic/stream_tool_use_no_arguments.http"),
            ],
            seed,
        )
        .await;
        let provider = anthropic(&server);
        let req = ChatRequest::new("claude-haiku-4-5").user("Time and moon?");
        let (deltas, error, ..) = collect(&provider, &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(
            deltas[..4],
            [
                // One empty `input_json_delta`, then none at all: both are `{}`.
                call(0, Some("toolu_01Clock5sPq"), Some("current_time"), ""),
                call(0, None, None, "{}"),
                call(1, Some("toolu_01Moon2xRt"), Some("moon_phase"), ""),
                call(1, None, None, "{}"),
            ],
            "seed {seed}"
        );
        let r = provider
            .chat_stream(&req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(
            r.tool_calls(),
            &[
                ToolCall::new("toolu_01Clock5sPq", "current_time", "{}"),
                ToolCall::new("toolu_01Moon2xRt", "moon_phase", "{}"),
            ]
        );
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    }
}

#[tokio::test]
async fn streamed_thinking_round_trips_with_its_signature() {
    const SIGNATURE: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/sW9kpbYXlbmAFb/Z5zxXDRG3IBsSLRwS9KpmEqRsHFtvUgmh3qq0tMvQc6/ZBfdJT6oC1";
    for seed in SEEDS {
        let server = serve("anthropic/stream_thinking.http", seed).await;
        let req = ChatRequest::new("claude-sonnet-4-5")
            .user("27 * 453?")
            .thinking_budget(2000);
        let (deltas, error, ..) = collect(&anthropic(&server), &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("27 * 453: 27 * 400 = 10800, ".into()),
                Delta::Reasoning("27 * 53 = 1431, total 12231.".into()),
                Delta::ReasoningSignature(SIGNATURE.into()),
                Delta::Text("27 × 453 = **12,231**".into()),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage::new(48, 142)),
            ],
            "seed {seed}"
        );
        assert_eq!(
            server.last().body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2000})
        );
    }

    // The folded turn, sent back, starts with the signed thinking block.
    let server = MockServer::start(vec![
        Canned::fixture("anthropic/stream_thinking.http"),
        Canned::fixture("anthropic/message_text.http"),
    ])
    .await;
    let provider = anthropic(&server);
    let req = ChatRequest::new("claude-sonnet-4-5")
        .user("27 * 453?")
        .thinking_budget(2000);
    let first = provider
        .chat_stream(&req)
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(
        first.reasoning.as_deref(),
        Some("27 * 453: 27 * 400 = 10800, 27 * 53 = 1431, total 12231.")
    );
    assert_eq!(
        first.message.reasoning_signature.as_deref(),
        Some(SIGNATURE)
    );
    let next = req.message(first.message).user("And 28 * 453?");
    provider.chat(&next).await.unwrap();
    let sent = server.last().body;
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "27 * 453: 27 * 400 = 10800, 27 * 53 = 1431, total 12231.", "signature": SIGNATURE},
            {"type": "text", "text": "27 × 453 = **12,231**"}
        ]})
    );
    assert_eq!(sent["messages"][2]["content"][0]["text"], "And 28 * 453?");
}

#[tokio::test]
async fn several_thinking_blocks_keep_their_own_signatures_both_ways() {
    const SIG_1: &str = "EqoBCkgIARABGAIiQA1sig1=";
    const SIG_2: &str = "EqoBCkgIARABGAIiQB2sig2=";
    let blocks = vec![
        ReasoningBlock::new("Paris first.", Some(SIG_1.into())),
        ReasoningBlock::new("Then Rome.", Some(SIG_2.into())),
    ];
    let sent_back = json!([
        {"type": "thinking", "thinking": "Paris first.", "signature": SIG_1},
        {"type": "thinking", "thinking": "Then Rome.", "signature": SIG_2},
        {"type": "text", "text": "Checking both."}
    ]);
    let req = ChatRequest::new("claude-sonnet-4-5")
        .user("Weather in Paris and Rome?")
        .thinking_budget(2000);
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("anthropic/message_two_thinking_blocks.http"),
                Canned::fixture("anthropic/message_text.http"),
                Canned::fixture("anthropic/stream_two_thinking_blocks.http"),
                Canned::fixture("anthropic/message_text.http"),
            ],
            seed,
        )
        .await;
        let provider = anthropic(&server);

        let r = provider.chat(&req).await.unwrap();
        assert_eq!(r.reasoning.as_deref(), Some("Paris first.Then Rome."));
        assert_eq!(r.message.reasoning_blocks, blocks);
        let mut answered = r.message.clone();
        answered.tool_calls.clear();
        provider
            .chat(&req.clone().message(answered).user("Go on"))
            .await
            .unwrap();
        assert_eq!(server.last().body["messages"][1]["content"], sent_back);

        let (deltas, error, ..) = collect(&provider, &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(
            deltas[..5],
            [
                Delta::Reasoning("Paris first.".into()),
                Delta::ReasoningSignature(SIG_1.into()),
                Delta::Reasoning("Then Rome.".into()),
                Delta::ReasoningSignature(SIG_2.into()),
                Delta::Text("Checking both.".into()),
            ]
        );
        let folded = futures::stream::iter(deltas.into_iter().map(Ok));
        let folded = modelgate::ChatStream::new("anthropic", "claude-sonnet-4-5", folded)
            .into_response()
            .await
            .unwrap();
        assert_eq!(folded.reasoning.as_deref(), Some("Paris first.Then Rome."));
        assert_eq!(folded.message.reasoning_blocks, blocks);
        provider
            .chat(&req.clone().message(folded.message).user("Go on"))
            .await
            .unwrap();
        assert_eq!(server.last().body["messages"][1]["content"], sent_back);
    }
}

#[tokio::test]
async fn a_json_schema_is_answered_through_a_forced_tool_as_text() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}});
    let req = ChatRequest::new("claude-sonnet-4-5")
        .user("Largest city of France, as JSON")
        .json_schema("city", schema.clone());
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("anthropic/message_json_tool.http"),
                Canned::fixture("anthropic/stream_json_tool.http"),
                Canned::fixture("anthropic/stream_json_tool.http"),
            ],
            seed,
        )
        .await;
        let provider = anthropic(&server);
        let r = provider.chat(&req).await.unwrap();
        assert_eq!(r.text(), r#"{"city":"Paris","population":2102650}"#);
        assert!(r.tool_calls().is_empty());
        assert_eq!(r.finish_reason, FinishReason::Stop);
        let sent = server.last().body;
        assert_eq!(sent["tools"][0]["input_schema"], schema);
        assert_eq!(
            sent["tool_choice"],
            json!({"type": "tool", "name": sent["tools"][0]["name"]})
        );

        let (deltas, error, ..) = collect(&provider, &req).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        assert_eq!(
            deltas,
            vec![
                Delta::Text("{\"city\": \"Pa".into()),
                Delta::Text("ris\", \"population\": 2102650}".into()),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage::new(402, 38)),
            ],
            "seed {seed}"
        );
        let folded = provider
            .chat_stream(&req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(folded.text(), r#"{"city": "Paris", "population": 2102650}"#);
        assert!(folded.tool_calls().is_empty());
        assert_eq!(folded.finish_reason, FinishReason::Stop);
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_overloaded_error() {
    for seed in SEEDS {
        let server = serve("anthropic/stream_error_overloaded.http", seed).await;
        let req = ChatRequest::new("claude-opus-4-1").user("Tell me a story");
        let (deltas, error, model, id) = collect(&anthropic(&server), &req).await;
        assert_eq!(deltas, vec![Delta::Text("Once upon".into())], "seed {seed}");
        assert_eq!(model, "claude-opus-4-1-20250805");
        assert_eq!(id.as_deref(), Some("msg_01Err5gTq"));
        let err = error.expect("an error item");
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.provider(), Some("anthropic"));
        assert_eq!(err.code(), Some("overloaded_error"));
        assert_eq!(err.message(), "Overloaded");
        assert_eq!(err.status(), None);
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn an_error_event_that_echoes_the_key_is_scrubbed() {
    let body = format!(
        "event: message_start\n\
         data: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{{\"input_tokens\":3}}}}}}\n\n\
         event: error\n\
         data: {{\"type\":\"error\",\"error\":{{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key: {KEY}\"}}}}\n\n"
    );
    for seed in SEEDS {
        let server = MockServer::start_with_seed(vec![Canned::sse(&body)], seed).await;
        let req = ChatRequest::new("claude-sonnet-4-5").user("hi");
        let (_, error, ..) = collect(&anthropic(&server), &req).await;
        let err = error.expect("an error item");
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.message(), "invalid x-api-key: [REDACTED]");
        assert!(!err.body().unwrap_or("").contains(KEY));
        assert!(!format!("{err:?} {err}").contains(KEY), "{err:?}");
    }
}

#[tokio::test]
async fn a_stream_cut_before_message_stop_is_truncated() {
    let full = String::from_utf8(Canned::fixture("anthropic/stream_text.http").body).unwrap();
    for marker in [
        "event: message_stop",
        "event: message_delta",
        "event: content_block_stop",
    ] {
        let cut = &full[..full.find(marker).unwrap()];
        let server = MockServer::start(vec![Canned::sse(cut)]).await;
        let stream = anthropic(&server)
            .chat_stream(&ChatRequest::new("claude-sonnet-4-5").user("hi"))
            .await
            .unwrap();
        let err = stream.into_response().await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::StreamTruncated,
            "cut before {marker}"
        );
        assert_eq!(err.provider(), Some("anthropic"));
    }
}

#[tokio::test]
async fn rate_limited_429_with_retry_after_and_rate_limit_headers() {
    for streaming in [false, true] {
        let server = serve("anthropic/rate_limited.http", 11).await;
        let provider = anthropic(&server);
        let req = ChatRequest::new("claude-sonnet-4-5").user("hi");
        let err = if streaming {
            provider.chat_stream(&req).await.unwrap_err()
        } else {
            provider.chat(&req).await.unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.provider(), Some("anthropic"));
        assert_eq!(err.code(), Some("rate_limit_error"));
        assert!(
            err.message()
                .starts_with("This request would exceed the rate limit")
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));
        assert_eq!(err.request_id(), Some("req_011CVRateLimit1"));
        assert_eq!(err.rate_limit_remaining(), Some(0));
        // 2026-11-25T10:00:17Z
        assert_eq!(
            err.rate_limit_reset(),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_600_817))
        );
        assert!(err.body().unwrap().contains("\"rate_limit_error\""));
        assert!(err.is_retryable());
        assert!(err.should_fallback());
        assert!(!err.is_provider_health_failure());
    }
}

#[tokio::test]
async fn overloaded_529() {
    let server = serve("anthropic/overloaded.http", 5).await;
    let err = anthropic(&server)
        .chat(&ChatRequest::new("claude-sonnet-4-5").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.status(), Some(529));
    assert_eq!(err.code(), Some("overloaded_error"));
    assert_eq!(err.message(), "Overloaded");
    assert_eq!(err.request_id(), Some("req_011CVOverload01"));
    assert_eq!(err.retry_after(), None);
    assert_eq!(err.rate_limit_remaining(), None);
    assert!(err.is_retryable());
    assert!(err.is_provider_health_failure());
}

#[tokio::test]
async fn unauthorized_401() {
    let server = serve("anthropic/unauthorized.http", 9).await;
    let err = anthropic(&server)
        .chat_stream(&ChatRequest::new("claude-sonnet-4-5").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.code(), Some("authentication_error"));
    assert_eq!(err.message(), "invalid x-api-key");
    assert_eq!(err.request_id(), Some("req_011CVUnauth001"));
    assert!(!err.is_retryable());
    assert!(!err.should_fallback());
    assert!(!format!("{err} {err:?}").contains(KEY));
}

#[tokio::test]
async fn prompt_too_long_is_context_length() {
    let server = serve("anthropic/prompt_too_long.http", 4).await;
    let err = anthropic(&server)
        .chat(&ChatRequest::new("claude-sonnet-4-5").user("…"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextLength);
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.message(),
        "prompt is too long: 215433 tokens > 200000 maximum"
    );
}

#[tokio::test]
async fn tool_loop_request_body_field_by_field() {
    let server = serve("anthropic/message_text.http", 2).await;
    let provider = Anthropic::builder()
        .api_key(KEY)
        .base_url(format!("{}/", server.url()))
        .default_max_tokens(1000)
        .beta("prompt-caching-2024-07-31")
        .beta("token-efficient-tools-2025-02-19")
        .build()
        .unwrap();
    let weather = Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    let req = ChatRequest::new("claude-sonnet-4-5")
        .system("You are a weather bot.")
        .developer("Use metric units.")
        .user_parts([
            ContentPart::text("Compare with this chart:"),
            ContentPart::image_url("data:image/png;base64,iVBORw0KGgo="),
            ContentPart::image_url("https://example.com/chart.png"),
        ])
        .user("Paris and Rome?")
        .message(
            Message::assistant("")
                .with_reasoning("Two cities, two calls.", Some("sig-1".into()))
                .with_tool_call(ToolCall::new(
                    "toolu_1",
                    "get_weather",
                    r#"{"city":"Paris"}"#,
                ))
                .with_tool_call(ToolCall::new(
                    "toolu_2",
                    "get_weather",
                    r#"{"city":"Rome"}"#,
                )),
        )
        .tool_result("toolu_1", "18°C, sunny")
        .message(Message::tool_result("toolu_2", "station offline").with_error(true))
        .tool(weather)
        .tool_choice(ToolChoice::Required)
        .parallel_tool_calls(false)
        .temperature(0.3)
        .stop("###");
    provider.chat(&req).await.unwrap();
    let sent = server.last();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31,token-efficient-tools-2025-02-19")
    );
    let b = sent.body;
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(b["max_tokens"], 1000);
    assert_eq!(
        b["system"],
        json!([
            {"type": "text", "text": "You are a weather bot."},
            {"type": "text", "text": "Use metric units."}
        ])
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Compare with this chart:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/chart.png"}},
                {"type": "text", "text": "Paris and Rome?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "station offline", "is_error": true}
            ]}
        ])
    );
    assert_eq!(
        b["tools"],
        json!([{
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }])
    );
    assert_eq!(
        b["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert!((b["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert_eq!(b["stop_sequences"], json!(["###"]));
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "max_tokens",
            "messages",
            "model",
            "stop_sequences",
            "system",
            "temperature",
            "tool_choice",
            "tools"
        ]
    );
}

#[tokio::test]
async fn invalid_requests_fail_before_sending() {
    let server = MockServer::start(vec![]).await;
    let provider = anthropic(&server);
    let bad_args = ChatRequest::new("claude-sonnet-4-5")
        .user("x")
        .message(Message::assistant("").with_tool_call(ToolCall::new("t", "f", "{not json")));
    let err = provider.chat(&bad_args).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(err.provider(), Some("anthropic"));
    let small_budget = ChatRequest::new("claude-sonnet-4-5")
        .user("x")
        .thinking_budget(500);
    assert_eq!(
        provider.chat(&small_budget).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert!(server.received().is_empty());
}

#[test]
fn builder_checks_its_settings() {
    let kind = |b: modelgate::providers::AnthropicBuilder| b.build().unwrap_err().kind();
    assert_eq!(kind(Anthropic::builder()), ErrorKind::Config);
    assert_eq!(
        kind(Anthropic::builder().api_key(KEY).default_max_tokens(0)),
        ErrorKind::Config
    );
    assert_eq!(
        kind(Anthropic::builder().api_key(KEY).beta("bad\nvalue")),
        ErrorKind::Config
    );
    assert_eq!(
        kind(Anthropic::builder().api_key(KEY).base_url("ftp://x")),
        ErrorKind::Config
    );
    let ok = Anthropic::builder().api_key(KEY).build().unwrap();
    assert_eq!(ok.name(), "anthropic");
    assert!(!format!("{ok:?}").contains(KEY));
    assert_eq!(
        modelgate::providers::ANTHROPIC_BASE_URL,
        "https://api.anthropic.com"
    );
}
