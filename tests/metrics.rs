//! Feature `metrics`: the router's measurements reach whatever recorder the application
//! installed, named after the GenAI conventions and labelled by provider, model and route.
#![cfg(all(feature = "metrics", feature = "simulator", feature = "openai"))]

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use modelgate::providers::OpenAi;
use modelgate::router::{Router, Target};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest};

/// One value recorded: (metric name, sorted labels, value).
type Sample = (String, Vec<(String, String)>, f64);
/// Every value recorded.
type Log = Arc<Mutex<Vec<Sample>>>;

#[derive(Default)]
struct Capture {
    log: Log,
}

struct Handle {
    name: String,
    labels: Vec<(String, String)>,
    log: Log,
}

impl Handle {
    fn push(&self, v: f64) {
        self.log
            .lock()
            .unwrap()
            .push((self.name.clone(), self.labels.clone(), v));
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl Capture {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        Arc::new(Handle {
            name: key.name().to_owned(),
            labels,
            log: self.log.clone(),
        })
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "current_thread")]
async fn durations_tokens_cost_and_errors_are_recorded_per_provider_model_and_route() {
    let capture = Capture::default();
    let log = capture.log.clone();
    let _guard = metrics::set_default_local_recorder(&capture);
    let sim = Simulator::start().await.unwrap();
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key("sk-test")
            .base_url(sim.base_url(Wire::OpenAi))
            .build()
            .unwrap(),
    );
    let router = Router::builder()
        .route("chat", [Target::new(openai, "gpt-4o-mini")])
        .build()
        .unwrap();
    sim.enqueue(Scenario::text("ok").with_usage(1_000_000, 10));
    sim.enqueue(Scenario::text("streamed").with_usage(7, 3));
    sim.enqueue(Scenario::error(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
    let req = ChatRequest::new("chat").user("hi");
    router.chat(&req).await.unwrap();
    let mut stream = router.chat_stream(&req).await.unwrap();
    while let Some(d) = stream.next().await {
        d.unwrap();
    }
    router.chat(&req).await.unwrap_err();

    let log = log.lock().unwrap().clone();
    let of = |name: &str| -> Vec<&Sample> { log.iter().filter(|(n, _, _)| n == name).collect() };
    for (_, labels, _) in &log {
        assert_eq!(label(labels, "gen_ai.provider.name"), Some("openai"));
        assert_eq!(label(labels, "gen_ai.request.model"), Some("gpt-4o-mini"));
        assert_eq!(label(labels, "modelgate.route"), Some("chat"));
    }
    let durations = of("gen_ai.client.operation.duration");
    assert_eq!(durations.len(), 2, "one chat and one stream: {durations:?}");
    assert_eq!(of("gen_ai.client.operation.time_to_first_chunk").len(), 1);
    let tokens = of("gen_ai.client.token.usage");
    let input: Vec<f64> = tokens
        .iter()
        .filter(|(_, l, _)| label(l, "gen_ai.token.type") == Some("input"))
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(input, [1_000_000.0, 7.0]);
    // gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output.
    let cost: f64 = of("modelgate.client.cost").iter().map(|(_, _, v)| v).sum();
    let expected = (1_000_000.0 * 0.15 + 10.0 * 0.60 + 7.0 * 0.15 + 3.0 * 0.60) / 1e6 * 1e9;
    assert!(
        (cost - expected).abs() <= 2.0,
        "{cost} nano-USD vs {expected}"
    );
    let errors = of("modelgate.client.errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(label(&errors[0].1, "error.type"), Some("invalid_request"));
}

/// A shared store that cannot reach Redis counts each failed call, by operation (and warns in
/// `tracing`), whichever way it then goes.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_redis_is_counted_per_operation() {
    use modelgate::state::{Claim, OnError, RedisOptions, RedisStore, StateStore};
    let capture = Capture::default();
    let log = capture.log.clone();
    let _guard = metrics::set_default_local_recorder(&capture);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisStore::connect(
        RedisOptions::new(format!("redis://127.0.0.1:{port}")).on_error(OnError::FailClosed),
    )
    .await
    .unwrap();
    let claims = [Claim {
        key: "daily".into(),
        window: 0,
        limit: 1_000,
        expires: 0,
    }];
    store.reserve(&claims, 10).await.unwrap_err();
    store.counters("daily", 0).await.unwrap_err();
    assert!(store.is_degraded());

    let log = log.lock().unwrap().clone();
    let errors: Vec<&str> = log
        .iter()
        .filter(|(n, _, _)| n == "modelgate.state.errors")
        .filter_map(|(_, l, _)| label(l, "operation"))
        .collect();
    assert!(errors.contains(&"reserve"), "{log:?}");
    assert!(errors.contains(&"counters"), "{log:?}");
}
