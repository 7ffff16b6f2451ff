use super::*;
use crate::types::{Tool, ToolCall};
use serde_json::json;

fn body_of(req: &ChatRequest) -> Value {
    let wire = encode(req, false, &InlineImages::default()).unwrap();
    serde_json::from_slice(&wire.body).unwrap()
}

fn err_of(req: &ChatRequest) -> Error {
    encode(req, false, &InlineImages::default()).unwrap_err()
}

#[test]
fn model_names_and_paths() {
    assert_eq!(model_id("gemini-2.5-flash").unwrap(), "gemini-2.5-flash");
    assert_eq!(model_id("models/gemini-2.5-pro").unwrap(), "gemini-2.5-pro");
    for bad in [
        "",
        "models/",
        "a/b",
        "tunedModels/x",
        "m?key=1",
        "m#f",
        "gemini:generateContent",
        "m%2Fx",
        "two words",
        "line\nbreak",
    ] {
        assert_eq!(
            model_id(bad).unwrap_err().kind(),
            ErrorKind::InvalidRequest,
            "{bad:?}"
        );
    }
    let req = ChatRequest::new("models/gemini-2.5-flash").user("hi");
    assert_eq!(
        encode(&req, false, &InlineImages::default()).unwrap().path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        encode(&req, true, &InlineImages::default()).unwrap().path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn a_minimal_request_has_only_contents() {
    let body = body_of(&ChatRequest::new("gemini-2.5-flash").user("Hello"));
    assert_eq!(
        body,
        json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]})
    );
}

#[test]
fn system_and_developer_messages_become_the_system_instruction() {
    let req = ChatRequest::new("gemini-2.5-flash")
        .system("Be brief.")
        .user("Hi")
        .developer("Answer in French.")
        .assistant("Salut")
        .user("Ça va?");
    let body = body_of(&req);
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
    );
    assert!(body["systemInstruction"].get("role").is_none());
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Salut"}]},
            {"role": "user", "parts": [{"text": "Ça va?"}]}
        ])
    );
    let bad = ChatRequest::new("g").message(
        Message::new(Role::System).with_part(ContentPart::image_base64("image/png", "AAAA")),
    );
    assert_eq!(err_of(&bad).kind(), ErrorKind::InvalidRequest);
}

#[test]
fn consecutive_turns_of_one_role_merge_and_empty_turns_vanish() {
    let req = ChatRequest::new("gemini-2.5-flash")
        .user("one")
        .user("two")
        .message(Message::new(Role::Assistant))
        .user("")
        .user("three")
        .assistant("a")
        .assistant("b");
    assert_eq!(
        body_of(&req)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]},
            {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]}
        ])
    );
}

#[test]
fn images_and_audio_go_inline() {
    let req = ChatRequest::new("gemini-2.5-flash").user_parts([
        ContentPart::text("What is this?"),
        ContentPart::image_base64("image/png", "iVBORw0KGgo="),
        ContentPart::image_url("data:image/jpeg;base64,/9j/4AAQ"),
        ContentPart::audio("UklGRg==", "wav"),
        ContentPart::audio("SUQz", "audio/mpeg"),
    ]);
    assert_eq!(
        body_of(&req)["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "audio/mpeg", "data": "SUQz"}}
        ])
    );
    for url in [
        "https://example.com/cat.png",
        "HTTP://example.com/cat.png",
        "ftp://example.com/cat.png",
        "data:image/svg+xml,<svg/>",
    ] {
        let req = ChatRequest::new("g").user_parts([ContentPart::image_url(url)]);
        assert_eq!(err_of(&req).kind(), ErrorKind::InvalidRequest, "{url}");
    }
}

#[test]
fn fetched_images_are_looked_up_by_url() {
    let url = "https://example.com/cat.png?sig=1";
    let mut images = InlineImages::default();
    images.insert(
        url.to_owned(),
        std::sync::Arc::new(crate::types::media::InlineImage {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
            size: 8,
        }),
    );
    let req = ChatRequest::new("g")
        .user_parts([ContentPart::image_url(url), ContentPart::text("and")])
        .assistant("ok")
        .user_parts([ContentPart::image_url(url)]);
    let wire = encode(&req, false, &images).unwrap();
    let body: Value = serde_json::from_slice(&wire.body).unwrap();
    let inline = json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}});
    assert_eq!(
        body["contents"][0]["parts"],
        json!([inline, {"text": "and"}])
    );
    assert_eq!(body["contents"][2]["parts"], json!([inline]));
    // Another URL was not fetched.
    let other =
        ChatRequest::new("g").user_parts([ContentPart::image_url("https://example.com/dog.png")]);
    assert_eq!(
        encode(&other, false, &images).unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn tools_have_cleaned_schemas_and_tool_choice_maps_to_modes() {
    let weather = Tool::function(
        "get_weather",
        "Current weather",
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {"city": {"type": "string", "default": "Paris"}},
            "required": ["city"]
        }),
    )
    .strict(true);
    let now = Tool::function("now", "", json!({"type": "object", "properties": {}}));
    let req = ChatRequest::new("gemini-2.5-flash")
        .user("Weather?")
        .tools([weather, now])
        .tool_choice(ToolChoice::Function("get_weather".into()));
    let body = body_of(&req);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }},
            {"name": "now"}
        ]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    for (choice, mode) in [
        (ToolChoice::Auto, "AUTO"),
        (ToolChoice::None, "NONE"),
        (ToolChoice::Required, "ANY"),
    ] {
        let body = body_of(&req.clone().tool_choice(choice));
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": mode}})
        );
    }
    // No tools, no tool config.
    let body = body_of(
        &ChatRequest::new("g")
            .user("x")
            .tool_choice(ToolChoice::None),
    );
    assert!(body.get("toolConfig").is_none());
    assert!(body.get("tools").is_none());
}

fn weather_call(id: &str) -> ToolCall {
    ToolCall::new(id, "get_weather", r#"{"city":"Paris"}"#)
}

#[test]
fn tool_results_become_named_function_responses_in_a_user_turn() {
    let mut signed = weather_call("call_1_abc");
    signed.signature = Some("c2lnLWZj".into());
    let req = ChatRequest::new("gemini-2.5-flash")
        .user("Weather in Paris and Rome?")
        .message(
            Message::new(Role::Assistant)
                .with_tool_call(signed)
                .with_tool_call(ToolCall::new("call_2_abc", "get_time", "")),
        )
        .tool_result("call_1_abc", r#"{"temp_c": 21, "sky": "clear"}"#)
        .tool_result("call_2_abc", "14:05")
        .message(Message::tool_result("call_1_abc", "[1,2]"))
        .message(Message::tool_result("call_2_abc", "timeout").with_error(true))
        .user("Thanks");
    let body = body_of(&req);
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": "c2lnLWZj"},
                {"functionCall": {"name": "get_time", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21, "sky": "clear"}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": [1, 2]}}},
                {"functionResponse": {"name": "get_time", "response": {"error": "timeout"}}},
                {"text": "Thanks"}
            ]}
        ])
    );
}

#[test]
fn a_tool_result_must_answer_a_known_call() {
    let req = ChatRequest::new("g")
        .user("x")
        .message(Message::new(Role::Assistant).with_tool_call(weather_call("call_a")))
        .tool_result("call_b", "{}");
    let err = err_of(&req);
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("call_b"), "{}", err.message());

    // A tool result before the call it names does not count.
    let req = ChatRequest::new("g")
        .tool_result("call_a", "{}")
        .message(Message::new(Role::Assistant).with_tool_call(weather_call("call_a")));
    assert_eq!(err_of(&req).kind(), ErrorKind::InvalidRequest);

    // Without an id it is refused; a tool message's `name` is the fallback for unknown ids.
    let mut no_id = Message::tool_result("x", "{}");
    no_id.tool_call_id = None;
    assert_eq!(
        err_of(&ChatRequest::new("g").message(no_id)).kind(),
        ErrorKind::InvalidRequest
    );
    let mut named = Message::tool_result("elsewhere", "ok");
    named.name = Some("lookup".into());
    assert_eq!(
        body_of(&ChatRequest::new("g").message(named))["contents"][0]["parts"][0],
        json!({"functionResponse": {"name": "lookup", "response": {"result": "ok"}}})
    );

    // Arguments must be a JSON object.
    let req = ChatRequest::new("g")
        .message(Message::new(Role::Assistant).with_tool_call(ToolCall::new("c", "f", "[1]")));
    assert_eq!(err_of(&req).kind(), ErrorKind::InvalidRequest);
    let req = ChatRequest::new("g")
        .message(Message::new(Role::Assistant).with_tool_call(ToolCall::new("c", "f", "{bad")));
    assert_eq!(err_of(&req).kind(), ErrorKind::InvalidRequest);
}

#[test]
fn reasoning_signatures_go_back_on_the_same_kind_of_part() {
    // On the last text part; thought text is not sent back.
    let m = Message::new(Role::Assistant)
        .with_part(ContentPart::text("It is "))
        .with_part(ContentPart::text("sunny."))
        .with_reasoning("Let me think", Some("c2lnLXRleHQ=".into()));
    let body = body_of(&ChatRequest::new("g").user("q").message(m));
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "It is "},
            {"text": "sunny.", "thoughtSignature": "c2lnLXRleHQ="}
        ]})
    );
    // With no text, on the first call when that has none of its own.
    let m = Message::new(Role::Assistant)
        .with_tool_call(weather_call("a"))
        .with_tool_call(weather_call("b"))
        .with_reasoning("", Some("c2ln".into()));
    let body = body_of(&ChatRequest::new("g").user("q").message(m));
    assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], "c2ln");
    assert!(
        body["contents"][1]["parts"][1]
            .get("thoughtSignature")
            .is_none()
    );
}

#[test]
fn generation_config_carries_sampling_format_and_thinking() {
    let req = ChatRequest::new("gemini-2.5-flash")
        .user("List three colors")
        .temperature(0.5)
        .top_p(0.9)
        .max_tokens(256)
        .stop("END")
        .stop("STOP")
        .seed(42)
        .thinking_budget(2048)
        .json_schema(
            "colors",
            json!({"type": "object", "additionalProperties": false,
                   "properties": {"colors": {"type": "array", "items": {"type": "string"}}},
                   "required": ["colors"]}),
        );
    assert_eq!(
        body_of(&req)["generationConfig"],
        json!({
            "temperature": 0.5,
            "topP": 0.9,
            "maxOutputTokens": 256,
            "stopSequences": ["END", "STOP"],
            "seed": 42,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object",
                "properties": {"colors": {"type": "array", "items": {"type": "string"}}},
                "required": ["colors"]},
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}
        })
    );
    let json_mode = ChatRequest::new("g")
        .user("x")
        .response_format(ResponseFormat::JsonObject);
    assert_eq!(
        body_of(&json_mode)["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    let text = ChatRequest::new("g")
        .user("x")
        .response_format(ResponseFormat::Text);
    assert!(body_of(&text).get("generationConfig").is_none());
    // Seeds beyond int32 are folded into its range.
    let big = ChatRequest::new("g").user("x").seed(u64::MAX);
    let seed = body_of(&big)["generationConfig"]["seed"].as_i64().unwrap();
    assert!((0..=i64::from(i32::MAX)).contains(&seed));
}

#[test]
fn thinking_budget_and_effort() {
    let config =
        |req: ChatRequest| body_of(&req.user("x"))["generationConfig"]["thinkingConfig"].clone();
    assert_eq!(
        config(ChatRequest::new("gemini-2.5-flash").thinking_budget(0)),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        config(ChatRequest::new("gemini-2.5-pro").reasoning_effort(ReasoningEffort::Low)),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(
        config(ChatRequest::new("gemini-2.5-pro").reasoning_effort(ReasoningEffort::Medium)),
        json!({"includeThoughts": true})
    );
    assert_eq!(
        config(ChatRequest::new("gemini-2.5-pro").reasoning_effort(ReasoningEffort::High)),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    assert_eq!(
        config(ChatRequest::new("gemini-3-pro-preview").reasoning_effort(ReasoningEffort::Low)),
        json!({"thinkingLevel": "low", "includeThoughts": true})
    );
    assert_eq!(
        config(ChatRequest::new("models/gemini-3.1-flash").reasoning_effort(ReasoningEffort::High)),
        json!({"thinkingLevel": "high", "includeThoughts": true})
    );
    assert_eq!(
        config(ChatRequest::new("gemini-10-ultra").reasoning_effort(ReasoningEffort::Medium)),
        json!({"includeThoughts": true})
    );
    assert!(uses_thinking_level("gemini-3-flash"));
    assert!(!uses_thinking_level("gemini-2.5-flash"));
    assert!(!uses_thinking_level("gemma-3-27b-it"));
}

#[test]
fn extra_fields_merge_into_the_top_level() {
    let req = ChatRequest::new("g")
        .user("x")
        .temperature(1.0)
        .extra(
            "safetySettings",
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
        )
        .extra("generationConfig", json!({"candidateCount": 1}));
    let body = body_of(&req);
    assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_NONE");
    // Extra overrides what the library set.
    assert_eq!(body["generationConfig"], json!({"candidateCount": 1}));
}

#[test]
fn extra_fields_keep_our_numbers_exact() {
    // With extra fields the body is merged as a map; its `f32`s must still be written as the
    // caller wrote them (`0.7`, never `0.699999988079071`).
    let req = ChatRequest::new("g")
        .user("x")
        .temperature(0.7)
        .top_p(0.9)
        .extra("cachedContent", json!("cachedContents/abc"));
    let text =
        String::from_utf8(encode(&req, false, &InlineImages::default()).unwrap().body).unwrap();
    assert_eq!(
        text,
        r#"{"cachedContent":"cachedContents/abc","contents":[{"parts":[{"text":"x"}],"role":"user"}],"generationConfig":{"temperature":0.7,"topP":0.9}}"#
    );
}
