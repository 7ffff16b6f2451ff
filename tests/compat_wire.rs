//! OpenAI-compatible wire tests: the drift real servers show (OpenRouter, Groq, vLLM, Mistral,
//! Ollama, FastAPI proxies), one fixture per quirk, replayed in 1- to 7-byte pieces.
#![cfg(feature = "compat")]

mod support;

use std::time::Duration;

use modelgate::providers::{OpenAiCompatible, Preset};
use modelgate::{
    ChatProvider, ChatRequest, Delta, Error, ErrorKind, FinishReason, Tool, ToolCall, Usage,
};
use serde_json::{Value, json};
use support::{Canned, MockServer, drain, text};

const KEY: &str = "sk-compat-secret-987654";
const SEEDS: [u64; 3] = [0x5eed, 3, 0xc0ffee];

fn openrouter(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::preset(Preset::OpenRouter)
        .api_key(KEY)
        .base_url(format!("{}/api/v1", server.url()))
        .build()
        .unwrap()
}

fn local(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::builder("local-vllm")
        .api_key(KEY)
        .base_url(format!("{}/v1/", server.url()))
        .build()
        .unwrap()
}

async fn stream_of(provider: &OpenAiCompatible, model: &str) -> (Vec<Delta>, Option<Error>) {
    let req = ChatRequest::new(model).user("hi");
    drain(provider.chat_stream(&req).await.unwrap()).await
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

// ---------------------------------------------------------------------------------------------
// What is sent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_minimal_request_carries_no_null_or_unset_keys() {
    let server = MockServer::start(vec![
        Canned::fixture("compat/chat_usage_empty_unknown_fields.http"),
        Canned::fixture("compat/stream_usage_empty_object.http"),
    ])
    .await;
    let provider = local(&server);
    let req = ChatRequest::new("Qwen/Qwen2.5-7B-Instruct").user("hi");
    provider.chat(&req).await.unwrap();
    let sent = server.last();
    assert_eq!(
        sent.path, "/v1/chat/completions",
        "a trailing slash on the base URL is dropped"
    );
    assert_eq!(keys(&sent.body), ["messages", "model"]);
    assert_eq!(keys(&sent.body["messages"][0]), ["content", "role"]);
    assert_eq!(
        sent.body,
        json!({"model": "Qwen/Qwen2.5-7B-Instruct", "messages": [{"role": "user", "content": "hi"}]})
    );

    drain(provider.chat_stream(&req).await.unwrap()).await;
    let sent = server.last();
    assert_eq!(
        keys(&sent.body),
        ["messages", "model", "stream", "stream_options"]
    );
}

#[tokio::test]
async fn developer_is_sent_as_system_and_max_tokens_as_max_tokens() {
    let server = MockServer::start(vec![Canned::fixture(
        "compat/chat_usage_empty_unknown_fields.http",
    )])
    .await;
    let req = ChatRequest::new("Qwen/Qwen2.5-7B-Instruct")
        .developer("Be brief.")
        .user("hi")
        .max_tokens(64)
        .stop("\n\n")
        .top_p(0.9)
        .extra("repetition_penalty", json!(1.05));
    local(&server).chat(&req).await.unwrap();
    assert_eq!(
        server.last().body,
        json!({
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "top_p": 0.9,
            "max_tokens": 64,
            "stop": ["\n\n"],
            "repetition_penalty": 1.05
        })
    );
}

// ---------------------------------------------------------------------------------------------
// OpenRouter
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openrouter_cost_is_kept_on_the_response() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("compat/openrouter_chat_cost.http")],
            seed,
        )
        .await;
        let r = openrouter(&server)
            .chat(&ChatRequest::new("anthropic/claude-sonnet-4.5").user("Say hi in French"))
            .await
            .unwrap();
        assert_eq!(r.id, "gen-1763469011-Rk7pXq2LmN9vT4sW8yZb");
        assert_eq!(r.provider, "openrouter");
        assert_eq!(r.model, "anthropic/claude-sonnet-4.5");
        assert_eq!(r.text(), "Bonjour !");
        assert_eq!(r.reasoning, None);
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.cost, Some(0.000132));
        assert_eq!(r.usage, Some(Usage::new(14, 6)));
        let sent = server.last();
        assert_eq!(sent.path, "/api/v1/chat/completions");
        assert_eq!(
            sent.header("authorization"),
            Some("Bearer sk-compat-secret-987654")
        );
    }
}

#[tokio::test]
async fn openrouter_stream_with_processing_comments_keeps_usage_and_cost() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("compat/openrouter_stream_processing_cost.http"),
                Canned::fixture("compat/openrouter_stream_processing_cost.http"),
            ],
            seed,
        )
        .await;
        let provider = openrouter(&server);
        let usage = Usage::new(11, 3);
        let (deltas, err) = stream_of(&provider, "openai/gpt-4o-mini").await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                text("Salut"),
                text(" !"),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(usage)
            ]
        );
        let r = provider
            .chat_stream(&ChatRequest::new("openai/gpt-4o-mini").user("hi"))
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.provider, "openrouter");
        assert_eq!(r.model, "openai/gpt-4o-mini");
        assert_eq!(r.text(), "Salut !");
        assert_eq!(r.usage, Some(usage));
        assert_eq!(r.cost, Some(0.0000035));
    }
}

#[tokio::test]
async fn openrouter_mid_stream_error_is_an_err_item() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture(
                "compat/openrouter_stream_midstream_error.http",
            )],
            seed,
        )
        .await;
        let (deltas, err) = stream_of(&openrouter(&server), "openai/gpt-4o-mini").await;
        assert_eq!(deltas, vec![text("The first"), text(" part")]);
        let err = err.unwrap();
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.message(), "Provider disconnected unexpectedly");
        assert_eq!(err.code(), Some("server_error"));
        assert_eq!(err.provider(), Some("openrouter"));
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn a_200_whose_body_is_an_error_object_is_an_error() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("compat/openrouter_200_error.http")],
            seed,
        )
        .await;
        let err = openrouter(&server)
            .chat(&ChatRequest::new("meta-llama/llama-3.3-70b-instruct").user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server);
        assert_eq!(err.status(), Some(200));
        assert_eq!(err.provider(), Some("openrouter"));
        assert_eq!(err.message(), "Provider returned error");
        assert_eq!(err.code(), Some("502"));
        assert!(err.body().unwrap().contains("upstream connect error"));
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn a_200_json_error_answering_a_stream_request_is_an_error() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture(
                "compat/openrouter_200_error_stream_request.http",
            )],
            seed,
        )
        .await;
        let err = openrouter(&server)
            .chat_stream(&ChatRequest::new("meta-llama/llama-3.3-70b-instruct:free").user("hi"))
            .await
            .unwrap_err();
        // The error object's numeric code is the HTTP status OpenRouter would have used.
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(200));
        assert_eq!(err.message(), "Provider returned error");
        assert_eq!(err.code(), Some("429"));
        assert!(
            err.body()
                .unwrap()
                .contains("temporarily rate-limited upstream")
        );
        assert!(err.is_retryable());
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerated drift in streams and bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_finish_reason_is_no_finish() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("compat/stream_empty_finish_reason.http")],
            seed,
        )
        .await;
        let (deltas, err) = stream_of(&local(&server), "Qwen/Qwen2.5-7B-Instruct").await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                text("Hi"),
                text(" there"),
                Delta::Finish(FinishReason::Length)
            ]
        );
    }
}

#[tokio::test]
async fn empty_ids_and_names_in_later_tool_call_fragments_are_ignored() {
    for seed in SEEDS {
        let canned = Canned::fixture("compat/stream_tool_call_empty_name.http");
        let server = MockServer::start_with_seed(vec![canned.clone(), canned], seed).await;
        let provider = local(&server);
        let req = ChatRequest::new("meta-llama/Llama-3.3-70B-Instruct")
            .user("Weather in Oslo?")
            .tool(Tool::function(
                "get_weather",
                "Weather",
                json!({"type": "object"}),
            ));
        let (deltas, err) = drain(provider.chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        let frag = |id: Option<&str>, name: Option<&str>, args: &str| Delta::ToolCall {
            index: 0,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        };
        assert_eq!(
            deltas,
            vec![
                frag(Some("chatcmpl-tool-4c5d6e7f8a9b"), Some("get_weather"), ""),
                frag(None, None, "{\"city\": "),
                frag(None, None, "\"Oslo\"}"),
                Delta::Finish(FinishReason::ToolCalls),
            ]
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
            &[ToolCall::new(
                "chatcmpl-tool-4c5d6e7f8a9b",
                "get_weather",
                r#"{"city": "Oslo"}"#
            )]
        );
        assert_eq!(r.usage, None);
    }
}

#[tokio::test]
async fn xai_reasoning_tokens_count_as_output() {
    // xAI's `completion_tokens` leaves reasoning out (its `total_tokens` adds it); ours include
    // it, as OpenAI's do.
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("compat/xai_chat_reasoning.http"),
                Canned::fixture("compat/xai_stream_reasoning.http"),
            ],
            seed,
        )
        .await;
        let xai = OpenAiCompatible::preset(Preset::Xai)
            .api_key(KEY)
            .base_url(format!("{}/v1", server.url()))
            .build()
            .unwrap();
        let req = ChatRequest::new("grok-3-mini").user("101 * 3?");
        let r = xai.chat(&req).await.unwrap();
        assert_eq!(r.reasoning.as_deref(), Some("101 times 3 is 303."));
        let usage = r.usage.unwrap();
        assert_eq!(
            usage,
            Usage::new(32, 103)
                .with_cached_input_tokens(6)
                .with_reasoning_tokens(94)
        );
        assert_eq!(usage.total_tokens(), 135, "xAI's own total_tokens");
        let (deltas, err) = drain(xai.chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("101 times 3".into()),
                text("303."),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(
                    Usage::new(32, 96)
                        .with_cached_input_tokens(6)
                        .with_reasoning_tokens(94)
                ),
            ]
        );
    }
}

fn mistral(server: &MockServer) -> OpenAiCompatible {
    OpenAiCompatible::preset(Preset::Mistral)
        .api_key(KEY)
        .base_url(format!("{}/v1", server.url()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn mistral_content_parts_give_text_and_thinking_as_reasoning() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![
                Canned::fixture("compat/mistral_chat_thinking_parts.http"),
                Canned::fixture("compat/mistral_stream_thinking_parts.http"),
                Canned::fixture("compat/mistral_stream_thinking_parts.http"),
            ],
            seed,
        )
        .await;
        let provider = mistral(&server);
        let req = ChatRequest::new("magistral-medium-latest").user("When do they meet?");
        let r = provider.chat(&req).await.unwrap();
        assert_eq!(r.text(), "They meet after **2 hours**.");
        assert_eq!(r.message.content.len(), 1);
        assert_eq!(
            r.reasoning.as_deref(),
            Some("Combined speed is 150 mph. 300 / 150 = 2 hours.")
        );
        assert_eq!(r.message.reasoning, r.reasoning);
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.usage.unwrap().output_tokens, 102);

        let (deltas, err) = drain(provider.chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                Delta::Reasoning("Combined speed".into()),
                Delta::Reasoning(" is 150 mph.".into()),
                text("They meet after "),
                text("**2 hours**."),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage::new(29, 31)),
            ]
        );
        let folded = provider
            .chat_stream(&req)
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(folded.text(), "They meet after **2 hours**.");
        assert_eq!(
            folded.reasoning.as_deref(),
            Some("Combined speed is 150 mph.")
        );
    }
}

#[tokio::test]
async fn mistral_tool_call_fragments_without_index() {
    // No `index`: a fragment with a new id is the next call; one without an id, or with the
    // last call's id, continues the last call.
    for seed in SEEDS {
        let canned = Canned::fixture("compat/mistral_stream_tool_calls_no_index.http");
        let server = MockServer::start_with_seed(vec![canned.clone(), canned], seed).await;
        let provider = mistral(&server);
        let req = ChatRequest::new("mistral-large-latest")
            .user("Weather in Paris and Oslo?")
            .tool(Tool::function(
                "get_weather",
                "Weather",
                json!({"type": "object"}),
            ));
        let (deltas, err) = drain(provider.chat_stream(&req).await.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
        let frag = |index, id: Option<&str>, name: Option<&str>, args: &str| Delta::ToolCall {
            index,
            id: id.map(Into::into),
            name: name.map(Into::into),
            arguments: args.into(),
        };
        assert_eq!(
            deltas,
            vec![
                frag(
                    0,
                    Some("D681PevKs"),
                    Some("get_weather"),
                    r#"{"city": "Paris"}"#
                ),
                frag(1, Some("Kx3mQ9dLp"), Some("get_weather"), r#"{"city": "#),
                frag(1, None, None, r#""Oslo"}"#),
                frag(1, Some("Kx3mQ9dLp"), None, ""),
                Delta::Finish(FinishReason::ToolCalls),
                Delta::Usage(Usage::new(84, 44)),
            ]
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
                ToolCall::new("D681PevKs", "get_weather", r#"{"city": "Paris"}"#),
                ToolCall::new("Kx3mQ9dLp", "get_weather", r#"{"city": "Oslo"}"#),
            ]
        );
    }
}

#[tokio::test]
async fn an_empty_usage_object_reports_no_usage() {
    for seed in SEEDS {
        let canned = Canned::fixture("compat/stream_usage_empty_object.http");
        let server = MockServer::start_with_seed(vec![canned.clone(), canned], seed).await;
        let provider = local(&server);
        let (deltas, err) = stream_of(&provider, "mistral-small-latest").await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![text("Ciao"), text("!"), Delta::Finish(FinishReason::Stop)]
        );
        let r = provider
            .chat_stream(&ChatRequest::new("mistral-small-latest").user("hi"))
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.text(), "Ciao!");
        assert_eq!(r.usage, None);
        assert_eq!(r.cost, None);
    }
}

#[tokio::test]
async fn unknown_fields_and_empty_usage_in_a_plain_answer() {
    let server = MockServer::start(vec![Canned::fixture(
        "compat/chat_usage_empty_unknown_fields.http",
    )])
    .await;
    let r = local(&server)
        .chat(&ChatRequest::new("Qwen/Qwen2.5-7B-Instruct").user("hi"))
        .await
        .unwrap();
    assert_eq!(r.provider, "local-vllm");
    assert_eq!(r.model, "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(r.text(), "Hello!");
    assert_eq!(r.reasoning, None);
    assert!(r.tool_calls().is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.usage, None);
    assert_eq!(r.cost, None);
}

#[tokio::test]
async fn groq_stream_with_x_groq_fields() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("compat/groq_stream_x_groq.http")],
            seed,
        )
        .await;
        let groq = OpenAiCompatible::preset(Preset::Groq)
            .api_key(KEY)
            .base_url(format!("{}/openai/v1", server.url()))
            .build()
            .unwrap();
        let stream = groq
            .chat_stream(&ChatRequest::new("llama-3.3-70b-versatile").user("Hola"))
            .await
            .unwrap();
        assert_eq!(stream.provider(), "groq");
        let (deltas, err) = drain(stream).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            deltas,
            vec![
                text("Hola"),
                text(", ¿qué tal?"),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage::new(45, 8)),
            ]
        );
        assert_eq!(server.last().path, "/openai/v1/chat/completions");
    }
}

#[tokio::test]
async fn a_vllm_error_object_mid_stream_is_an_err_item() {
    for seed in SEEDS {
        let server = MockServer::start_with_seed(
            vec![Canned::fixture("compat/vllm_stream_error_object.http")],
            seed,
        )
        .await;
        let (deltas, err) = stream_of(&local(&server), "Qwen/Qwen2.5-7B-Instruct").await;
        assert_eq!(deltas, vec![text("Sure")]);
        let err = err.expect("the error object must not be skipped");
        // Its message says the prompt does not fit (as DeepSeek's does).
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert!(
            err.message()
                .starts_with("This model's maximum context length is 32768")
        );
        assert_eq!(err.code(), Some("400"));
        assert_eq!(err.provider(), Some("local-vllm"));
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

async fn both_errors(
    provider: impl Fn(&MockServer) -> OpenAiCompatible,
    fixture: &str,
) -> [Error; 2] {
    let server = MockServer::start(vec![Canned::fixture(fixture), Canned::fixture(fixture)]).await;
    let provider = provider(&server);
    let req = ChatRequest::new("m").user("hi");
    [
        provider.chat(&req).await.unwrap_err(),
        provider.chat_stream(&req).await.unwrap_err(),
    ]
}

#[tokio::test]
async fn groq_429_is_rate_limited_with_retry_after() {
    let groq = |s: &MockServer| {
        OpenAiCompatible::preset(Preset::Groq)
            .api_key(KEY)
            .base_url(s.url())
            .build()
            .unwrap()
    };
    for err in both_errors(groq, "compat/groq_429_rate_limit.http").await {
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.provider(), Some("groq"));
        assert_eq!(err.code(), Some("rate_limit_exceeded"));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(err.request_id(), Some("req_01jaq2x8v4f0s9t6e3b5c7d1m2"));
        assert!(
            err.message()
                .starts_with("Rate limit reached for model `llama-3.3-70b-versatile`")
        );
    }
}

#[tokio::test]
async fn a_retry_after_date_in_the_past_means_now() {
    for err in both_errors(local, "compat/error_429_retry_after_http_date.http").await {
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::ZERO));
        assert_eq!(err.message(), "Rate limit exceeded: 60 requests per minute");
    }
}

#[tokio::test]
async fn fastapi_detail_errors() {
    for err in both_errors(local, "compat/error_404_fastapi_detail.http").await {
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.message(), "Not Found");
        assert_eq!(err.body(), Some(r#"{"detail":"Not Found"}"#));
    }
    for err in both_errors(local, "compat/error_401_fastapi_detail.http").await {
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.message(), "Invalid API key [REDACTED]");
        for shown in [
            format!("{err}"),
            format!("{err:?}"),
            err.body().unwrap().to_owned(),
        ] {
            assert!(!shown.contains(KEY), "the key leaked: {shown}");
        }
    }
    for err in both_errors(local, "compat/error_422_fastapi_detail_list.http").await {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.status(), Some(422));
        assert!(
            err.message().contains("Field required"),
            "{}",
            err.message()
        );
    }
}

#[tokio::test]
async fn a_top_level_error_object_gives_message_and_code() {
    let mistral = |s: &MockServer| {
        OpenAiCompatible::preset(Preset::Mistral)
            .api_key(KEY)
            .base_url(s.url())
            .build()
            .unwrap()
    };
    for err in both_errors(mistral, "compat/mistral_400_error_object.http").await {
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.provider(), Some("mistral"));
        assert_eq!(
            err.message(),
            "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant"
        );
        assert_eq!(err.code(), Some("3230"));
        assert!(!err.is_retryable());
    }
}

// ---------------------------------------------------------------------------------------------
// Presets and builders
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ollama_needs_no_key_and_sends_none() {
    let server = MockServer::start(vec![Canned::fixture("compat/ollama_chat.http")]).await;
    let ollama = OpenAiCompatible::preset(Preset::Ollama)
        .base_url(format!("{}/v1", server.url()))
        .build()
        .unwrap();
    assert_eq!(ollama.name(), "ollama");
    let r = ollama
        .chat(&ChatRequest::new("llama3.2").user("hi"))
        .await
        .unwrap();
    assert_eq!(r.provider, "ollama");
    assert_eq!(r.text(), "Hi! How can I help you today?");
    assert_eq!(r.usage, Some(Usage::new(27, 10)));
    let sent = server.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), None);
}

#[test]
fn presets_know_their_base_urls_and_variables() {
    let table = [
        (
            Preset::OpenRouter,
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            "OPENROUTER_BASE_URL",
            true,
        ),
        (
            Preset::Groq,
            "groq",
            "https://api.groq.com/openai/v1",
            "GROQ_API_KEY",
            "GROQ_BASE_URL",
            true,
        ),
        (
            Preset::Together,
            "together",
            "https://api.together.xyz/v1",
            "TOGETHER_API_KEY",
            "TOGETHER_BASE_URL",
            true,
        ),
        (
            Preset::Mistral,
            "mistral",
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            "MISTRAL_BASE_URL",
            true,
        ),
        (
            Preset::Xai,
            "xai",
            "https://api.x.ai/v1",
            "XAI_API_KEY",
            "XAI_BASE_URL",
            true,
        ),
        (
            Preset::Fireworks,
            "fireworks",
            "https://api.fireworks.ai/inference/v1",
            "FIREWORKS_API_KEY",
            "FIREWORKS_BASE_URL",
            true,
        ),
        (
            Preset::Ollama,
            "ollama",
            "http://localhost:11434/v1",
            "OLLAMA_API_KEY",
            "OLLAMA_BASE_URL",
            false,
        ),
        (
            Preset::Vllm,
            "vllm",
            "http://localhost:8000/v1",
            "VLLM_API_KEY",
            "VLLM_BASE_URL",
            false,
        ),
    ];
    for (preset, name, base, key_env, base_env, key_required) in table {
        assert_eq!(preset.name(), name);
        assert_eq!(preset.base_url(), base);
        assert_eq!(preset.api_key_env(), key_env);
        assert_eq!(preset.base_url_env(), base_env);
        assert_eq!(preset.key_required(), key_required, "{name}");
        let built = OpenAiCompatible::preset(preset)
            .api_key(KEY)
            .build()
            .unwrap();
        assert_eq!(built.name(), name);
        let shown = format!("{built:?}");
        assert!(shown.contains(&format!("\"{base}\"")), "{shown}");
        assert!(!shown.contains(KEY), "{shown}");
        let without_key = OpenAiCompatible::preset(preset).build();
        assert_eq!(without_key.is_ok(), !key_required, "{name}");
        if let Err(err) = without_key {
            assert_eq!(err.kind(), ErrorKind::Config);
        }
    }
}

#[test]
fn a_custom_service_needs_a_valid_base_url() {
    let err = OpenAiCompatible::builder("x")
        .api_key(KEY)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("base URL"), "{}", err.message());
    for bad in ["", "localhost:8000/v1", "ftp://host/v1", "http://"] {
        let err = OpenAiCompatible::builder("x")
            .base_url(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
    }
    let err = OpenAiCompatible::preset(Preset::Groq)
        .api_key(KEY)
        .base_url("groq.local")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let ok = OpenAiCompatible::builder("x")
        .base_url("http://127.0.0.1:8000/v1")
        .build()
        .unwrap();
    assert_eq!(ok.name(), "x");
}

#[tokio::test]
async fn a_server_that_ignores_stream_true_is_folded_into_deltas() {
    // vLLM-style servers behind some proxies answer a stream request with one JSON body.
    let body = r#"{"id":"cmpl-1","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there",
        "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
        "finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
    let server = MockServer::start(vec![Canned::json(200, body)]).await;
    let (deltas, err) = stream_of(&local(&server), "m").await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        deltas,
        vec![
            Delta::Text("Hello there".into()),
            Delta::ToolCall {
                index: 0,
                id: Some("call_1".into()),
                name: Some("f".into()),
                arguments: "{\"a\":1}".into(),
            },
            Delta::Usage(Usage::new(5, 7)),
            Delta::Finish(FinishReason::ToolCalls),
        ]
    );
    // An error object in a 2xx body is still an error.
    let server = MockServer::start(vec![Canned::json(
        200,
        r#"{"error":{"message":"model overloaded","type":"server_error","code":null}}"#,
    )])
    .await;
    let req = ChatRequest::new("m").user("hi");
    let err = local(&server).chat_stream(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
}
