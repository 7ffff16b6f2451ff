//! `GET /metrics`: the router's measurements, the gateway's request counter and the gauges of
//! targets and budgets, in Prometheus' text format, never a key. A test binary of its own: it
//! installs the process's global recorder.
#![cfg(all(feature = "server", feature = "simulator", feature = "openai"))]

use std::sync::Arc;

use modelgate::ChatProvider;
use modelgate::providers::OpenAi;
use modelgate::router::{Budget, CircuitBreaker, Router, Target};
use modelgate::server::{Gateway, GatewayKey, KEY_TAG, prometheus_builder};
use modelgate::simulator::{Scenario, Simulator, Wire};
use serde_json::{Value, json};

const GATEWAY_KEY: &str = "mg-metrics-secret-7f3a";
const UPSTREAM_KEY: &str = "sk-upstream-secret-9c2d";

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The lines of `text` for metric `name` (its samples, not its `# TYPE` comments).
fn samples<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels contain every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    let found: Vec<&str> = samples(text, name)
        .into_iter()
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in:\n{text}");
    found[0].rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_show_the_routers_measurements_the_gauges_and_no_key() {
    let handle = prometheus_builder().install_recorder().unwrap();
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Scenario::text("ok").with_usage(1_000, 200));
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key(UPSTREAM_KEY)
            .base_url(sim.base_url(Wire::OpenAi))
            .build()
            .unwrap(),
    );
    let router = Router::builder()
        .route("chat", [Target::new(openai, "gpt-4o-mini")])
        .circuit_breaker(CircuitBreaker::default())
        .budget(Budget::new("daily", 50.0).daily())
        .budget(Budget::new("key:team-a", 5.0).for_tag(KEY_TAG, "team-a"))
        .build()
        .unwrap();
    let app = Gateway::new(router)
        .keys([GatewayKey::new("team-a", GATEWAY_KEY.to_owned().into())])
        .metrics(handle)
        .into_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    for _ in 0..3 {
        let r = http
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(GATEWAY_KEY)
            .json(&hi("chat"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut stream = hi("chat");
    stream["stream"] = json!(true);
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(GATEWAY_KEY)
        .json(&stream)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    // Refused: counted by status, with the key and a made-up route as `-`.
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("wrong")
        .json(&hi("made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let resp = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();

    let target = [
        "gen_ai_provider_name=\"openai\"",
        "gen_ai_request_model=\"gpt-4o-mini\"",
        "modelgate_route=\"chat\"",
    ];
    // Latency: a histogram (buckets) of the chat calls, and one of the stream.
    let mut chat = target.to_vec();
    chat.push("modelgate_stream=\"false\"");
    assert_eq!(
        value(&text, "gen_ai_client_operation_duration_count", &chat),
        3.0
    );
    chat.push("le=\"+Inf\"");
    assert_eq!(
        value(&text, "gen_ai_client_operation_duration_bucket", &chat),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "gen_ai_client_operation_time_to_first_chunk_count",
            &target
        ),
        1.0
    );
    // Tokens by type (4 answers of 1000 in and 200 out), and cost in nano-USD.
    let mut input = target.to_vec();
    input.push("gen_ai_token_type=\"input\"");
    assert_eq!(
        value(&text, "gen_ai_client_token_usage_sum", &input),
        4_000.0
    );
    let mut output = target.to_vec();
    output.push("gen_ai_token_type=\"output\"");
    assert_eq!(
        value(&text, "gen_ai_client_token_usage_sum", &output),
        800.0
    );
    let cost = value(&text, "modelgate_client_cost", &target);
    assert!(cost > 0.0, "{cost}");
    // The gateway's own counter, by key, route and status.
    assert_eq!(
        value(
            &text,
            "modelgate_gateway_requests",
            &[
                "modelgate_key=\"team-a\"",
                "modelgate_route=\"chat\"",
                "http_response_status_code=\"200\""
            ]
        ),
        4.0
    );
    assert_eq!(
        value(
            &text,
            "modelgate_gateway_requests",
            &[
                "modelgate_key=\"-\"",
                "modelgate_route=\"-\"",
                "http_response_status_code=\"401\""
            ]
        ),
        1.0
    );
    // Gauges, set at the scrape: the circuit closed, nothing in flight, the budgets.
    let t = &target[..2];
    assert_eq!(value(&text, "modelgate_target_circuit_state", t), 0.0);
    assert_eq!(value(&text, "modelgate_target_in_flight", t), 0.0);
    let daily = ["modelgate_budget=\"daily\""];
    assert_eq!(value(&text, "modelgate_budget_limit_usd", &daily), 50.0);
    assert!((value(&text, "modelgate_budget_spent_usd", &daily) - cost * 1e-9).abs() < 1e-8);
    assert_eq!(value(&text, "modelgate_budget_reserved_usd", &daily), 0.0);
    let key = ["modelgate_budget=\"key:team-a\""];
    assert_eq!(value(&text, "modelgate_budget_limit_usd", &key), 5.0);
    assert!((value(&text, "modelgate_budget_spent_usd", &key) - cost * 1e-9).abs() < 1e-8);

    for secret in [GATEWAY_KEY, UPSTREAM_KEY] {
        assert!(!text.contains(secret), "{secret} in /metrics:\n{text}");
    }
}
