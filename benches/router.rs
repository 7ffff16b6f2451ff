//! The router's own overhead: one chat round trip (and one short stream) through a `Router` with
//! every policy on — retry, adaptive hedging and a circuit breaker — vs the same `OpenAi`
//! provider called directly, against the same static loopback server, in one run.
//!
//! `router_all_policies` is the case DESIGN.md budgets (one target: the hedge never fires, but
//! every policy is consulted and every attempt recorded). `router_hedge_armed` adds a second
//! target that is never needed, so that once the adaptive hedge has its data points each request
//! also arms a hedge timer and races through the hedging path.

mod common;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::join_all;
use modelgate::router::{CircuitBreaker, HedgePolicy, RetryPolicy, Router, Target};
use modelgate::{ChatProvider, ChatRequest};

fn provider(addr: std::net::SocketAddr, client: &reqwest::Client) -> Arc<dyn ChatProvider> {
    Arc::new(common::openai(addr, client))
}

fn router(targets: Vec<Target>) -> Router {
    Router::builder()
        .route("chat", targets)
        .retry(RetryPolicy::default())
        .hedge(HedgePolicy::adaptive(0.95))
        .circuit_breaker(CircuitBreaker::default())
        .build()
        .unwrap()
}

async fn chat(provider: &dyn ChatProvider, req: &ChatRequest) -> usize {
    let r = provider.chat(req).await.unwrap();
    r.text().len() + r.usage.unwrap().input_tokens as usize
}

fn bench(c: &mut Criterion) {
    let rt = common::runtime();
    let client = common::client();
    let chat_addr = rt.block_on(common::static_server(
        "application/json",
        common::completion_body(),
    ));
    let stream_addr = rt.block_on(common::static_server(
        "text/event-stream",
        common::stream_body(20),
    ));

    let direct = provider(chat_addr, &client);
    let routed = router(vec![Target::new(direct.clone(), "gpt-4o-mini")]);
    let spare = provider(chat_addr, &client);
    let armed = router(vec![
        Target::new(direct.clone(), "gpt-4o-mini"),
        Target::new(spare, "gpt-4o-mini"),
    ]);
    let stream_direct = provider(stream_addr, &client);
    let stream_routed = router(vec![Target::new(stream_direct.clone(), "gpt-4o-mini")]);

    let direct_req = ChatRequest::new("gpt-4o-mini")
        .system("Be brief.")
        .user("Why is the sky blue?");
    let routed_req = ChatRequest::new("chat")
        .system("Be brief.")
        .user("Why is the sky blue?");

    let mut group = c.benchmark_group("router_overhead");
    group.bench_function("openai_direct/c1", |b| {
        b.to_async(&rt).iter(|| chat(direct.as_ref(), &direct_req))
    });
    group.bench_function("router_all_policies/c1", |b| {
        b.to_async(&rt).iter(|| chat(&routed, &routed_req))
    });
    group.bench_function("router_hedge_armed/c1", |b| {
        b.to_async(&rt).iter(|| chat(&armed, &routed_req))
    });
    group.bench_function("openai_direct/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| chat(direct.as_ref(), &direct_req))))
    });
    group.bench_function("router_all_policies/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| chat(&routed, &routed_req))))
    });
    group.bench_function("openai_direct_stream/c1", |b| {
        b.to_async(&rt)
            .iter(|| common::read_stream(stream_direct.as_ref(), &direct_req))
    });
    group.bench_function("router_all_policies_stream/c1", |b| {
        b.to_async(&rt)
            .iter(|| common::read_stream(&stream_routed, &routed_req))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
