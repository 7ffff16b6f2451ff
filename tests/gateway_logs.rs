//! The gateway's logs: one line per request naming the key, route, provider, model, status,
//! tokens, cost and latency, and never a gateway key, an upstream key or the prompt, in any line
//! of any target (the router's spans and the simulator's included). A test binary of its own: it
//! installs the process's global subscriber, so that every thread's events are captured.
#![cfg(all(feature = "server", feature = "simulator", feature = "openai"))]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use modelgate::ChatProvider;
use modelgate::providers::OpenAi;
use modelgate::router::{Router, Target};
use modelgate::server::{Gateway, GatewayKey};
use modelgate::simulator::{Scenario, Simulator, Wire};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const GATEWAY_KEY: &str = "mg-log-secret-4b1e";
const UPSTREAM_KEY: &str = "sk-upstream-log-secret-83fa";
const PROMPT_MARKER: &str = "PROMPT-MARKER-51c7";

/// Every event and span seen, each as one line `target name k=v k=v …` (an event's line also
/// carries the fields of the span it happened in).
#[derive(Default)]
struct Capture {
    lines: Mutex<Vec<String>>,
    spans: Mutex<BTreeMap<u64, String>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl Subscriber for &'static Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut line = format!("{} {}", attrs.metadata().target(), attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(format!("span {line}"));
        self.spans.lock().unwrap().insert(id, line);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(line) = spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(line));
            self.lines.lock().unwrap().push(format!("span {line}"));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = event.metadata().target().to_owned();
        event.record(&mut Fields(&mut line));
        if let Some(parent) = event.parent() {
            if let Some(span) = self.spans.lock().unwrap().get(&parent.into_u64()) {
                line.push_str(&format!(" in [{span}]"));
            }
        }
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing::subscriber::set_global_default(capture).unwrap();
        capture
    })
}

struct Running {
    sim: Simulator,
    url: String,
    http: reqwest::Client,
}

async fn start() -> Running {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Scenario::text("fine, thanks").with_usage(40, 7));
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key(UPSTREAM_KEY)
            .base_url(sim.base_url(Wire::OpenAi))
            .build()
            .unwrap(),
    );
    let router = Router::builder()
        .route("chat", [Target::new(openai, "gpt-4o-mini")])
        .build()
        .unwrap();
    let app = Gateway::new(router)
        .keys([GatewayKey::new("team-logs", GATEWAY_KEY.to_owned().into())])
        .into_app();
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
    async fn post(&self, body: &Value, key: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn request(stream: bool) -> Value {
    json!({
        "model": "chat",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": format!("tell me about {PROMPT_MARKER}")}],
    })
}

/// The gateway's lines (`modelgate::gateway`) with this message.
fn gateway_lines(lines: &[String], message: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("modelgate::gateway ") && l.contains(message))
        .cloned()
        .collect()
}

#[tokio::test]
async fn request_lines_name_what_served_and_no_line_holds_a_key_or_the_prompt() {
    let capture = capture();
    let g = start().await;

    let r = g.post(&request(false), GATEWAY_KEY).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let r = g.post(&request(true), GATEWAY_KEY).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    // A wrong key that contains the right one, and an upstream error.
    let r = g
        .post(&request(false), &format!("{GATEWAY_KEY}{UPSTREAM_KEY}"))
        .await;
    assert_eq!(r.status(), 401);
    g.sim.enqueue(Scenario::error(
        400,
        r#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#,
    ));
    let r = g.post(&request(false), GATEWAY_KEY).await;
    assert_eq!(r.status(), 400);
    r.text().await.unwrap();
    // The stream's line is written once its body is dropped.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let lines = capture.lines.lock().unwrap().clone();
    let served = gateway_lines(&lines, "request served");
    assert_eq!(served.len(), 1, "{lines:#?}");
    for field in [
        "key=team-logs",
        "route=chat",
        "provider=openai",
        "model=gpt-4o-mini",
        "status=200",
        "input_tokens=40",
        "output_tokens=7",
        "cost_usd=",
        "latency_ms=",
    ] {
        assert!(served[0].contains(field), "{field} in {}", served[0]);
    }
    let stream = gateway_lines(&lines, "stream served");
    assert_eq!(stream.len(), 1, "{lines:#?}");
    for field in [
        "key=team-logs",
        "route=chat",
        "provider=openai",
        "model=gpt-4o-mini",
        "status=200",
        "outcome=done",
        "input_tokens=40",
        "output_tokens=7",
        "cost_usd=",
        "ttft_ms=",
        "latency_ms=",
    ] {
        assert!(stream[0].contains(field), "{field} in {}", stream[0]);
    }
    let failed = gateway_lines(&lines, "request failed");
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(failed[0].contains("status=400"), "{}", failed[0]);

    assert!(lines.len() > 4, "the router's spans are captured too");
    for line in &lines {
        for secret in [GATEWAY_KEY, UPSTREAM_KEY, PROMPT_MARKER, "fine, thanks"] {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
    }
}
