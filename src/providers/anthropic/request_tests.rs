use serde_json::{Value, json};

use super::*;
use crate::types::{Tool, ToolCall};

fn body(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode(req, false, None).unwrap()).unwrap()
}

fn err(req: &ChatRequest) -> Error {
    encode(req, false, None).unwrap_err()
}

#[test]
fn minimal_request_has_model_max_tokens_and_messages_only() {
    let b = body(&ChatRequest::new("claude-3-haiku-20240307").user("Hi"));
    assert_eq!(
        b,
        json!({
            "model": "claude-3-haiku-20240307",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
        })
    );
}

#[test]
fn max_tokens_defaults_by_model_builder_and_request() {
    let max = |model: &str, builder: Option<u32>, req: Option<u32>| {
        let mut r = ChatRequest::new(model).user("x");
        r.max_tokens = req;
        let b: Value = serde_json::from_slice(&encode(&r, false, builder).unwrap()).unwrap();
        b["max_tokens"].as_u64().unwrap()
    };
    assert_eq!(max("claude-3-opus-20240229", None, None), 4096);
    assert_eq!(max("claude-3-5-sonnet-20241022", None, None), 8192);
    assert_eq!(max("claude-3-7-sonnet-20250219", None, None), 8192);
    assert_eq!(max("claude-sonnet-4-5", None, None), 8192);
    assert_eq!(max("claude-opus-4-1-20250805", None, None), 8192);
    assert_eq!(max("claude-haiku-4-5", None, None), 8192);
    assert_eq!(max("some-proxy-alias", None, None), 4096);
    assert_eq!(max("claude-sonnet-4-5", Some(1000), None), 1000);
    assert_eq!(max("claude-sonnet-4-5", Some(1000), Some(77)), 77);
    let mut zero = ChatRequest::new("m").user("x");
    zero.max_tokens = Some(0);
    assert_eq!(err(&zero).kind(), ErrorKind::InvalidRequest);
}

#[test]
fn system_and_developer_messages_are_lifted_in_order() {
    let one = body(&ChatRequest::new("m").user("a").system("Be terse."));
    assert_eq!(one["system"], "Be terse.");
    assert_eq!(one["messages"].as_array().unwrap().len(), 1);

    let many = body(
        &ChatRequest::new("m")
            .system("First.")
            .user("a")
            .developer("Second.")
            .assistant("b"),
    );
    assert_eq!(
        many["system"],
        json!([{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}])
    );
    let roles: Vec<&str> = many["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);

    let image_in_system = ChatRequest::new("m")
        .message(Message::system("x").with_part(ContentPart::image_url("https://x/y.png")));
    assert_eq!(err(&image_in_system).kind(), ErrorKind::InvalidRequest);
}

#[test]
fn tool_loop_merges_tool_results_into_one_user_turn() {
    let req = ChatRequest::new("m")
        .user("Weather in Paris and Rome?")
        .message(
            Message::assistant("Let me check.")
                .with_tool_call(ToolCall::new(
                    "toolu_1",
                    "get_weather",
                    r#"{"city":"Paris"}"#,
                ))
                .with_tool_call(ToolCall::new(
                    "toolu_2",
                    "get_weather",
                    " {\"city\": \"Rome\"} ",
                )),
        )
        .tool_result("toolu_1", "18°C")
        .message(Message::tool_result("toolu_2", "no data").with_error(true))
        .user("Thanks");
    let b = body(&req);
    let messages = b["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no data", "is_error": true},
            {"type": "text", "text": "Thanks"}
        ]})
    );
}

#[test]
fn tool_results_move_before_text_in_a_merged_user_turn() {
    let req = ChatRequest::new("m")
        .message(Message::assistant("").with_tool_call(ToolCall::new("t1", "f", "")))
        .user("Here you go:")
        .tool_result("t1", "42");
    let b = body(&req);
    // An empty-arguments call sends `{}`, and the empty assistant text is left out.
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"type": "tool_use", "id": "t1", "name": "f", "input": {}}])
    );
    assert_eq!(b["messages"][1]["content"][0]["type"], "tool_result");
    assert_eq!(b["messages"][1]["content"][1]["text"], "Here you go:");
}

#[test]
fn consecutive_user_messages_merge() {
    let b = body(
        &ChatRequest::new("m")
            .user("one")
            .user("two")
            .assistant("x")
            .assistant("y"),
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}
        ])
    );
}

#[test]
fn bad_tool_arguments_and_missing_ids_are_invalid_requests() {
    let bad_json = ChatRequest::new("m")
        .user("x")
        .message(Message::assistant("").with_tool_call(ToolCall::new("t", "f", "{\"a\":")));
    let e = err(&bad_json);
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("`f`"), "{}", e.message());

    let not_object = ChatRequest::new("m")
        .user("x")
        .message(Message::assistant("").with_tool_call(ToolCall::new("t", "f", "[1]")));
    assert_eq!(err(&not_object).kind(), ErrorKind::InvalidRequest);

    let mut orphan = Message::tool_result("t", "r");
    orphan.tool_call_id = None;
    assert_eq!(
        err(&ChatRequest::new("m").message(orphan)).kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        err(&ChatRequest::new("").user("x")).kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn images_by_url_data_url_and_base64() {
    let req = ChatRequest::new("m").user_parts([
        ContentPart::text("What is in these?"),
        ContentPart::image_url("https://example.com/cat.jpg"),
        ContentPart::image_url("data:image/png;base64,iVBORw0KGgo="),
        ContentPart::image_base64("image/webp", "UklGRg=="),
    ]);
    assert_eq!(
        body(&req)["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}}
        ])
    );
    let not_base64 =
        ChatRequest::new("m").user_parts([ContentPart::image_url("data:image/svg+xml,<svg/>")]);
    assert_eq!(err(&not_base64).kind(), ErrorKind::InvalidRequest);
    let audio = ChatRequest::new("m").user_parts([ContentPart::audio("AAAA", "wav")]);
    assert_eq!(err(&audio).kind(), ErrorKind::InvalidRequest);
}

#[test]
fn tool_result_with_an_image_is_a_block_list() {
    let mut m = Message::tool_result("t1", "chart:");
    m.content
        .push(ContentPart::image_base64("image/png", "AAAA"));
    let b = body(&ChatRequest::new("m").message(m));
    assert_eq!(
        b["messages"][0]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "chart:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
        ]})
    );
}

#[test]
fn signed_reasoning_goes_back_first_as_a_thinking_block() {
    let signed = Message::assistant("It is 4.")
        .with_reasoning("2+2 is 4.", Some("EqQBCgIYAhIM".into()))
        .with_tool_call(ToolCall::new("t1", "calc", "{}"));
    let b = body(&ChatRequest::new("m").user("2+2?").message(signed));
    assert_eq!(
        b["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "2+2 is 4.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "It is 4."},
            {"type": "tool_use", "id": "t1", "name": "calc", "input": {}}
        ])
    );
    // Reasoning without a signature (another provider's) cannot be verified: left out.
    let unsigned = Message::assistant("It is 4.").with_reasoning("2+2 is 4.", None);
    let b = body(&ChatRequest::new("m").user("2+2?").message(unsigned));
    assert_eq!(
        b["messages"][1]["content"],
        json!([{"type": "text", "text": "It is 4."}])
    );
}

#[test]
fn tools_and_every_tool_choice() {
    let weather = Tool::function(
        "get_weather",
        "Current weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    let mut bare = Tool::function("now", "", Value::Null);
    bare.description = None;
    let base = ChatRequest::new("m").user("x").tool(weather).tool(bare);
    let b = body(&base);
    assert_eq!(
        b["tools"],
        json!([
            {"name": "get_weather", "description": "Current weather", "input_schema":
                {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert!(b.get("tool_choice").is_none());
    let choice = |c: ToolChoice, parallel: Option<bool>| {
        let mut r = base.clone().tool_choice(c);
        r.parallel_tool_calls = parallel;
        body(&r)["tool_choice"].clone()
    };
    assert_eq!(choice(ToolChoice::Auto, None), json!({"type": "auto"}));
    assert_eq!(
        choice(ToolChoice::Required, Some(true)),
        json!({"type": "any"})
    );
    assert_eq!(
        choice(ToolChoice::Function("get_weather".into()), None),
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        choice(ToolChoice::None, Some(false)),
        json!({"type": "none"})
    );
    assert_eq!(
        choice(ToolChoice::Required, Some(false)),
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    let no_choice = body(&base.clone().parallel_tool_calls(false));
    assert_eq!(
        no_choice["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // No tools: no tool_choice at all.
    let toolless = body(
        &ChatRequest::new("m")
            .user("x")
            .tool_choice(ToolChoice::Required),
    );
    assert!(toolless.get("tool_choice").is_none());
    assert!(toolless.get("tools").is_none());
}

#[test]
fn thinking_budget_and_max_tokens() {
    let b = body(
        &ChatRequest::new("claude-sonnet-4-5")
            .user("x")
            .thinking_budget(2048),
    );
    assert_eq!(
        b["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(b["max_tokens"], 2048 + 8192);

    let b = body(
        &ChatRequest::new("m")
            .user("x")
            .thinking_budget(2048)
            .max_tokens(3000),
    );
    assert_eq!(b["max_tokens"], 3000);

    let e = err(&ChatRequest::new("m").user("x").thinking_budget(1023));
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("1024"), "{}", e.message());
    let e = err(&ChatRequest::new("m")
        .user("x")
        .thinking_budget(2048)
        .max_tokens(2048));
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);

    let b = body(
        &ChatRequest::new("m")
            .user("x")
            .reasoning_effort(ReasoningEffort::High),
    );
    assert_eq!(b["thinking"]["budget_tokens"], 16_384);
    assert_eq!(b["max_tokens"], 16_384 + 4096);
}

#[test]
fn sampling_stream_and_extra_fields() {
    let mut req = ChatRequest::new("m")
        .user("x")
        .temperature(0.5)
        .top_p(0.9)
        .stop("END")
        .stop("STOP")
        .seed(7)
        .metadata("tier", "free");
    req.extra.insert("top_k".into(), json!(40));
    req.extra.insert("max_tokens".into(), json!(5));
    req.extra
        .insert("metadata".into(), json!({"user_id": "u-1"}));
    let b: Value = serde_json::from_slice(&encode(&req, true, None).unwrap()).unwrap();
    assert_eq!(b["temperature"], 0.5);
    assert_eq!(b["top_p"], 0.9);
    assert_eq!(b["stop_sequences"], json!(["END", "STOP"]));
    assert_eq!(b["stream"], true);
    assert_eq!(b["top_k"], 40);
    // Extra fields override ours.
    assert_eq!(b["max_tokens"], 5);
    // Routing metadata is never sent; the seed has no Anthropic field.
    assert_eq!(b["metadata"], json!({"user_id": "u-1"}));
    assert!(b.get("seed").is_none());

    // The merge keeps raw tool inputs intact.
    let mut with_call = ChatRequest::new("m").user("x").message(
        Message::assistant("").with_tool_call(ToolCall::new("t", "f", r#"{"n": 1.50, "s": "é"}"#)),
    );
    with_call.extra.insert("top_k".into(), json!(5));
    let b = body(&with_call);
    assert_eq!(
        b["messages"][1]["content"][0]["input"],
        json!({"n": 1.5, "s": "é"})
    );
    assert_eq!(b["top_k"], 5);
}

#[test]
fn json_response_formats_become_a_forced_tool() {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let req = ChatRequest::new("m")
        .user("x")
        .json_schema("place", schema.clone());
    let b = body(&req);
    assert_eq!(
        b["tools"],
        json!([{
            "name": JSON_TOOL,
            "description": "Give the answer as this tool's input: a JSON value following the `place` schema.",
            "input_schema": schema
        }])
    );
    assert_eq!(b["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));
    assert!(b.get("response_format").is_none());

    // Any JSON object: an object schema.
    let object = ChatRequest::new("m")
        .user("x")
        .response_format(ResponseFormat::JsonObject);
    let b = body(&object);
    assert_eq!(b["tools"][0]["name"], JSON_TOOL);
    assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(b["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));

    // With the caller's tools: the model calls one of them or answers through ours.
    let with_tools = object
        .clone()
        .tool(Tool::function("f", "F", json!({"type": "object"})));
    let b = body(&with_tools);
    assert_eq!(b["tools"][0]["name"], "f");
    assert_eq!(b["tools"][1]["name"], JSON_TOOL);
    assert_eq!(b["tool_choice"], json!({"type": "any"}));
    let forced = with_tools
        .clone()
        .tool_choice(ToolChoice::Function("f".into()));
    assert_eq!(
        body(&forced)["tool_choice"],
        json!({"type": "tool", "name": "f"})
    );
    let none = with_tools.tool_choice(ToolChoice::None);
    assert_eq!(err(&none).kind(), ErrorKind::InvalidRequest);

    // The API refuses a forced tool while thinking: the choice stays `auto`.
    let thinking = object.clone().thinking_budget(2000);
    assert_eq!(body(&thinking)["tool_choice"], json!({"type": "auto"}));

    // The reserved name cannot be one of the caller's tools.
    let clash = object.tool(Tool::function(JSON_TOOL, "mine", json!({"type": "object"})));
    assert_eq!(err(&clash).kind(), ErrorKind::InvalidRequest);

    let text = ChatRequest::new("m")
        .user("x")
        .response_format(ResponseFormat::Text);
    let b = body(&text);
    assert!(b.get("response_format").is_none());
    assert!(b.get("tools").is_none());
}

#[test]
fn extra_fields_keep_our_numbers_exact() {
    // With extra fields the body is merged as a map; its `f32`s must still be written as the
    // caller wrote them (`0.7`, never `0.699999988079071`).
    let req = ChatRequest::new("m")
        .user("x")
        .temperature(0.7)
        .top_p(0.9)
        .max_tokens(10)
        .extra("top_k", json!(40));
    let text = String::from_utf8(encode(&req, false, None).unwrap()).unwrap();
    assert_eq!(
        text,
        r#"{"max_tokens":10,"messages":[{"content":[{"text":"x","type":"text"}],"role":"user"}],"model":"m","temperature":0.7,"top_k":40,"top_p":0.9}"#
    );
}
