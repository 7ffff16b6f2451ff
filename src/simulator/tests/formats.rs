//! Each wire's answers, streamed and not, match the provider's documented format.

use serde_json::{Value, json};

use super::{PROMPT, call_json, call_stream, parse_sse};
use crate::simulator::{Scenario, Simulator, Wire};

const ARGS: &str = r#"{"city":"Paris","unit":"celsius"}"#;

fn weather_answer() -> Scenario {
    Scenario::text("Let me check the weather.")
        .with_tool_call("call_1", "get_weather", ARGS)
        .with_tool_call("call_2", "get_time", "{}")
        .with_usage(100, 40)
        .with_cached_tokens(30)
}

fn thinking_answer() -> Scenario {
    Scenario::text("Paris is sunny.")
        .with_reasoning("The user wants weather.")
        .with_usage(50, 20)
        .with_cached_tokens(10)
        .with_reasoning_tokens(6)
}

#[tokio::test]
async fn echo_is_the_default() {
    let sim = Simulator::start().await.unwrap();
    let (_, _, body) = call_json(&sim, Wire::OpenAi, "gpt-4o").await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("You said: {PROMPT}")
    );
    let (_, _, body) = call_json(&sim, Wire::Gemini, "gemini-2.5-flash").await;
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        format!("You said: {PROMPT}")
    );
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn openai_completion() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(weather_answer().with_model("gpt-4o-2024-08-06"));
    let (status, headers, body) = call_json(&sim, Wire::OpenAi, "gpt-4o").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(headers.contains_key("x-request-id"));
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Let me check the weather.");
    assert!(choice["message"].get("reasoning_content").is_none());
    assert_eq!(
        choice["message"]["tool_calls"][0],
        json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}})
    );
    assert_eq!(
        choice["message"]["tool_calls"][1]["function"]["arguments"],
        "{}"
    );
    let usage = &body["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(100), Some(40))
    );
    assert_eq!(usage["total_tokens"], 140);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);

    // Only tool calls: content is null, not "".
    sim.enqueue(Scenario::tool_call("c", "f", "{}"));
    let (_, _, body) = call_json(&sim, Wire::OpenAi, "gpt-4o").await;
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
}

#[tokio::test]
async fn openai_stream() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(weather_answer());
    let (content_type, body) = call_stream(&sim, Wire::OpenAi, "gpt-4o").await;
    assert!(content_type.starts_with("text/event-stream"));
    let events = parse_sse(&body, "\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(events.iter().all(|e| e.event.is_none()));

    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-4o");
        assert!(chunk["system_fingerprint"].is_string());
        assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );

    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 100);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 40);
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
        30
    );
    assert!(
        rest.iter().all(|c| c.get("usage") == Some(&Value::Null)),
        "other chunks carry usage: null"
    );

    let (finish, deltas) = rest.split_last().unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert!(
        deltas
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );

    let text: String = deltas
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check the weather.");
    // Default chunking: four characters per delta.
    assert_eq!(deltas[1]["choices"][0]["delta"]["content"], "Let ");

    let fragments: Vec<&Value> = deltas
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    for (index, (id, name, args)) in [
        ("call_1", "get_weather", ARGS),
        ("call_2", "get_time", "{}"),
    ]
    .into_iter()
    .enumerate()
    {
        let mine: Vec<&Value> = fragments
            .iter()
            .map(|f| &f[0])
            .filter(|f| f["index"] == index)
            .collect();
        assert!(
            mine.len() >= 3,
            "a header fragment and at least two argument pieces"
        );
        assert_eq!(mine[0]["id"], id);
        assert_eq!(mine[0]["type"], "function");
        assert_eq!(mine[0]["function"]["name"], name);
        for later in &mine[1..] {
            assert!(later.get("id").is_none() && later.get("type").is_none());
            assert!(later["function"].get("name").is_none());
        }
        let joined: String = mine
            .iter()
            .map(|f| f["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(joined, args);
    }
}

#[tokio::test]
async fn openai_stream_without_usage_request_has_no_usage() {
    let sim = Simulator::start().await.unwrap();
    let response = super::client()
        .post(format!("{}/chat/completions", sim.base_url(Wire::OpenAi)))
        .json(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    let events = parse_sse(&response.text().await.unwrap(), "\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn deepseek_completion_and_stream() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(thinking_answer());
    let (_, _, body) = call_json(&sim, Wire::DeepSeek, "deepseek-reasoner").await;
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Paris is sunny.");
    assert_eq!(message["reasoning_content"], "The user wants weather.");
    assert_eq!(body["usage"]["prompt_cache_hit_tokens"], 10);
    assert_eq!(body["usage"]["prompt_cache_miss_tokens"], 40);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        6
    );

    sim.enqueue(thinking_answer());
    let (_, body) = call_stream(&sim, Wire::DeepSeek, "deepseek-reasoner").await;
    let events = parse_sse(&body, "\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    let reasoning: String = deltas
        .iter()
        .filter_map(|d| d["reasoning_content"].as_str())
        .collect();
    let text: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(reasoning, "The user wants weather.");
    assert_eq!(text, "Paris is sunny.");
    let last_reasoning = deltas
        .iter()
        .rposition(|d| d["reasoning_content"].is_string())
        .unwrap();
    let first_text = deltas
        .iter()
        .position(|d| d["content"].as_str().is_some_and(|t| !t.is_empty()))
        .unwrap();
    assert!(
        last_reasoning < first_text,
        "reasoning streams before content"
    );
    // Usage rides on the finish chunk; there is no separate usage chunk.
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"]["prompt_cache_hit_tokens"], 10);
    assert_eq!(finish["usage"]["completion_tokens"], 20);
}

#[tokio::test]
async fn anthropic_message() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(thinking_answer().with_tool_call("toolu_1", "get_weather", ARGS));
    let (status, headers, body) = call_json(&sim, Wire::Anthropic, "claude-sonnet-4-5").await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("request-id"));
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["stop_sequence"], Value::Null);
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 3);
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "The user wants weather.");
    assert!(!content[0]["signature"].as_str().unwrap().is_empty());
    assert_eq!(
        content[1],
        json!({"type": "text", "text": "Paris is sunny."})
    );
    assert_eq!(
        content[2],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}})
    );
    // Anthropic's input_tokens leaves out the 10 tokens read from the cache.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 40, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10})
    );
}

#[tokio::test]
async fn anthropic_stream() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(thinking_answer().with_tool_call("toolu_1", "get_weather", ARGS));
    let (content_type, body) = call_stream(&sim, Wire::Anthropic, "claude-sonnet-4-5").await;
    assert!(content_type.starts_with("text/event-stream"));
    let events = parse_sse(&body, "\n");
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    for (event, json) in events.iter().zip(&data) {
        assert_eq!(
            event.event.as_deref(),
            json["type"].as_str(),
            "event name equals the JSON type"
        );
    }
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(&names[..2], ["message_start", "ping"]);
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);

    let start = &data[0]["message"];
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["usage"]["input_tokens"], 40);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 10);
    assert_eq!(start["usage"]["output_tokens"], 1);

    let message_delta = &data[data.len() - 2];
    assert_eq!(
        message_delta["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(message_delta["usage"]["output_tokens"], 20);

    // Blocks: start, deltas of the block's kind, stop, with matching indexes, in order.
    let blocks = &data[2..data.len() - 2];
    let starts: Vec<&Value> = blocks
        .iter()
        .filter(|d| d["type"] == "content_block_start")
        .collect();
    let kinds: Vec<&str> = starts
        .iter()
        .map(|s| s["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "text", "tool_use"]);
    let deltas_of = |index: usize| -> Vec<&Value> {
        blocks
            .iter()
            .filter(|d| d["type"] == "content_block_delta" && d["index"] == index)
            .map(|d| &d["delta"])
            .collect()
    };
    let thinking = deltas_of(0);
    let (signature, thoughts) = thinking.split_last().unwrap();
    assert_eq!(signature["type"], "signature_delta");
    assert!(thoughts.iter().all(|d| d["type"] == "thinking_delta"));
    assert_eq!(
        thoughts
            .iter()
            .map(|d| d["thinking"].as_str().unwrap())
            .collect::<String>(),
        "The user wants weather."
    );
    let text: String = deltas_of(1)
        .iter()
        .map(|d| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Paris is sunny.");
    assert_eq!(
        starts[2]["content_block"],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}})
    );
    let json_deltas = deltas_of(2);
    assert_eq!(
        json_deltas[0],
        &json!({"type": "input_json_delta", "partial_json": ""})
    );
    assert!(json_deltas.len() >= 3);
    let input: String = json_deltas
        .iter()
        .map(|d| d["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(input, ARGS);
    for index in 0..3 {
        let opened = blocks
            .iter()
            .position(|d| d["type"] == "content_block_start" && d["index"] == index)
            .unwrap();
        let closed = blocks
            .iter()
            .position(|d| d["type"] == "content_block_stop" && d["index"] == index)
            .unwrap();
        assert!(opened < closed);
    }
}

#[tokio::test]
async fn gemini_generate_content() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(thinking_answer().with_tool_call("ignored", "get_weather", ARGS));
    let (status, _, body) = call_json(&sim, Wire::Gemini, "gemini-2.5-flash").await;
    assert_eq!(status, 200);
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["index"], 0);
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(
        candidate["content"]["parts"],
        json!([
            {"text": "The user wants weather.", "thought": true},
            {"text": "Paris is sunny."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}},
        ])
    );
    assert_eq!(
        body["usageMetadata"],
        json!({
            "promptTokenCount": 50, "candidatesTokenCount": 14, "thoughtsTokenCount": 6,
            "cachedContentTokenCount": 10, "totalTokenCount": 70,
        })
    );
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    assert!(body["responseId"].is_string());
    assert_eq!(sim.requests()[0].model.as_deref(), Some("gemini-2.5-flash"));
}

#[tokio::test]
async fn gemini_stream() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        thinking_answer()
            .with_tool_call("a", "get_weather", ARGS)
            .with_tool_call("b", "get_time", "{}"),
    );
    let (content_type, body) = call_stream(&sim, Wire::Gemini, "gemini-2.5-pro").await;
    assert!(content_type.starts_with("text/event-stream"));
    assert!(!body.contains("[DONE]"));
    let events = parse_sse(&body, "\r\n");
    assert!(events.iter().all(|e| e.event.is_none()));
    let chunks: Vec<Value> = events.iter().map(|e| e.json()).collect();
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 70);
    for chunk in rest {
        assert!(chunk["candidates"][0].get("finishReason").is_none());
        assert!(chunk.get("usageMetadata").is_none());
    }
    let parts: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| c["candidates"][0]["content"]["parts"].as_array().unwrap())
        .collect();
    let thoughts: String = parts
        .iter()
        .filter(|p| p["thought"] == true)
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    let text: String = parts
        .iter()
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(thoughts, "The user wants weather.");
    assert_eq!(text, "Paris is sunny.");
    let calls: Vec<&Value> = parts.iter().filter_map(|p| p.get("functionCall")).collect();
    assert_eq!(calls.len(), 2, "each call arrives whole");
    assert_eq!(
        calls[0]["args"],
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(calls[1]["name"], "get_time");
}

#[tokio::test]
async fn gemini_stream_without_sse_is_one_json_array() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("abcdefgh"));
    let response = super::client()
        .post(format!(
            "{}/v1beta/models/g:streamGenerateContent",
            sim.base_url(Wire::Gemini)
        ))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let chunks = body.as_array().unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["candidates"][0]["finishReason"], "STOP");
}
