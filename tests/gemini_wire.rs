//! Gemini wire tests: exact transcripts replayed in 1- to 7-byte pieces, with several seeds so
//! that the pieces fall differently each time.
#![cfg(feature = "gemini")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use modelgate::providers::Gemini;
use modelgate::{
    ChatProvider, ChatRequest, ChatResponse, ContentPart, Delta, Error, ErrorKind, FinishReason,
    Message, Tool, ToolChoice, Usage,
};
use serde_json::json;
use support::{Canned, MockServer, Received};

const KEY: &str = "AIzaSyTEST-key-0123456789abcdef";
const SEEDS: [u64; 3] = [1, 0x5eed, 0xdead_beef];

fn gemini(server: &MockServer) -> Gemini {
    Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .build()
        .unwrap()
}

/// A provider that fetches image URLs, also from 127.0.0.1 (where the mock servers are).
fn fetching(server: &MockServer) -> modelgate::providers::GeminiBuilder {
    Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .fetch_image_urls(true)
        .allow_private_image_hosts(true)
}

/// Every delta of a stream, and the error that ended it, if any.
async fn drain(provider: &Gemini, req: &ChatRequest) -> (Vec<Delta>, Option<Error>) {
    support::drain(provider.chat_stream(req).await.unwrap()).await
}

/// The request went to the right place, with the key in the header only.
fn assert_sent_to(sent: &Received, path: &str) {
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, path);
    assert!(!sent.path.contains("key="), "{}", sent.path);
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("content-type"), Some("application/json"));
}

fn usage(input: u64, output: u64, cached: u64, reasoning: u64) -> Usage {
    Usage::new(input, output)
        .with_cached_input_tokens(cached)
        .with_reasoning_tokens(reasoning)
}

#[tokio::test]
async fn non_streamed_text_with_usage() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("gemini/text.http")], seed).await;
        let req = ChatRequest::new("gemini-2.5-flash")
            .system("Answer in French.")
            .user("Say hello")
            .user("and ask how I am")
            .assistant("Bonjour !")
            .developer("Use guillemets.")
            .user("Again, with an emoji")
            .temperature(0.7)
            .top_p(0.95)
            .max_tokens(200)
            .stop("###")
            .seed(7);
        let r = gemini(&server).chat(&req).await.unwrap();
        // Priced from the built-in table: 8 × $0.30 + 6 cached × $0.03 + 38 × $2.50.
        assert!((r.cost.unwrap() - 0.00009758).abs() < 1e-12);
        assert_eq!(r, {
            let mut expected = ChatResponse::new(
                "gemini",
                "gemini-2.5-flash",
                Message::assistant(
                    "Bonjour ! « Ça va ? » — 🌍\nLine two with \"quotes\" and a tab\t.",
                ),
            );
            expected.id = "Hk2BaK7yMcGBm9IPqLOB4AQ".into();
            // Output counts the thoughts (17 + 21); the cached tokens are part of the input.
            expected.usage = Some(usage(14, 38, 6, 21));
            expected.cost = r.cost;
            expected
        });

        let sent = server.last();
        assert_sent_to(&sent, "/v1beta/models/gemini-2.5-flash:generateContent");
        let body = &sent.body;
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Answer in French."}, {"text": "Use guillemets."}]})
        );
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Say hello"}, {"text": "and ask how I am"}]},
                {"role": "model", "parts": [{"text": "Bonjour !"}]},
                {"role": "user", "parts": [{"text": "Again, with an emoji"}]}
            ])
        );
        let config = &body["generationConfig"];
        assert_eq!(
            config["temperature"].as_f64().map(|t| (t * 100.0).round()),
            Some(70.0)
        );
        assert_eq!(
            config["topP"].as_f64().map(|t| (t * 100.0).round()),
            Some(95.0)
        );
        assert_eq!(config["maxOutputTokens"], 200);
        assert_eq!(config["stopSequences"], json!(["###"]));
        assert_eq!(config["seed"], 7);
        assert!(config.get("thinkingConfig").is_none());
        assert!(config.get("responseMimeType").is_none());
        assert!(body.get("tools").is_none());
        assert!(body.get("toolConfig").is_none());
        assert!(body.get("model").is_none());
    }
}

#[tokio::test]
async fn streamed_text_with_crlf_framing() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("gemini/stream_text.http")], seed)
                .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("models/gemini-2.0-flash").user("Say hello in French");
        let mut stream = provider.chat_stream(&req).await.unwrap();
        assert_eq!(stream.provider(), "gemini");
        let mut deltas = Vec::new();
        while let Some(d) = stream.next().await {
            deltas.push(d.unwrap());
        }
        assert_eq!(stream.model(), "gemini-2.0-flash");
        assert_eq!(stream.id(), Some("o02BaOiIJ8Ww1MkP7p7ZyQ4"));
        assert_eq!(
            deltas,
            vec![
                Delta::Text("Bonjour".into()),
                Delta::Usage(usage(9, 0, 0, 0)),
                Delta::Text(" le monde — ça va? \"ok\"\n".into()),
                Delta::Text("Fin.".into()),
                Delta::Usage(usage(9, 12, 0, 0)),
                Delta::Finish(FinishReason::Stop),
            ]
        );
        let sent = server.last();
        assert_sent_to(
            &sent,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        );
        assert_eq!(
            sent.body["contents"],
            json!([{"role": "user", "parts": [{"text": "Say hello in French"}]}])
        );
    }
}

#[tokio::test]
async fn a_stream_cut_before_the_finish_reason_is_truncated() {
    let full = String::from_utf8(Canned::fixture("gemini/stream_text.http").body).unwrap();
    let cut = &full[..full.rfind("data: ").unwrap()];
    for seed in SEEDS {
        let server = MockServer::start_with_seed(vec![Canned::sse(cut)], seed).await;
        let (deltas, err) = drain(
            &gemini(&server),
            &ChatRequest::new("gemini-2.0-flash").user("hi"),
        )
        .await;
        assert_eq!(deltas.len(), 3, "{deltas:?}");
        let err = err.expect("a truncated stream ends with an error");
        assert_eq!(err.kind(), ErrorKind::StreamTruncated);
        assert_eq!(err.provider(), Some("gemini"));
    }
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City name", "examples": ["Paris"]},
                "unit": {"$ref": "#/$defs/unit"}
            },
            "required": ["city"],
            "$defs": {"unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", null],
                               "default": "celsius"}}
        }),
    )
    .strict(true)
}

#[tokio::test]
async fn streamed_function_calls_and_the_tool_loop() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("gemini/stream_function_call.http"),
                Canned::fixture("gemini/text.http"),
            ],
            seed,
        )
        .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("gemini-2.5-flash")
            .user("Weather in Paris and London?")
            .tool(weather_tool())
            .tool_choice(ToolChoice::Auto);
        let (deltas, err) = drain(&provider, &req).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(deltas.len(), 5, "{deltas:?}");
        let ids: Vec<String> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::ToolCall { id: Some(id), .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(
            ids[0].starts_with("call_0_") && ids[1].starts_with("call_1_"),
            "{ids:?}"
        );
        assert_eq!(ids[0]["call_0_".len()..], ids[1]["call_1_".len()..]);
        assert_eq!(
            deltas,
            vec![
                Delta::ToolCall {
                    index: 0,
                    id: Some(ids[0].clone()),
                    name: Some("get_weather".into()),
                    arguments: r#"{"city": "Paris","unit": "celsius"}"#.into(),
                },
                Delta::ToolCallSignature {
                    index: 0,
                    signature: FC_SIG.into(),
                },
                Delta::ToolCall {
                    index: 1,
                    id: Some(ids[1].clone()),
                    name: Some("get_weather".into()),
                    arguments: r#"{"city": "London","unit": "celsius"}"#.into(),
                },
                Delta::Usage(usage(71, 101, 0, 65)),
                Delta::Finish(FinishReason::ToolCalls),
            ]
        );
        let sent = server.received()[0].clone();
        assert_sent_to(
            &sent,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        );
        assert_eq!(
            sent.body["tools"],
            json!([{"functionDeclarations": [{
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "nullable": true}
                    },
                    "required": ["city"]
                }
            }]}])
        );
        assert_eq!(
            sent.body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "AUTO"}})
        );

        // Fold the deltas as a stream would, answer both calls, and send the next turn.
        let answer = modelgate::ChatStream::new(
            "gemini",
            "gemini-2.5-flash",
            futures::stream::iter(deltas.into_iter().map(Ok)),
        )
        .into_response()
        .await
        .unwrap();
        assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
        let calls = answer.tool_calls().to_vec();
        assert_eq!(calls[0].signature.as_deref(), Some(FC_SIG));
        assert_eq!(calls[1].signature, None);
        let next = req
            .clone()
            .message(answer.message.clone())
            .tool_result(calls[1].id.clone(), r#"{"temp_c": 14, "sky": "rain"}"#)
            .tool_result(calls[0].id.clone(), "21");
        provider.chat(&next).await.unwrap();
        let sent = server.last();
        assert_sent_to(&sent, "/v1beta/models/gemini-2.5-flash:generateContent");
        assert_eq!(
            sent.body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}},
                     "thoughtSignature": FC_SIG},
                    {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 14, "sky": "rain"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"result": 21}}}
                ]}
            ])
        );
    }
}

const FC_SIG: &str = "CiQBVKhc7m3S7cqQbfQh0OChWwAXJ1r0PYm6PJp3I5JzvQ9PVmsKXwFUqFzuq0yNHhFjk0m5V8pIqCbUBOnVvAmR4Yv3h/8YjvQ0pKj1Tw==";
const TEXT_SIG: &str = "CpIFAVSoXO5d0ZI2rW8l3oJ7yQkPk0q6cQbXcXcb5lT4kCwG1cfgN4s0CqQeO3Y0nP2Vj9k1mT2xZ5bq7H8sA4r0tL3wYt8B6PZ5ZfWQYw==";

#[tokio::test]
async fn thinking_with_a_thought_signature() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("gemini/thinking.http"),
                Canned::fixture("gemini/text.http"),
            ],
            seed,
        )
        .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("gemini-2.5-pro")
            .user("What is 6 × 7?")
            .thinking_budget(1024);
        let r = provider.chat(&req).await.unwrap();
        assert_eq!(r.id, "Yk-BaPKXHaKcm9IPgZ7G-Ak");
        assert_eq!(r.model, "gemini-2.5-pro");
        assert_eq!(r.text(), "6 × 7 = **42**.");
        let thoughts =
            "**Working out the product**\n\nSix times seven is forty-two; nothing to convert.\n";
        assert_eq!(r.reasoning.as_deref(), Some(thoughts));
        assert_eq!(r.message.reasoning.as_deref(), Some(thoughts));
        assert_eq!(r.message.reasoning_signature.as_deref(), Some(TEXT_SIG));
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.usage, Some(usage(11, 320, 0, 312)));
        let sent = server.received()[0].clone();
        assert_sent_to(&sent, "/v1beta/models/gemini-2.5-pro:generateContent");
        assert_eq!(
            sent.body["generationConfig"],
            json!({"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})
        );

        // The signature goes back on the text part; the thoughts do not go back.
        let next = req.clone().message(r.message.clone()).user("And 6 × 8?");
        provider.chat(&next).await.unwrap();
        assert_eq!(
            server.last().body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "What is 6 × 7?"}]},
                {"role": "model", "parts": [{"text": "6 × 7 = **42**.", "thoughtSignature": TEXT_SIG}]},
                {"role": "user", "parts": [{"text": "And 6 × 8?"}]}
            ])
        );
    }
}

#[tokio::test]
async fn streamed_thinking_folds_into_reasoning_and_signature() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("gemini/stream_thinking.http")], seed)
                .await;
        let req = ChatRequest::new("gemini-2.5-flash")
            .user("Weather in Paris, in Celsius?")
            .reasoning_effort(modelgate::types::ReasoningEffort::High);
        let (deltas, err) = drain(&gemini(&server), &req).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("**Considering the units**\n\nThe user asked in Celsius.".into()),
                Delta::Usage(usage(20, 64, 0, 64)),
                Delta::Text("It is 21 °C".into()),
                Delta::Usage(usage(20, 69, 0, 64)),
                Delta::Text(" in Paris.".into()),
                Delta::Usage(usage(20, 73, 0, 64)),
                Delta::ReasoningSignature(TEXT_SIG.into()),
                Delta::Finish(FinishReason::Stop),
            ]
        );
        assert_eq!(
            server.last().body["generationConfig"],
            json!({"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}})
        );
        let folded = modelgate::ChatStream::new(
            "gemini",
            "gemini-2.5-flash",
            futures::stream::iter(deltas.into_iter().map(Ok)),
        )
        .into_response()
        .await
        .unwrap();
        assert_eq!(folded.text(), "It is 21 °C in Paris.");
        assert_eq!(
            folded.message.reasoning_signature.as_deref(),
            Some(TEXT_SIG)
        );
        assert_eq!(folded.usage.unwrap().reasoning_tokens, 64);
    }
}

#[tokio::test]
async fn a_bare_error_object_mid_stream_is_an_error_item() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("gemini/stream_error_mid.http")],
            seed,
        )
        .await;
        let (deltas, err) = drain(
            &gemini(&server),
            &ChatRequest::new("gemini-2.5-flash").user("Tell me a story"),
        )
        .await;
        assert_eq!(
            deltas,
            vec![
                Delta::Text("The first part".into()),
                Delta::Usage(usage(9, 0, 0, 0)),
                Delta::Text(" of a long".into()),
            ]
        );
        let err = err.expect("the error object ends the stream");
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.provider(), Some("gemini"));
        assert_eq!(err.code(), Some("INTERNAL"));
        assert!(err.message().starts_with("An internal error has occurred."));
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn an_array_wrapped_error_in_the_stream_keeps_its_kind() {
    let body = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}],\"role\": \"model\"}}]}\r\n\r\n",
        "[{\r\n  \"error\": {\r\n    \"code\": 503,\r\n    \"message\": \"The model is overloaded. Please try again later.\",\r\n",
        "    \"status\": \"UNAVAILABLE\"\r\n  }\r\n}\r\n]\r\n",
    );
    let with_data = "data: {\"error\": {\"code\": 429, \"message\": \"Resource has been exhausted (e.g. check quota).\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::sse(body), Canned::sse(with_data)], seed)
                .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("gemini-2.5-flash").user("hi");
        let (deltas, err) = drain(&provider, &req).await;
        assert_eq!(deltas, vec![Delta::Text("Hi".into())]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(
            err.message(),
            "The model is overloaded. Please try again later."
        );

        let (deltas, err) = drain(&provider, &req).await;
        assert!(deltas.is_empty());
        assert_eq!(err.unwrap().kind(), ErrorKind::RateLimited);
    }
}

#[tokio::test]
async fn rate_limit_429_takes_its_retry_hint_from_the_body() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("gemini/error_429.http"),
                Canned::fixture("gemini/error_429.http"),
            ],
            seed,
        )
        .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("gemini-2.5-flash").user("hi");
        let err = provider.chat(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(37)));
        assert_eq!(err.code(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(err.provider(), Some("gemini"));
        assert!(err.message().starts_with("You exceeded your current quota"));
        assert!(err.body().unwrap().contains("google.rpc.RetryInfo"));
        assert!(err.is_retryable());
        assert!(err.should_fallback());

        let err = provider.chat_stream(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(37)));
    }
}

#[tokio::test]
async fn overloaded_503() {
    for seed in SEEDS {
        let server =
            MockServer::start_with_seed(vec![Canned::fixture("gemini/error_503.http")], seed).await;
        let err = gemini(&server)
            .chat_stream(&ChatRequest::new("gemini-2.5-pro").user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.code(), Some("UNAVAILABLE"));
        assert_eq!(
            err.message(),
            "The model is overloaded. Please try again later."
        );
        assert_eq!(err.retry_after(), None);
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn invalid_api_key_is_auth() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("gemini/error_400_api_key.http")],
            seed,
        )
        .await;
        let err = gemini(&server)
            .chat(&ChatRequest::new("gemini-2.5-flash").user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.code(), Some("API_KEY_INVALID"));
        assert_eq!(
            err.message(),
            "API key not valid. Please pass a valid API key."
        );
        assert!(!err.is_retryable());
        assert!(!err.should_fallback());
        assert!(!format!("{err} {err:?}").contains(KEY));
    }
}

#[tokio::test]
async fn a_blocked_prompt_is_a_content_filter_error() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("gemini/blocked_prompt.http"),
                Canned::fixture("gemini/stream_blocked_prompt.http"),
            ],
            seed,
        )
        .await;
        let provider = gemini(&server);
        let req = ChatRequest::new("gemini-2.5-flash").user("something unspeakable");
        let err = provider.chat(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ContentFilter);
        assert_eq!(err.code(), Some("PROHIBITED_CONTENT"));
        assert_eq!(err.provider(), Some("gemini"));
        assert!(!err.is_retryable());

        let (deltas, err) = drain(&provider, &req).await;
        assert!(deltas.is_empty(), "{deltas:?}");
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::ContentFilter);
        assert_eq!(err.code(), Some("SAFETY"));
    }
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn image(body: &[u8], content_type: Option<&str>, chunked: bool) -> Canned {
    Canned {
        status: 200,
        reason: "OK".into(),
        headers: content_type
            .map(|ct| vec![("content-type".to_owned(), ct.to_owned())])
            .unwrap_or_default(),
        body: body.to_vec(),
        chunked,
        ending: support::Ending::Complete,
    }
}

#[tokio::test]
async fn url_images_are_fetched_and_sent_inline() {
    for (seed, content_type) in
        SEEDS
            .into_iter()
            .zip([Some("image/png"), None, Some("application/octet-stream")])
    {
        let server = MockServer::start_with_seed(
            vec![
                image(PNG, content_type, seed == 1),
                Canned::fixture("gemini/text.http"),
            ],
            seed,
        )
        .await;
        let url = format!("{}/img/cat.png?sig=abc", server.url());
        let req = ChatRequest::new("gemini-2.5-flash").user_parts([
            ContentPart::text("What is this?"),
            ContentPart::image_url(url.clone()),
            ContentPart::image_url(url),
        ]);
        fetching(&server).build().unwrap().chat(&req).await.unwrap();
        let received = server.received();
        assert_eq!(received.len(), 2, "one fetch for two uses of one URL");
        let fetch = &received[0];
        assert_eq!(fetch.method, "GET");
        assert_eq!(fetch.path, "/img/cat.png?sig=abc");
        assert_eq!(
            fetch.header("x-goog-api-key"),
            None,
            "the key never leaves for a third party"
        );
        let inline = json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"}});
        assert_sent_to(
            &received[1],
            "/v1beta/models/gemini-2.5-flash:generateContent",
        );
        assert_eq!(
            received[1].body["contents"][0]["parts"],
            json!([{"text": "What is this?"}, inline, inline])
        );
    }
}

#[tokio::test]
async fn failed_image_fetches_are_clear_errors() {
    let not_found = Canned {
        status: 404,
        reason: "Not Found".into(),
        headers: vec![
            ("content-type".into(), "text/html".into()),
            ("set-cookie".into(), "session=SECRET-COOKIE".into()),
        ],
        body: b"<h1>Not Found</h1>".to_vec(),
        chunked: false,
        ending: support::Ending::Complete,
    };
    let big = vec![0x89u8; 5000];
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                not_found.clone(),
                image(&big, Some("image/png"), false),
                image(&big, Some("image/png"), true),
            ],
            seed,
        )
        .await;
        let provider = fetching(&server).max_image_bytes(4096).build().unwrap();
        let req = |path: &str| {
            ChatRequest::new("gemini-2.5-flash").user_parts([ContentPart::image_url(format!(
                "{}{path}?token=QUERY-SECRET",
                server.url()
            ))])
        };
        let err = provider.chat(&req("/missing.png")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.provider(), Some("gemini"));
        assert!(err.message().contains("404"), "{}", err.message());
        assert!(err.message().contains("/missing.png"), "{}", err.message());
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("SECRET"), "{shown}");

        // Oversized, announced by content-length and discovered while reading chunks.
        for path in ["/big.png", "/big-chunked.png"] {
            let err = provider.chat_stream(&req(path)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest);
            assert!(err.message().contains("4096"), "{}", err.message());
        }
        // No Gemini call was made.
        assert!(server.received().iter().all(|r| r.method == "GET"));
        assert_eq!(server.received().len(), 3);
    }
}

#[tokio::test]
async fn unreachable_image_hosts_are_the_callers_problem_and_fetching_can_be_off() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = MockServer::start(vec![]).await;
    let req = ChatRequest::new("gemini-2.5-flash")
        .user_parts([ContentPart::image_url(format!("http://{closed}/cat.png"))]);
    let err = fetching(&server)
        .build()
        .unwrap()
        .chat(&req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(
        err.message().contains("cannot connect"),
        "{}",
        err.message()
    );
    assert!(!err.is_retryable());
    assert!(!err.is_provider_health_failure());

    let off = Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .fetch_image_urls(false)
        .build()
        .unwrap();
    let err = off.chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn builder_checks_and_base_url_forms() {
    let server = MockServer::start(vec![Canned::fixture("gemini/text.http")]).await;
    let provider = Gemini::builder()
        .api_key(KEY)
        .base_url(format!("{}/v1beta/", server.url()))
        .build()
        .unwrap();
    assert_eq!(provider.name(), "gemini");
    assert!(!format!("{provider:?}").contains(KEY));
    provider
        .chat(&ChatRequest::new("gemini-2.5-flash").user("hi"))
        .await
        .unwrap();
    assert_eq!(
        server.last().path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );

    let err = Gemini::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Gemini::builder()
        .api_key(KEY)
        .max_image_bytes(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Gemini::builder()
        .api_key(KEY)
        .base_url("ftp://x")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // A model name that would change the URL is refused before anything is sent.
    let err = provider
        .chat(&ChatRequest::new("gemini-2.5-flash:generateContent?key=x").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn image_urls_are_refused_by_default() {
    let server = MockServer::start(vec![image(PNG, Some("image/png"), false)]).await;
    let req = ChatRequest::new("gemini-2.5-flash")
        .user_parts([ContentPart::image_url(format!("{}/cat.png", server.url()))]);
    let err = gemini(&server).chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.message().contains("fetch_image_urls"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("data:"), "{}", err.message());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn loopback_image_hosts_are_refused_unless_allowed() {
    let server = MockServer::start(vec![image(PNG, Some("image/png"), false)]).await;
    let provider = Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .fetch_image_urls(true)
        .build()
        .unwrap();
    let port = server.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/cat.png"),
        format!("http://localhost:{port}/cat.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/cat.png"),
        format!("http://2130706433:{port}/cat.png"),
    ] {
        let req = ChatRequest::new("gemini-2.5-flash").user_parts([ContentPart::image_url(&url)]);
        let err = provider.chat(&req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{url}: {err}");
        assert!(!err.is_provider_health_failure());
        assert!(
            err.message().contains("allow_private_image_hosts"),
            "{}",
            err.message()
        );
    }
    assert!(server.received().is_empty(), "no connection was made");
}

#[tokio::test]
async fn too_many_image_urls_are_refused_before_fetching() {
    let server = MockServer::start(vec![]).await;
    let provider = Gemini::builder()
        .api_key(KEY)
        .base_url(server.url())
        .fetch_image_urls(true)
        .build()
        .unwrap();
    let req = ChatRequest::new("gemini-2.5-flash")
        .user_parts((0..17).map(|i| ContentPart::image_url(format!("{}/{i}.png", server.url()))));
    let err = provider.chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("16"), "{}", err.message());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_routers_retries_share_one_image_fetch() {
    use modelgate::router::{RetryPolicy, Router, Target};
    use std::sync::Arc;
    // One server plays both the image host and Gemini: the image, a 503, then the answer.
    let server = MockServer::start(vec![
        image(PNG, Some("image/png"), false),
        Canned::fixture("gemini/error_503.http"),
        Canned::fixture("gemini/text.http"),
    ])
    .await;
    let provider = Arc::new(fetching(&server).build().unwrap());
    let router = Router::builder()
        .route("vision", [Target::new(provider, "gemini-2.5-flash")])
        .retry(
            RetryPolicy::default()
                .with_max_retries(1)
                .with_base_delay(Duration::ZERO),
        )
        .build()
        .unwrap();
    let url = format!("{}/img/cat.png", server.url());
    let req = ChatRequest::new("vision").user_parts([ContentPart::image_url(url)]);
    router.chat(&req).await.unwrap();
    let received = server.received();
    let fetches = received.iter().filter(|r| r.method == "GET").count();
    let calls = received.iter().filter(|r| r.method == "POST").count();
    assert_eq!(
        (fetches, calls),
        (1, 2),
        "the retry reuses the fetched image"
    );
}

#[tokio::test]
async fn a_json_array_of_chunks_is_a_stream() {
    // `streamGenerateContent` without `alt=sse` (and some proxies) answer with a JSON array.
    let chunk = |text: &str, last: bool| {
        let finish = if last {
            r#","finishReason":"STOP""#
        } else {
            ""
        };
        format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"{text}"}}],"role":"model"}}{finish}}}],"usageMetadata":{{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12}},"modelVersion":"gemini-2.0-flash","responseId":"r1"}}"#
        )
    };
    let body = format!("[{},\n{}]", chunk("Bon", false), chunk("jour", true));
    for seed in SEEDS {
        let server = MockServer::start_with_seed(vec![Canned::json(200, &body)], seed).await;
        let req = ChatRequest::new("gemini-2.0-flash").user("hi");
        let (deltas, err) = drain(&gemini(&server), &req).await;
        assert!(err.is_none(), "{err:?}");
        let text: String = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Bonjour");
        assert!(deltas.contains(&Delta::Finish(FinishReason::Stop)));
    }
    // An array cut before its final chunk is a truncated stream.
    let cut = format!("[{}]", chunk("Bon", false));
    let server = MockServer::start(vec![Canned::json(200, &cut)]).await;
    let req = ChatRequest::new("gemini-2.0-flash").user("hi");
    let (_, err) = drain(&gemini(&server), &req).await;
    assert_eq!(err.unwrap().kind(), ErrorKind::StreamTruncated);
}
