use super::*;

fn parse(v: Value) -> Result<CompletionRequest, InvalidRequest> {
    parse_request(v.to_string().as_bytes())
}

fn param(v: Value) -> Option<String> {
    parse(v).unwrap_err().param
}

#[test]
fn a_full_request_maps_onto_the_normalized_request() {
    let r = parse(json!({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "Looks", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 300, "stop": ["\n\n"], "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}},
        "metadata": {"quality": "accuracy"},
        "stream": true, "stream_options": {"include_usage": true},
        "logit_bias": {"50256": -100}
    }))
    .unwrap();
    assert!(r.stream && r.include_usage);
    let q = r.request;
    assert_eq!(q.model, "auto");
    assert_eq!(q.messages.len(), 4);
    assert_eq!(q.messages[1].content.len(), 4);
    assert!(
        matches!(&q.messages[1].content[1], ContentPart::Image { detail: Some(d), .. } if d == "low")
    );
    assert_eq!(
        q.messages[1].content[2],
        ContentPart::image_base64("image/png", "AAAA")
    );
    assert_eq!(q.messages[1].content[3], ContentPart::audio("UklG", "wav"));
    assert_eq!(
        q.messages[2].tool_calls[0],
        ToolCall::new("call_1", "look", "{\"x\":1}")
    );
    assert_eq!(q.messages[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(q.tools[0].name, "look");
    assert_eq!(q.tool_choice, Some(ToolChoice::Function("look".into())));
    assert_eq!(
        (q.temperature, q.top_p, q.max_tokens, q.seed),
        (Some(0.5), Some(0.9), Some(300), Some(7))
    );
    assert_eq!(q.stop, ["\n\n"]);
    assert!(matches!(
        q.response_format,
        Some(ResponseFormat::JsonSchema { strict: true, .. })
    ));
    assert_eq!(
        q.metadata.get("quality").map(String::as_str),
        Some("accuracy")
    );
    // What the gateway does not read passes through.
    assert_eq!(q.extra.get("logit_bias"), Some(&json!({"50256": -100})));
}

#[test]
fn mistakes_name_their_parameter() {
    assert_eq!(
        param(json!({"messages": [{"role": "user", "content": "x"}]})).as_deref(),
        Some("model")
    );
    assert_eq!(param(json!({"model": "m"})).as_deref(), Some("messages"));
    assert_eq!(
        param(json!({"model": "m", "messages": []})).as_deref(),
        Some("messages")
    );
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})).as_deref(),
        Some("messages[0].role")
    );
    assert_eq!(
        param(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]})
        )
        .as_deref(),
        Some("messages[0].content[0].type")
    );
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})).as_deref(),
        Some("messages[0].tool_call_id")
    );
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})).as_deref(),
        Some("temperature")
    );
    assert_eq!(
        param(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": {"n": 1}})).as_deref(),
        Some("metadata.n")
    );
    let bad = parse_request(b"{\"model\": \"m\", \"messages\": [").unwrap_err();
    assert_eq!(bad.param, None);
    assert!(bad.message.contains("not valid JSON"));
    let utf8 = parse_request(b"{\"model\": \"\xff\"}").unwrap_err();
    assert!(utf8.message.contains("not valid JSON"), "{}", utf8.message);
    assert_eq!(bad.to_json()["error"]["type"], "invalid_request_error");
}

#[test]
fn a_response_is_openais_chat_completion() {
    let mut r = ChatResponse::new("anthropic", "claude-sonnet-4-5", Message::assistant("Hi"));
    r.id = "msg_1".into();
    r.usage = Some(
        Usage::new(10, 5)
            .with_cached_input_tokens(4)
            .with_reasoning_tokens(2),
    );
    r.cost = Some(0.000123);
    let v = response_json(&r, 1_700_000_000);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "msg_1");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["choices"][0]["message"]["content"], "Hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 10);
    assert_eq!(v["usage"]["total_tokens"], 15);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        2
    );
    assert_eq!(v["usage"]["cost"], 0.000123);

    let mut call = ChatResponse::new(
        "gemini",
        "gemini-2.5-flash",
        Message::new(Role::Assistant).with_tool_call(ToolCall::new("c1", "look", "{}")),
    );
    call.finish_reason = FinishReason::ToolCalls;
    let v = response_json(&call, 0);
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "look"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
}

#[test]
fn stream_chunks_follow_openais_shape() {
    let mut w = ChunkWriter::new("id1", "gpt-4o-mini", 5);
    let first = w.delta(&Delta::Text("Hel".into())).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Hel"})
    );
    let second = w.delta(&Delta::Text("lo".into())).unwrap();
    assert_eq!(second["choices"][0]["delta"], json!({"content": "lo"}));
    let call = w
        .delta(&Delta::ToolCall {
            index: 0,
            id: Some("c1".into()),
            name: Some("f".into()),
            arguments: "{\"a\"".into(),
        })
        .unwrap();
    assert_eq!(
        call["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "f"
    );
    assert_eq!(
        call["choices"][0]["delta"]["tool_calls"][0]["type"],
        "function"
    );
    let end = w.delta(&Delta::Finish(FinishReason::Length)).unwrap();
    assert_eq!(end["choices"][0]["finish_reason"], "length");
    assert!(w.delta(&Delta::Usage(Usage::new(1, 2))).is_none());
    let usage = w.usage(&Usage::new(1, 2), Some(0.5));
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["cost"], 0.5);
}

#[test]
fn errors_map_to_the_gateway_contracts_statuses() {
    let status = |e: Error| error_response(&e).0;
    assert_eq!(status(Error::new(ErrorKind::InvalidRequest, "bad")), 400);
    assert_eq!(status(Error::new(ErrorKind::NotFound, "no route")), 404);
    let (s, body) = error_response(&Error::new(ErrorKind::BudgetExceeded, "spent"));
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (429, Some("budget_exceeded"))
    );
    let (s, body) = error_response(&Error::new(ErrorKind::Auth, "bad key").with_provider("openai"));
    assert_eq!(
        s, 502,
        "an upstream's 401 is the gateway's own key, never the client's"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`openai`")
    );
    assert_eq!(status(Error::new(ErrorKind::Timeout, "late")), 504);
    let limited = Error::all_targets_failed(vec![
        Error::new(ErrorKind::RateLimited, "a"),
        Error::new(ErrorKind::RateLimited, "b"),
    ]);
    assert_eq!(status(limited), 429);
    let open = Error::all_targets_failed(vec![Error::new(ErrorKind::CircuitOpen, "a")]);
    assert_eq!(status(open), 503);
    let mixed = Error::all_targets_failed(vec![
        Error::new(ErrorKind::RateLimited, "a"),
        Error::new(ErrorKind::Server, "b"),
    ]);
    assert_eq!(status(mixed), 502);
}

#[test]
fn an_exhausted_route_names_each_attempts_failure() {
    let err = Error::all_targets_failed(vec![
        Error::new(ErrorKind::Network, "connection refused").with_provider("dead"),
        Error::new(ErrorKind::Server, "overloaded").with_provider("openai"),
    ]);
    let (status, body) = error_response(&err);
    assert_eq!(status, 502);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("connection refused"), "{message}");
    assert!(
        message.contains("dead") && message.contains("openai"),
        "{message}"
    );
}
