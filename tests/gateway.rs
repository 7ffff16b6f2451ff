//! The gateway's HTTP endpoints against the simulator, driven by a plain HTTP client: OpenAI's
//! shapes whatever answered, the contract's headers and statuses, keys and limits.
#![cfg(all(
    feature = "server",
    feature = "simulator",
    feature = "openai",
    feature = "anthropic"
))]

use std::sync::Arc;
use std::time::Duration;

use modelgate::ChatProvider;
use modelgate::providers::{Anthropic, OpenAi};
use modelgate::router::{Budget, Router, Target};
use modelgate::server::{Gateway, GatewayKey};
use modelgate::simulator::{Scenario, Simulator, Wire};
use serde_json::{Value, json};

struct Running {
    sim: Simulator,
    url: String,
    http: reqwest::Client,
}

fn router(sim: &Simulator) -> Router {
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key("sk-upstream")
            .base_url(sim.base_url(Wire::OpenAi))
            .build()
            .unwrap(),
    );
    let claude: Arc<dyn ChatProvider> = Arc::new(
        Anthropic::builder()
            .api_key("sk-ant-upstream")
            .base_url(sim.base_url(Wire::Anthropic))
            .build()
            .unwrap(),
    );
    Router::builder()
        .route("chat", [Target::new(openai.clone(), "gpt-4o-mini")])
        .route("claude", [Target::new(claude, "claude-sonnet-4-5")])
        .route(
            "fallback",
            [
                Target::new(openai.clone(), "gpt-4.1"),
                Target::new(openai.clone(), "gpt-4o-mini"),
            ],
        )
        .route("capped", [Target::new(openai, "gpt-4o")])
        .budget(Budget::new("capped", 0.0).for_route("capped"))
        .build()
        .unwrap()
}

async fn start(configure: impl FnOnce(Gateway) -> Gateway) -> Running {
    let sim = Simulator::start().await.unwrap();
    let app = configure(Gateway::new(router(&sim))).into_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running {
        sim,
        url,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl Running {
    async fn post(&self, body: Value) -> reqwest::Response {
        self.post_with(body, None).await
    }

    async fn post_with(&self, body: Value, key: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&body);
        if let Some(key) = key {
            r = r.bearer_auth(key);
        }
        r.send().await.unwrap()
    }
}

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The data payloads of an SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_chat_answer_is_openais_completion_with_the_gateway_headers() {
    let g = start(|g| g).await;
    g.sim
        .enqueue(Scenario::text("Hello there").with_usage(12, 3));
    let resp = g.post(hi("claude")).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-modelgate-provider"], "anthropic");
    assert_eq!(h["x-modelgate-model"], "claude-sonnet-4-5");
    assert_eq!(h["x-modelgate-route"], "claude");
    assert_eq!(h["x-modelgate-attempts"], "1");
    let cost: f64 = h["x-modelgate-cost-usd"].to_str().unwrap().parse().unwrap();
    assert!(
        (cost - (12.0 * 3.0 + 3.0 * 15.0) / 1e6).abs() < 1e-9,
        "{cost}"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
}

#[tokio::test]
async fn a_stream_sends_chunks_a_usage_chunk_with_cost_and_done() {
    let g = start(|g| g).await;
    g.sim.enqueue(
        Scenario::text("Hello there")
            .with_usage(10, 2)
            .with_chunk_chars(3),
    );
    let mut body = hi("chat");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = g.post(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-modelgate-provider"], "openai");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events = events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello there");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 10);
    let cost = usage["usage"]["cost"].as_f64().unwrap();
    assert!(
        (cost - (10.0 * 0.15 + 2.0 * 0.60) / 1e6).abs() < 1e-12,
        "{cost}"
    );
}

#[tokio::test]
async fn a_stream_failing_after_its_first_chunk_ends_with_an_error_event_and_no_done() {
    let g = start(|g| g).await;
    g.sim.enqueue(
        Scenario::text("Hello there, a long answer")
            .with_chunk_chars(4)
            .with_error_event_at(3),
    );
    let mut body = hi("chat");
    body["stream"] = json!(true);
    let text = g.post(body).await.text().await.unwrap();
    let events = events(&text);
    assert!(!events.iter().any(|e| e == "[DONE]"), "{text}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{last}");
}

#[tokio::test]
async fn a_fallback_is_invisible_but_counted() {
    let g = start(|g| g).await;
    g.sim.enqueue_for_model(
        "gpt-4.1",
        Scenario::error(
            404,
            r#"{"error":{"message":"no such model","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        ),
    );
    g.sim.set_default(Scenario::text("ok"));
    let resp = g.post(hi("fallback")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-modelgate-model"], "gpt-4o-mini");
    assert_eq!(resp.headers()["x-modelgate-attempts"], "2");
}

#[tokio::test]
async fn keys_are_required_checked_and_scoped() {
    let g = start(|g| {
        g.keys([
            GatewayKey::new("search", "mg-search".to_owned().into()).routes(["chat"]),
            GatewayKey::new("ops", "mg-ops".to_owned().into()),
        ])
    })
    .await;
    assert_eq!(g.post_with(hi("chat"), None).await.status(), 401);
    let wrong = g.post_with(hi("chat"), Some("mg-nope")).await;
    assert_eq!(wrong.status(), 401);
    let v: Value = wrong.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(
        g.post_with(hi("chat"), Some("mg-search")).await.status(),
        200
    );
    assert_eq!(
        g.post_with(hi("claude"), Some("mg-search")).await.status(),
        403
    );
    assert_eq!(
        g.post_with(hi("claude"), Some("mg-ops")).await.status(),
        200
    );
    let models: Value = g
        .http
        .get(format!("{}/v1/models", g.url))
        .bearer_auth("mg-search")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat"]);
}

#[tokio::test]
async fn bad_requests_unknown_routes_and_spent_budgets_get_their_statuses() {
    let g = start(|g| g.max_body(1_000)).await;
    let bad = g
        .post(json!({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}))
        .await;
    assert_eq!(bad.status(), 400);
    let v: Value = bad.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages[0].role");
    assert_eq!(g.post(hi("nope")).await.status(), 404);
    let spent = g.post(hi("capped")).await;
    assert_eq!(spent.status(), 429);
    assert_eq!(spent.headers()["x-should-retry"], "false");
    let v: Value = spent.json().await.unwrap();
    assert_eq!(v["error"]["code"], "budget_exceeded");
    let huge =
        json!({"model": "chat", "messages": [{"role": "user", "content": "x".repeat(5_000)}]});
    assert_eq!(g.post(huge).await.status(), 413);
    assert_eq!(g.sim.request_count(), 0, "none of these reached a provider");
}

#[tokio::test]
async fn past_its_concurrency_limit_the_gateway_answers_503() {
    let g = start(|g| g.max_concurrent(1)).await;
    // A slow stream holds the only slot.
    g.sim.enqueue(
        Scenario::text("slow answer")
            .with_chunk_chars(2)
            .with_chunk_delay(Duration::from_millis(300)),
    );
    let mut body = hi("chat");
    body["stream"] = json!(true);
    let held = g.post(body).await;
    assert_eq!(held.status(), 200);
    assert_eq!(g.post(hi("chat")).await.status(), 503);
    // Once the stream is read to its end, the slot is free again.
    held.text().await.unwrap();
    assert_eq!(g.post(hi("chat")).await.status(), 200);
}

#[tokio::test]
async fn the_key_tag_and_header_tags_reach_the_router_and_not_the_provider() {
    let g = start(|g| g.keys([GatewayKey::new("team-a", "mg-a".to_owned().into())])).await;
    let resp = g
        .http
        .post(format!("{}/v1/chat/completions", g.url))
        .bearer_auth("mg-a")
        .header("x-modelgate-tags", "team=search, user=ann")
        .json(&hi("chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = g.sim.requests().pop().unwrap();
    let body = serde_json::to_string(&sent.body).unwrap();
    assert!(!body.contains("team-a") && !body.contains("ann"), "{body}");
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_upstream_request() {
    let g = start(|g| g).await;
    g.sim.enqueue(
        Scenario::text("a slow and long answer")
            .with_chunk_chars(2)
            .with_chunk_delay(Duration::from_millis(200)),
    );
    let mut body = hi("chat");
    body["stream"] = json!(true);
    let mut resp = g.post(body).await;
    assert_eq!(resp.status(), 200);
    resp.chunk().await.unwrap();
    assert_eq!(g.sim.connections_open(), 1, "the upstream stream is open");
    drop(resp);
    for _ in 0..100 {
        if g.sim.connections_open() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the upstream connection outlived its client");
}

#[tokio::test]
async fn graceful_shutdown_lets_a_stream_in_flight_finish() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("finishing after the signal")
            .with_chunk_chars(4)
            .with_chunk_delay(Duration::from_millis(50)),
    );
    let app = Gateway::new(router(&sim)).into_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(modelgate::server::serve(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut body = hi("chat");
    body["stream"] = json!(true);
    let resp = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    stop.send(()).unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    server.await.unwrap().unwrap();
    // After shutdown nothing is accepted.
    assert!(
        http.post(format!("{url}/v1/chat/completions"))
            .json(&hi("chat"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_upstream_stream_gets_keep_alive_comments() {
    let g = start(|g| g).await;
    // Five seconds (of paused time) between chunks: the gateway fills the silence.
    g.sim.enqueue(
        Scenario::text("one two")
            .with_chunk_chars(4)
            .with_chunk_delay(Duration::from_secs(5)),
    );
    let mut body = hi("chat");
    body["stream"] = json!(true);
    let text = g.post(body).await.text().await.unwrap();
    assert!(text.contains(": keep-alive\n\n"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let content: String = events(&text)
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "one two");
}

#[tokio::test]
async fn metrics_are_not_found_without_a_prometheus_handle() {
    let g = start(|g| g).await;
    let resp = g
        .http
        .get(format!("{}/metrics", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_key_off_by_its_last_byte_or_of_another_length_is_wrong() {
    let g = start(|g| {
        g.keys([GatewayKey::new(
            "team-a",
            "mg-a-0123456789".to_owned().into(),
        )])
    })
    .await;
    assert_eq!(
        g.post_with(hi("chat"), Some("mg-a-0123456789"))
            .await
            .status(),
        200
    );
    for wrong in ["mg-a-0123456788", "mg-a-012345678", "mg-a-01234567890", ""] {
        let resp = g.post_with(hi("chat"), Some(wrong)).await;
        assert_eq!(resp.status(), 401, "{wrong:?}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_api_key");
    }
}
