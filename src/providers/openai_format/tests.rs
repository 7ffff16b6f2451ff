//! The exact JSON each flavor produces for every message, part, tool, choice and format; error
//! bodies; and providers built from (injected) environment variables.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Flavor;
use super::request::encode;
use super::response::{decode, error_detail};
use crate::providers::{DeepSeek, OpenAi, OpenAiCompatible, Preset};
use crate::types::{
    ChatRequest, ContentPart, Message, Reasoning, ReasoningEffort, ResponseFormat, Role, Tool,
    ToolCall, ToolChoice,
};
use crate::{ErrorKind, FinishReason};

const ALL: [Flavor; 3] = [Flavor::OpenAi, Flavor::DeepSeek, Flavor::Compat];

fn body(req: &ChatRequest, flavor: Flavor, stream: bool) -> Value {
    serde_json::from_slice(&encode(req, flavor, stream).unwrap()).unwrap()
}

fn messages(req: &ChatRequest, flavor: Flavor) -> Value {
    body(req, flavor, false)["messages"].clone()
}

fn weather() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    )
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[test]
fn a_minimal_body_is_model_and_messages_only() {
    let req = ChatRequest::new("m").user("hi");
    for flavor in ALL {
        assert_eq!(
            body(&req, flavor, false),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            "{flavor:?}"
        );
        // Streams always ask for usage.
        assert_eq!(
            body(&req, flavor, true),
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true}
            }),
            "{flavor:?}"
        );
    }
}

#[test]
fn system_and_developer_roles() {
    let req = ChatRequest::new("m").system("S").developer("D").user("U");
    assert_eq!(
        messages(&req, Flavor::OpenAi),
        json!([
            {"role": "system", "content": "S"},
            {"role": "developer", "content": "D"},
            {"role": "user", "content": "U"}
        ])
    );
    for flavor in [Flavor::DeepSeek, Flavor::Compat] {
        assert_eq!(
            messages(&req, flavor),
            json!([
                {"role": "system", "content": "S"},
                {"role": "system", "content": "D"},
                {"role": "user", "content": "U"}
            ]),
            "{flavor:?}"
        );
    }
}

#[test]
fn several_text_parts_of_a_text_only_role_are_joined() {
    let m = Message::system("You are ").with_part(ContentPart::text("terse."));
    let req = ChatRequest::new("m").message(m).user("hi");
    assert_eq!(
        messages(&req, Flavor::OpenAi)[0],
        json!({"role": "system", "content": "You are terse."})
    );
}

#[test]
fn user_parts_text_images_and_audio() {
    let req = ChatRequest::new("gpt-4o-audio-preview").user_parts([
        ContentPart::text("Describe both and transcribe:"),
        ContentPart::Image {
            source: crate::types::ImageSource::Url("https://example.com/a.jpg".into()),
            detail: Some("low".into()),
        },
        ContentPart::image_url("data:image/webp;base64,UklGRg=="),
        ContentPart::image_base64("image/png", "iVBORw0KGgo="),
        ContentPart::audio("UklGRiQAAABXQVZF", "wav"),
    ]);
    for flavor in ALL {
        assert_eq!(
            messages(&req, flavor),
            json!([{"role": "user", "content": [
                {"type": "text", "text": "Describe both and transcribe:"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
            ]}]),
            "{flavor:?}"
        );
    }
    // One text part alone is sent as a plain string; several as parts.
    let req = ChatRequest::new("m").user_parts([ContentPart::text("a"), ContentPart::text("b")]);
    assert_eq!(
        messages(&req, Flavor::OpenAi)[0]["content"],
        json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    );
}

#[test]
fn assistant_tool_calls_and_tool_results() {
    let call = ToolCall::new("call_1", "get_weather", r#"{"city":"Paris"}"#);
    let no_args = ToolCall::new("call_2", "now", "");
    let req = ChatRequest::new("m")
        .user("Weather?")
        .message(
            Message::new(Role::Assistant)
                .with_tool_call(call)
                .with_tool_call(no_args),
        )
        .tool_result("call_1", "18C")
        .message(Message::tool_result("call_2", "12:00").with_error(true))
        .message(
            Message::assistant("Checking the time too.")
                .with_tool_call(ToolCall::new("call_3", "now", "{}")),
        )
        .assistant("It is 18C.");
    for flavor in ALL {
        assert_eq!(
            messages(&req, flavor),
            json!([
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                ]},
                {"role": "tool", "content": "18C", "tool_call_id": "call_1"},
                {"role": "tool", "content": "12:00", "tool_call_id": "call_2"},
                {"role": "assistant", "content": "Checking the time too.", "tool_calls": [
                    {"id": "call_3", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                ]},
                {"role": "assistant", "content": "It is 18C."}
            ]),
            "{flavor:?}"
        );
    }
}

#[test]
fn reasoning_goes_back_only_to_deepseek_and_only_with_tool_calls() {
    let with_calls = Message::new(Role::Assistant)
        .with_tool_call(ToolCall::new("c", "f", "{}"))
        .with_reasoning("thinking…", None);
    let without_calls = Message::assistant("done").with_reasoning("more thinking", None);
    let req = ChatRequest::new("deepseek-reasoner")
        .user("q")
        .message(with_calls)
        .tool_result("c", "r")
        .message(without_calls);
    let ds = messages(&req, Flavor::DeepSeek);
    assert_eq!(
        ds[1],
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            "reasoning_content": "thinking…"
        })
    );
    assert_eq!(ds[3], json!({"role": "assistant", "content": "done"}));
    for flavor in [Flavor::OpenAi, Flavor::Compat] {
        let m = messages(&req, flavor);
        assert!(m[1].get("reasoning_content").is_none(), "{flavor:?}");
        assert!(m[3].get("reasoning_content").is_none(), "{flavor:?}");
    }
}

#[test]
fn a_participant_name_is_sent() {
    let mut m = Message::user("hi");
    m.name = Some("alice".into());
    let req = ChatRequest::new("m").message(m);
    assert_eq!(
        messages(&req, Flavor::OpenAi)[0],
        json!({"role": "user", "content": "hi", "name": "alice"})
    );
}

#[test]
fn requests_that_cannot_be_expressed_are_invalid() {
    let cases = [
        ChatRequest::new("").user("no model"),
        ChatRequest::new("m").message(Message::new(Role::Tool).with_part(ContentPart::text("x"))),
        ChatRequest::new("m").message(
            Message::system("look").with_part(ContentPart::image_url("https://e.com/a.png")),
        ),
        ChatRequest::new("m")
            .message(Message::assistant("hi").with_part(ContentPart::audio("AAAA", "mp3"))),
    ];
    for req in cases {
        let err = encode(&req, Flavor::OpenAi, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{req:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tools, choices, formats and sampling
// ---------------------------------------------------------------------------------------------

#[test]
fn tools_and_parallel_tool_calls() {
    let mut bare = Tool::function("ping", "", json!({"type": "object"}));
    bare.description = None;
    let req = ChatRequest::new("m")
        .user("hi")
        .tool(weather().strict(true))
        .tool(bare)
        .parallel_tool_calls(false);
    let b = body(&req, Flavor::OpenAi, false);
    assert_eq!(
        b["tools"],
        json!([
            {"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": true
            }},
            {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
        ])
    );
    assert_eq!(b["parallel_tool_calls"], false);
    assert!(b.get("tool_choice").is_none());
    // Without tools, OpenAI refuses `parallel_tool_calls`: it is left out.
    let req = ChatRequest::new("m").user("hi").parallel_tool_calls(true);
    assert!(
        body(&req, Flavor::OpenAi, false)
            .get("parallel_tool_calls")
            .is_none()
    );
}

#[test]
fn tool_choice_in_all_four_forms() {
    let cases = [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Function("get_weather".into()),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ];
    for (choice, expected) in cases {
        let req = ChatRequest::new("m")
            .user("hi")
            .tool(weather())
            .tool_choice(choice);
        for flavor in ALL {
            assert_eq!(
                body(&req, flavor, false)["tool_choice"],
                expected,
                "{flavor:?}"
            );
        }
    }
}

#[test]
fn response_formats() {
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let cases = [
        (
            ResponseFormat::JsonSchema {
                name: "count".into(),
                schema: schema.clone(),
                strict: true,
            },
            json!({"type": "json_schema", "json_schema": {"name": "count", "schema": schema, "strict": true}}),
        ),
        (
            ResponseFormat::JsonSchema {
                name: "loose".into(),
                schema: json!({}),
                strict: false,
            },
            json!({"type": "json_schema", "json_schema": {"name": "loose", "schema": {}, "strict": false}}),
        ),
        (ResponseFormat::JsonObject, json!({"type": "json_object"})),
        (ResponseFormat::Text, json!({"type": "text"})),
    ];
    for (format, expected) in cases {
        let req = ChatRequest::new("m").user("hi").response_format(format);
        assert_eq!(
            body(&req, Flavor::OpenAi, false)["response_format"],
            expected
        );
    }
}

#[test]
fn max_tokens_by_flavor() {
    let req = ChatRequest::new("m").user("hi").max_tokens(256);
    let openai = body(&req, Flavor::OpenAi, false);
    assert_eq!(openai["max_completion_tokens"], 256);
    assert!(openai.get("max_tokens").is_none());
    for flavor in [Flavor::DeepSeek, Flavor::Compat] {
        let b = body(&req, flavor, false);
        assert_eq!(b["max_tokens"], 256, "{flavor:?}");
        assert!(b.get("max_completion_tokens").is_none(), "{flavor:?}");
    }
}

#[test]
fn sampling_options_keep_their_decimal_value() {
    let req = ChatRequest::new("m")
        .user("hi")
        .temperature(0.7)
        .top_p(0.9)
        .stop("END")
        .stop("STOP")
        .seed(42)
        .reasoning_effort(ReasoningEffort::Low)
        .metadata("team", "search");
    let expected = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["END", "STOP"],
        "seed": 42,
        "reasoning_effort": "low"
    });
    assert_eq!(body(&req, Flavor::OpenAi, false), expected);
    // The exact text, not just an equal number: `0.7`, never `0.699999988079071`.
    for with_extra in [false, true] {
        let req = if with_extra {
            req.clone().extra("user", json!("u-1"))
        } else {
            req.clone()
        };
        let text = String::from_utf8(encode(&req, Flavor::OpenAi, false).unwrap()).unwrap();
        assert!(text.contains("\"temperature\":0.7,"), "{text}");
        assert!(text.contains("\"top_p\":0.9,"), "{text}");
    }
    // A budget has no OpenAI-format equivalent and is left out.
    let mut req = ChatRequest::new("m").user("hi");
    req.reasoning = Some(Reasoning::Budget(2048));
    assert!(
        body(&req, Flavor::OpenAi, false)
            .get("reasoning_effort")
            .is_none()
    );
}

#[test]
fn extra_fields_are_merged_and_override_ours() {
    let req = ChatRequest::new("m")
        .user("hi")
        .temperature(0.5)
        .extra("temperature", json!(1))
        .extra("logit_bias", json!({"50256": -100}))
        .extra("service_tier", json!("flex"));
    assert_eq!(
        body(&req, Flavor::OpenAi, true),
        json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 1,
            "logit_bias": {"50256": -100},
            "service_tier": "flex"
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Bodies that are not a plain answer
// ---------------------------------------------------------------------------------------------

#[test]
fn error_bodies_of_every_shape() {
    let d = error_detail(
        429,
        br#"{"error":{"message":"m","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    );
    assert!(d.recognized);
    assert_eq!(d.kind, Some(ErrorKind::QuotaExceeded));
    assert_eq!(d.code.as_deref(), Some("insufficient_quota"));

    // `type` speaks when `code` is null; `server_error` never overrides the status.
    let d = error_detail(
        401,
        br#"{"error":{"message":"m","type":"authentication_error","code":null}}"#,
    );
    assert_eq!(
        (d.kind, d.code.as_deref()),
        (Some(ErrorKind::Auth), Some("authentication_error"))
    );
    let d = error_detail(
        503,
        br#"{"error":{"message":"busy","type":"server_error","code":null}}"#,
    );
    assert_eq!(d.kind, None);
    assert_eq!(d.message.as_deref(), Some("busy"));

    // OpenRouter: a numeric code is an HTTP status.
    let d = error_detail(
        200,
        br#"{"error":{"message":"Provider returned error","code":503}}"#,
    );
    assert_eq!(
        (d.kind, d.code.as_deref()),
        (Some(ErrorKind::Overloaded), Some("503"))
    );
    let d = error_detail(200, br#"{"error":{"message":"x","code":1001}}"#);
    assert_eq!(d.kind, None);

    // `{"error": "text"}` (Ollama), `{"object":"error"}` (vLLM, Mistral), `{"detail"}` (FastAPI).
    let d = error_detail(500, br#"{"error":"model 'x' not found"}"#);
    assert_eq!(d.message.as_deref(), Some("model 'x' not found"));
    let d = error_detail(
        400,
        br#"{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}"#,
    );
    assert_eq!(
        (
            d.recognized,
            d.message.as_deref(),
            d.code.as_deref(),
            d.kind
        ),
        (
            true,
            Some("bad"),
            Some("400"),
            Some(ErrorKind::InvalidRequest)
        )
    );
    let d = error_detail(404, br#"{"detail":"Not Found"}"#);
    assert_eq!(
        (d.recognized, d.message.as_deref()),
        (true, Some("Not Found"))
    );

    // Not JSON, or JSON that is no error: nothing recognized.
    for raw in [
        &b"<html>502 Bad Gateway</html>"[..],
        br#"{"id":"x","choices":[]}"#,
        b"",
    ] {
        assert!(!error_detail(502, raw).recognized);
    }
}

#[test]
fn decode_tolerates_missing_and_null_fields() {
    let r = decode(
        br#"{"choices":[{"message":{"content":null,"tool_calls":null},"finish_reason":null}],"usage":null}"#,
        "p",
        false,
    )
    .unwrap();
    assert_eq!(r.id, "");
    assert_eq!(r.model, "");
    assert_eq!(r.text(), "");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.usage, None);
    // An unknown finish reason is kept by name.
    let r = decode(
        br#"{"choices":[{"message":{"content":"x"},"finish_reason":"eos"}]}"#,
        "p",
        false,
    )
    .unwrap();
    assert_eq!(r.finish_reason, FinishReason::Other("eos".into()));
    // No choice at all is a decode error.
    let err = decode(br#"{"id":"x","choices":[]}"#, "p", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
}

// ---------------------------------------------------------------------------------------------
// Providers from environment variables (injected: setting real ones is `unsafe` and racy)
// ---------------------------------------------------------------------------------------------

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn openai_from_env() {
    let err = OpenAi::from_vars(env(&[])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("OPENAI_API_KEY"),
        "{}",
        err.message()
    );
    let err = OpenAi::from_vars(env(&[("OPENAI_API_KEY", "  ")])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    let p = OpenAi::from_vars(env(&[
        ("OPENAI_API_KEY", "sk-env-1"),
        ("OPENAI_BASE_URL", ""),
    ]))
    .unwrap();
    let shown = format!("{p:?}");
    assert!(
        shown.contains("base_url: \"https://api.openai.com/v1\""),
        "{shown}"
    );
    assert!(!shown.contains("sk-env-1"), "{shown}");

    let p = OpenAi::from_vars(env(&[
        ("OPENAI_API_KEY", "sk-env-1"),
        ("OPENAI_BASE_URL", " http://127.0.0.1:4010/v1/ "),
        ("OPENAI_ORG_ID", "org-1"),
    ]))
    .unwrap();
    assert!(format!("{p:?}").contains("base_url: \"http://127.0.0.1:4010/v1\""));

    let err = OpenAi::from_vars(env(&[
        ("OPENAI_API_KEY", "k"),
        ("OPENAI_BASE_URL", "localhost:4010"),
    ]))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = OpenAi::from_vars(env(&[
        ("OPENAI_API_KEY", "k"),
        ("OPENAI_ORG_ID", "bad\norg"),
    ]))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn deepseek_from_env() {
    let err = DeepSeek::from_vars(env(&[("OPENAI_API_KEY", "sk-other")])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().contains("DEEPSEEK_API_KEY"),
        "{}",
        err.message()
    );
    let p = DeepSeek::from_vars(env(&[("DEEPSEEK_API_KEY", "sk-ds")])).unwrap();
    assert!(format!("{p:?}").contains("base_url: \"https://api.deepseek.com\""));
    let p = DeepSeek::from_vars(env(&[
        ("DEEPSEEK_API_KEY", "sk-ds"),
        ("DEEPSEEK_BASE_URL", "http://127.0.0.1:4011"),
    ]))
    .unwrap();
    assert!(format!("{p:?}").contains("base_url: \"http://127.0.0.1:4011\""));
}

#[test]
fn compat_presets_from_env() {
    let err = OpenAiCompatible::from_vars(Preset::Groq, env(&[])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("GROQ_API_KEY"), "{}", err.message());

    let p = OpenAiCompatible::from_vars(
        Preset::OpenRouter,
        env(&[
            ("OPENROUTER_API_KEY", "sk-or-1"),
            ("OPENROUTER_BASE_URL", "http://127.0.0.1:4012/api/v1"),
        ]),
    )
    .unwrap();
    let shown = format!("{p:?}");
    assert!(
        shown.contains("base_url: \"http://127.0.0.1:4012/api/v1\""),
        "{shown}"
    );
    assert!(!shown.contains("sk-or-1"), "{shown}");

    // Local servers need no key.
    let p = OpenAiCompatible::from_vars(Preset::Ollama, env(&[])).unwrap();
    assert!(format!("{p:?}").contains("base_url: \"http://localhost:11434/v1\""));
    let p = OpenAiCompatible::from_vars(
        Preset::Vllm,
        env(&[("VLLM_BASE_URL", "http://gpu-box:8000/v1")]),
    )
    .unwrap();
    assert!(format!("{p:?}").contains("base_url: \"http://gpu-box:8000/v1\""));
    let err = OpenAiCompatible::from_vars(Preset::Vllm, env(&[("VLLM_BASE_URL", "gpu-box:8000")]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

// ---------------------------------------------------------------------------------------------
// Stream chunks
// ---------------------------------------------------------------------------------------------

/// Feeds `data` payloads to a fresh chunk decoder: the deltas, then the first error.
fn decode_chunks(
    payloads: &[&str],
) -> (
    Vec<crate::Delta>,
    Option<crate::Error>,
    crate::types::stream::StreamMeta,
) {
    use crate::transport::{SseEvent, StreamDecoder, StreamOut};
    let mut decoder = super::stream::OpenAiStream::default();
    let mut deltas = std::collections::VecDeque::new();
    let mut meta = crate::types::stream::StreamMeta::default();
    for data in payloads {
        let mut out = StreamOut {
            deltas: &mut deltas,
            meta: &mut meta,
        };
        if let Err(err) = decoder.on_event(SseEvent { event: "", data }, &mut out) {
            return (deltas.into(), Some(err), meta);
        }
    }
    assert!(decoder.is_done(), "the payloads end with [DONE]");
    (deltas.into(), None, meta)
}

#[test]
fn mid_stream_error_events_get_the_kind_their_code_says() {
    let cases = [
        (
            r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            ErrorKind::RateLimited,
        ),
        (
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            ErrorKind::ContextLength,
        ),
        (
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            ErrorKind::QuotaExceeded,
        ),
        (
            r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
            ErrorKind::Server,
        ),
        (r#"{"error":"upstream timed out"}"#, ErrorKind::Server),
        (
            r#"{"error":{"code":429,"message":"Provider returned error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#,
            ErrorKind::RateLimited,
        ),
    ];
    let first = r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    for (error, kind) in cases {
        let (deltas, err, meta) = decode_chunks(&[first, error, "[DONE]"]);
        assert_eq!(deltas, vec![crate::Delta::Text("Hi".into())]);
        let err = err.expect("an error");
        assert_eq!(err.kind(), kind, "{error}");
        assert_eq!(meta.id.as_deref(), Some("c1"));
    }
}

#[test]
fn stream_meta_learns_id_model_and_cost() {
    let (deltas, err, meta) = decode_chunks(&[
        r#"{"id":"","model":"","choices":[]}"#,
        r#"{"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]}"#,
        r#"{"id":"gen-1","model":"openai/gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"cost":0.25}}"#,
        "[DONE]",
    ]);
    assert!(err.is_none());
    assert_eq!(deltas.len(), 3);
    assert_eq!(
        meta.id.as_deref(),
        Some("gen-1"),
        "an empty id is not an id"
    );
    assert_eq!(meta.model.as_deref(), Some("openai/gpt-4o"));
    assert_eq!(meta.cost, Some(0.25));
}
