//! The same conversation through all four providers, against the simulator: a system prompt, a
//! user turn with an image, a tool call, the tool's result and the final answer, streamed and not.
//! Whatever the wire format, the normalized results must agree.
#![cfg(all(
    feature = "simulator",
    feature = "openai",
    feature = "deepseek",
    feature = "anthropic",
    feature = "gemini"
))]

use std::sync::Arc;

use modelgate::providers::{Anthropic, DeepSeek, Gemini, OpenAi};
use modelgate::simulator::{RecordedRequest, Scenario, Simulator, Wire};
use modelgate::{
    ChatProvider, ChatRequest, ChatResponse, ContentPart, FinishReason, Tool, ToolChoice, Usage,
};
use serde_json::json;

/// A 1×1 PNG.
const PIXEL: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn providers(sim: &Simulator) -> Vec<(Arc<dyn ChatProvider>, &'static str)> {
    vec![
        (
            Arc::new(
                OpenAi::builder()
                    .api_key("k")
                    .base_url(sim.base_url(Wire::OpenAi))
                    .build()
                    .unwrap(),
            ),
            "gpt-4o",
        ),
        (
            Arc::new(
                Anthropic::builder()
                    .api_key("k")
                    .base_url(sim.base_url(Wire::Anthropic))
                    .build()
                    .unwrap(),
            ),
            "claude-sonnet-4-5",
        ),
        (
            Arc::new(
                Gemini::builder()
                    .api_key("k")
                    .base_url(sim.base_url(Wire::Gemini))
                    .build()
                    .unwrap(),
            ),
            "gemini-2.5-flash",
        ),
        (
            Arc::new(
                DeepSeek::builder()
                    .api_key("k")
                    .base_url(sim.base_url(Wire::DeepSeek))
                    .build()
                    .unwrap(),
            ),
            "deepseek-chat",
        ),
    ]
}

fn first_turn(model: &str) -> ChatRequest {
    ChatRequest::new(model)
        .system("You are a concise assistant.")
        .user_parts([
            ContentPart::text("What is the weather where this photo was taken?"),
            ContentPart::image_base64("image/png", PIXEL),
        ])
        .tool(Tool::function(
            "get_weather",
            "Current weather for a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ))
        .tool_choice(ToolChoice::Auto)
        .max_tokens(300)
}

async fn call(provider: &dyn ChatProvider, req: &ChatRequest, stream: bool) -> ChatResponse {
    if stream {
        provider
            .chat_stream(req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap()
    } else {
        provider.chat(req).await.unwrap()
    }
}

/// What every provider's request must carry, read from its own wire format.
fn assert_request_carries_the_conversation(r: &RecordedRequest, with_result: bool) {
    let body = r.body.to_string();
    assert!(
        body.contains("You are a concise assistant."),
        "{:?}: system prompt: {body}",
        r.wire
    );
    assert!(
        body.contains("What is the weather where this photo"),
        "{:?}: user text",
        r.wire
    );
    assert!(body.contains(PIXEL), "{:?}: image bytes", r.wire);
    assert!(body.contains("get_weather"), "{:?}: tool", r.wire);
    if with_result {
        assert!(
            body.contains("Paris"),
            "{:?}: the call's arguments are sent back",
            r.wire
        );
        assert!(body.contains("sunny"), "{:?}: the tool result", r.wire);
    }
}

#[tokio::test]
async fn the_same_conversation_agrees_across_providers() {
    let sim = Simulator::start().await.unwrap();
    for stream in [false, true] {
        let mut finals = Vec::new();
        for (provider, model) in providers(&sim) {
            let provider = provider.as_ref();
            sim.enqueue_for_model(
                model,
                Scenario::tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#)
                    .with_usage(120, 18),
            );
            let req = first_turn(model);
            let first = call(provider, &req, stream).await;
            assert_eq!(first.provider, provider.name());
            assert_eq!(
                first.finish_reason,
                FinishReason::ToolCalls,
                "{}",
                provider.name()
            );
            assert_eq!(first.tool_calls().len(), 1, "{}", provider.name());
            let tool_call = &first.tool_calls()[0];
            assert_eq!(tool_call.name, "get_weather");
            assert_eq!(
                tool_call.parse_arguments().unwrap(),
                json!({"city": "Paris"})
            );
            assert!(
                !tool_call.id.is_empty(),
                "{}: every call has an id",
                provider.name()
            );
            assert_eq!(first.text(), "");

            sim.enqueue_for_model(
                model,
                Scenario::text("It is 18 °C and sunny in Paris.").with_usage(160, 12),
            );
            let follow_up = req
                .clone()
                .message(first.message.clone())
                .tool_result(tool_call.id.clone(), r#"{"temp_c":18,"sky":"sunny"}"#);
            let last = call(provider, &follow_up, stream).await;
            let recorded = sim.requests();
            let n = recorded.len();
            assert_request_carries_the_conversation(&recorded[n - 2], false);
            assert_request_carries_the_conversation(&recorded[n - 1], true);
            assert_eq!(recorded[n - 1].stream, stream);
            finals.push((provider.name().to_owned(), last));
        }
        for (name, r) in &finals {
            assert_eq!(
                r.text(),
                "It is 18 °C and sunny in Paris.",
                "{name} (stream: {stream})"
            );
            assert_eq!(r.finish_reason, FinishReason::Stop, "{name}");
            assert!(r.tool_calls().is_empty(), "{name}");
            let usage = r
                .usage
                .unwrap_or_else(|| panic!("{name}: usage is reported"));
            assert_eq!(
                (usage.input_tokens, usage.output_tokens),
                (160, 12),
                "{name} (stream: {stream}): {usage:?}"
            );
            assert_eq!(usage.total_tokens(), Usage::new(160, 12).total_tokens());
            assert!(!r.model.is_empty(), "{name}");
        }
    }
}
