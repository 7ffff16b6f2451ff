//! Every response of a provider called directly carries its cost: real-shaped answers of each
//! provider, replayed by a local mock server, priced from the built-in table (or the caller's).
#![cfg(all(
    feature = "openai",
    feature = "anthropic",
    feature = "gemini",
    feature = "deepseek",
    feature = "compat"
))]

mod support;

use std::sync::Arc;

use futures::StreamExt;
use modelgate::pricing::{ModelPrice, PriceTable};
use modelgate::providers::{Anthropic, DeepSeek, Gemini, OpenAi, OpenAiCompatible, Preset};
use modelgate::{CallOptions, ChatProvider, ChatRequest, ErrorKind};
use support::{Canned, MockServer};

const KEY: &str = "test-key-0123456789";

async fn serve(fixtures: &[&str]) -> MockServer {
    MockServer::start(fixtures.iter().map(|f| Canned::fixture(f)).collect()).await
}

/// Costs agree far closer than a millionth of a dollar (to float rounding).
#[track_caller]
fn assert_cost(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a cost");
    assert!(
        (actual - expected).abs() < 1e-12,
        "cost {actual}, expected {expected}"
    );
}

fn openai(server: &MockServer) -> OpenAi {
    OpenAi::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

fn gemini(server: &MockServer) -> Gemini {
    Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

fn deepseek(server: &MockServer) -> DeepSeek {
    DeepSeek::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

fn anthropic(server: &MockServer) -> Anthropic {
    Anthropic::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn openai_reasoning_answer_costs_its_cached_uncached_and_reasoning_tokens() {
    let server = serve(&["openai/chat_reasoning.http"]).await;
    let r = openai(&server)
        .chat(&ChatRequest::new("o4-mini").user("?"))
        .await
        .unwrap();
    assert_eq!(r.model, "o4-mini-2025-04-16");
    // 2210 prompt tokens (2048 cached), 868 output (832 of them reasoning), o4-mini:
    // 162 × $1.10 + 2048 × $0.275 + 868 × $4.40, per million.
    assert_cost(r.cost, 0.0045606);
}

#[tokio::test]
async fn openai_stream_cost_is_known_once_usage_arrives() {
    let server = serve(&["openai/stream_text.http", "openai/stream_text.http"]).await;
    let provider = openai(&server);
    let req = ChatRequest::new("gpt-4o-mini").user("Bonjour");
    let mut stream = provider.chat_stream(&req).await.unwrap();
    assert_eq!(stream.cost(), None, "no usage yet");
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
    // 19 prompt, 10 output tokens of gpt-4o-mini: 19 × $0.15 + 10 × $0.60, per million.
    assert_cost(stream.cost(), 0.00000885);
    let r = provider
        .chat_stream(&req)
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_cost(r.cost, 0.00000885);
}

#[tokio::test]
async fn anthropic_answer_costs_cache_reads_and_writes() {
    let server = serve(&["anthropic/message_text.http"]).await;
    let r = anthropic(&server)
        .chat(&ChatRequest::new("claude-sonnet-4-5").user("Bonjour"))
        .await
        .unwrap();
    let usage = r.usage.unwrap();
    assert_eq!(usage.input_tokens, 4512);
    // 12 uncached × $3 + 3000 read × $0.30 + 1500 written (5 min) × $3.75 + 17 × $15.
    assert_cost(r.cost, 0.006816);
}

#[tokio::test]
async fn anthropic_one_hour_cache_writes_cost_twice_the_input_price() {
    let body = r#"{"model":"claude-haiku-4-5-20251001","id":"msg_1","type":"message",
        "role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",
        "stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":3000,
        "cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":1000,
        "ephemeral_1h_input_tokens":2000},"output_tokens":50,"service_tier":"standard"}}"#;
    let server = MockServer::start(vec![Canned::json(200, body)]).await;
    let r = anthropic(&server)
        .chat(&ChatRequest::new("claude-haiku-4-5").user("hi"))
        .await
        .unwrap();
    assert_eq!(r.usage.unwrap().cache_creation_1h_input_tokens, 2000);
    // 100 × $1 + 1000 × $1.25 + 2000 × $2 + 50 × $5, per million.
    assert_cost(r.cost, 0.0056);
}

#[tokio::test]
async fn anthropic_stream_folds_with_its_cost() {
    let server = serve(&["anthropic/stream_text.http"]).await;
    let r = anthropic(&server)
        .chat_stream(&ChatRequest::new("claude-sonnet-4-5").user("Bonjour"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    // 14 uncached × $3 + 2048 read × $0.30 + 15 × $15, per million.
    assert_cost(r.cost, 0.0008814);
}

#[tokio::test]
async fn gemini_thinking_tokens_are_billed_as_output() {
    let server = serve(&["gemini/thinking.http"]).await;
    let r = gemini(&server)
        .chat(&ChatRequest::new("gemini-2.5-pro").user("6×7?"))
        .await
        .unwrap();
    // 11 prompt × $1.25 + (8 + 312 thoughts) × $10, per million.
    assert_cost(r.cost, 0.00321375);
}

#[tokio::test]
async fn gemini_stream_has_its_cost() {
    let server = serve(&["gemini/stream_text.http"]).await;
    let r = gemini(&server)
        .chat_stream(&ChatRequest::new("gemini-2.0-flash").user("Bonjour"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    // 9 prompt × $0.10 + 12 × $0.40, per million.
    assert_cost(r.cost, 0.0000057);
}

#[tokio::test]
async fn deepseek_cache_hits_cost_the_cache_hit_price() {
    let server = serve(&["deepseek/chat_reasoner_tool_call.http"]).await;
    let r = deepseek(&server)
        .chat(&ChatRequest::new("deepseek-reasoner").user("weather?"))
        .await
        .unwrap();
    // 56 missed × $0.14 + 256 hit × $0.0028 + 58 × $0.28, per million.
    assert_cost(r.cost, 0.0000247968);
}

#[tokio::test]
async fn a_reported_cost_wins_over_the_table() {
    let server = serve(&["compat/openrouter_chat_cost.http"]).await;
    let mut mine = PriceTable::empty();
    mine.insert(
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        ModelPrice::new(1000.0, 1000.0),
    );
    let openrouter = OpenAiCompatible::preset(Preset::OpenRouter)
        .api_key(KEY)
        .base_url(format!("{}/api/v1", server.url()))
        .prices(Arc::new(mine))
        .build()
        .unwrap();
    let r = openrouter
        .chat(&ChatRequest::new("anthropic/claude-sonnet-4.5").user("hi"))
        .await
        .unwrap();
    assert_eq!(r.cost, Some(0.000132));
}

#[tokio::test]
async fn an_unknown_model_has_no_cost() {
    let body = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-9-ultra",
        "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},
        "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
    let server = MockServer::start(vec![Canned::json(200, body)]).await;
    let r = openai(&server)
        .chat(&ChatRequest::new("gpt-9-ultra").user("hi"))
        .await
        .unwrap();
    assert!(r.usage.is_some());
    assert_eq!(r.cost, None);
}

#[tokio::test]
async fn an_override_file_prices_the_provider_and_a_call_table_wins() {
    let dir = std::env::temp_dir().join(format!("modelgate-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prices.json");
    std::fs::write(
        &path,
        r#"{ "date": "2026-12-01", "models": {
            "openai/gpt-4o-mini": { "input": 1.0, "output": 2.0 } } }"#,
    )
    .unwrap();
    let prices = PriceTable::builtin()
        .clone()
        .with_overrides(PriceTable::from_file(&path).unwrap());
    let server = serve(&["openai/stream_text.http", "openai/chat_reasoning.http"]).await;
    let provider = OpenAi::builder()
        .api_key(KEY)
        .base_url(server.url())
        .prices(Arc::new(prices))
        .build()
        .unwrap();
    let r = provider
        .chat_stream(&ChatRequest::new("gpt-4o-mini").user("Bonjour"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    // 19 × $1 + 10 × $2, per million.
    assert_cost(r.cost, 0.000039);
    // A table passed with the call wins over the provider's (o4-mini at $1 / $1 here).
    let mut call_table = PriceTable::empty();
    call_table.insert("openai", "o4-mini", ModelPrice::new(1.0, 1.0));
    let r = provider
        .chat_with(
            &ChatRequest::new("o4-mini").user("?"),
            &CallOptions::new().prices(&call_table),
        )
        .await
        .unwrap();
    assert_cost(r.cost, (2210.0 + 868.0) / 1e6);

    // A broken file names itself, the entry and the field.
    std::fs::write(
        &path,
        r#"{ "models": { "openai/gpt-4o": { "input": 1, "output": "2" } } }"#,
    )
    .unwrap();
    let err = PriceTable::from_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(r#""openai/gpt-4o".output: expected a non-negative number, found "2""#),
        "{msg}"
    );
    let missing = PriceTable::from_file(dir.join("absent.json")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    std::fs::remove_dir_all(&dir).unwrap();
}
