//! The router's spans carry the OpenTelemetry GenAI attribute names, filled in once the answer is
//! known, and never the prompt.
#![cfg(all(feature = "simulator", feature = "openai"))]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use modelgate::providers::OpenAi;
use modelgate::router::{Router, Target};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span's name and the fields recorded on it, as text.
type SpanRecord = (String, BTreeMap<String, String>);

/// Every span seen.
#[derive(Default, Clone)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let entry = &mut spans[span.into_u64() as usize - 1];
        values.record(&mut Fields(&mut entry.1));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn request_and_attempt_spans_carry_the_genai_attributes() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let sim = Simulator::start().await.unwrap();
    sim.set_default(
        Scenario::text("ok")
            .with_usage(1_000, 200)
            .with_cached_tokens(400)
            .with_reasoning_tokens(50),
    );
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key("sk-secret-key")
            .base_url(sim.base_url(Wire::OpenAi))
            .build()
            .unwrap(),
    );
    let router = Router::builder()
        .route("chat", [Target::new(openai, "gpt-4o-mini")])
        .build()
        .unwrap();
    let r = router
        .chat(&ChatRequest::new("chat").user("the secret prompt"))
        .await
        .unwrap();
    let spans = capture.spans.lock().unwrap().clone();
    let (_, request) = spans
        .iter()
        .find(|(name, _)| name == "modelgate.request")
        .expect("a request span");
    let field = |k: &str| request.get(k).map(String::as_str);
    assert_eq!(field("gen_ai.request.model"), Some("chat"));
    assert_eq!(field("gen_ai.provider.name"), Some("openai"));
    assert_eq!(field("gen_ai.response.model"), Some("gpt-4o-mini"));
    assert_eq!(field("gen_ai.usage.input_tokens"), Some("1000"));
    assert_eq!(field("gen_ai.usage.output_tokens"), Some("200"));
    assert_eq!(field("gen_ai.usage.cache_read.input_tokens"), Some("400"));
    assert_eq!(field("gen_ai.usage.reasoning.output_tokens"), Some("50"));
    assert_eq!(field("gen_ai.response.finish_reasons"), Some("Stop"));
    assert_eq!(
        field("modelgate.cost_usd"),
        Some(r.cost.unwrap().to_string().as_str())
    );
    let (_, attempt) = spans
        .iter()
        .find(|(name, _)| name == "modelgate.attempt")
        .expect("an attempt span");
    assert_eq!(
        attempt.get("gen_ai.provider.name").map(String::as_str),
        Some("openai")
    );
    assert_eq!(
        attempt.get("gen_ai.request.model").map(String::as_str),
        Some("gpt-4o-mini")
    );
    // Neither the prompt nor the key appears in any span.
    let all = format!("{spans:?}");
    assert!(
        !all.contains("secret prompt") && !all.contains("sk-secret-key"),
        "{all}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_request_records_its_error_type() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Scenario::error(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
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
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    let spans = capture.spans.lock().unwrap().clone();
    for name in ["modelgate.request", "modelgate.attempt"] {
        let (_, fields) = spans.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(
            fields.get("error.type").map(String::as_str),
            Some("invalid_request"),
            "{name}: {fields:?}"
        );
    }
}
