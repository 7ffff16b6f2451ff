//! What a budget's state store adds to each request: a `Router` with one budget (a limit it never
//! reaches) over an in-process provider that answers at once, so that the store is all that
//! differs: no budget, `MemoryStore`, `RedisStore` (the Redis at `REDIS_URL`), one request at a
//! time (`c1`) and 64 joined per iteration (`c64`).
//!
//! Needs a Redis: `REDIS_URL=redis://127.0.0.1:6379 cargo bench --features redis --bench state`.
//! Without `REDIS_URL` it says so and exits successfully.
//!
//! Medians measured on a 2-core VM with Redis 7.0 on loopback:
//!
//! | | c1 (per request) | c64 (per 64 requests) |
//! |---|---|---|
//! | no budget | 0.75 µs | 59.0 µs |
//! | `MemoryStore` | 1.07 µs | 75.4 µs |
//! | `RedisStore` | 118 µs | 1,479 µs (22 µs more per request) |
//!
//! How to read them:
//! - At c1 a Redis request costs about two loopback round trips (`redis-cli --latency` measured
//!   about 40 µs per PING): the awaited reservation, and the previous request's detached
//!   settlement, which is queued ahead of it on the one multiplexed connection.
//! - At c64 the limit is Redis's single thread running two scripts per request (`INFO
//!   commandstats`: about 8.6 µs each).
//! - The c1 figure moves with how idle the machine is. An idle VM wakes slowly: 31 µs was seen
//!   under load, 106–118 µs quiet.

use std::sync::Arc;

use async_trait::async_trait;
use criterion::Criterion;
use futures::future::join_all;
use modelgate::pricing::ModelPrice;
use modelgate::router::{Budget, Router, Target};
use modelgate::state::{MemoryStore, RedisOptions, RedisStore, StateStore};
use modelgate::types::Usage;
use modelgate::{ChatProvider, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Message};

/// Answers every chat at once, with usage (so that the router settles a real cost).
struct Instant;

#[async_trait]
impl ChatProvider for Instant {
    fn name(&self) -> &str {
        "instant"
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        let mut r = ChatResponse::new("instant", req.model.clone(), Message::assistant("ok"));
        r.usage = Some(Usage::new(20, 10));
        Ok(r)
    }

    async fn chat_stream(&self, _req: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::InvalidRequest, "no streams here"))
    }
}

fn router(store: Option<Arc<dyn StateStore>>) -> Router {
    let target = Target::new(Arc::new(Instant), "model").price(ModelPrice::new(1.0, 1.0));
    let builder = Router::builder().route("chat", [target]);
    match store {
        // A billion dollars: the budget is consulted on every request and never refuses.
        Some(store) => builder
            .budget(Budget::new("all", 1e9))
            .state_store(store)
            .build(),
        None => builder.build(),
    }
    .unwrap()
}

async fn chat(router: &Router, req: &ChatRequest) -> usize {
    router.chat(req).await.unwrap().text().len()
}

fn main() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!(
            "benches/state.rs: REDIS_URL is not set; nothing to measure. Start redis-server and \
             run REDIS_URL=redis://127.0.0.1:PORT cargo bench --features redis --bench state"
        );
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &url);
    c.final_summary();
}

fn bench(c: &mut Criterion, url: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis: Arc<dyn StateStore> = rt.block_on(async {
        let store = RedisStore::connect(
            RedisOptions::new(url).prefix(format!("modelgate-bench-{}", std::process::id())),
        )
        .await
        .expect("RedisStore::connect");
        store.ping().await.expect("Redis at REDIS_URL answers");
        store
    });
    let routers = [
        ("no_budget", router(None)),
        ("memory", router(Some(Arc::new(MemoryStore::new())))),
        ("redis", router(Some(redis))),
    ];
    let req = ChatRequest::new("chat")
        .user("Why is the sky blue?")
        .max_tokens(100);

    let mut group = c.benchmark_group("state_store");
    for (name, router) in &routers {
        group.bench_function(format!("{name}/c1"), |b| {
            b.to_async(&rt).iter(|| chat(router, &req))
        });
    }
    for (name, router) in &routers {
        group.bench_function(format!("{name}/c64"), |b| {
            b.to_async(&rt)
                .iter(|| join_all((0..64).map(|_| chat(router, &req))))
        });
    }
    group.finish();
    // Let the last iteration's settlements reach Redis before the process exits.
    for (_, router) in &routers {
        rt.block_on(router.flush()).expect("the store flushes");
    }
}
