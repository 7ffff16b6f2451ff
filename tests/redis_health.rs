//! Target health shared through Redis: routers that each have their own `RedisStore` (their own
//! connection and identity, as separate processes would) see one another's rate-limit rests,
//! circuit openings and closings, and take turns for one half-open probe.
//!
//! Needs a Redis server: `REDIS_URL=redis://127.0.0.1:PORT`. Without it the tests say so and
//! pass, unless `MODELGATE_REDIS_REQUIRED=1` (as in CI), when they fail.
#![cfg(all(feature = "redis", feature = "simulator", feature = "openai"))]

#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/sim.rs"]
mod sim;

use std::sync::Arc;
use std::time::Duration;

use modelgate::router::{CircuitBreaker, CircuitStatus, RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::state::{RedisOptions, RedisStore, StateStore};
use modelgate::{ChatProvider, ChatRequest};

use redis_support::{redis_url, unique_prefix as prefix};

async fn store(url: &str, prefix: &str) -> Arc<dyn StateStore> {
    RedisStore::connect(
        RedisOptions::new(url)
            .prefix(prefix)
            .sync_interval(Duration::from_millis(100)),
    )
    .await
    .expect("store connects")
}

/// A router over two targets of the simulator, on `store`.
fn router(
    p: &Arc<dyn ChatProvider>,
    store: Arc<dyn StateStore>,
    breaker: Option<CircuitBreaker>,
) -> Router {
    let mut b = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .state_store(store);
    if let Some(breaker) = breaker {
        b = b.circuit_breaker(breaker);
    }
    b.build().expect("router builds")
}

/// Polls `cond` every 20 ms for up to 10 s; news crosses Redis in milliseconds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

fn status(router: &Router, index: usize) -> (Option<CircuitStatus>, Option<Duration>) {
    let s = &router.target_statuses("chat").unwrap()[index];
    (s.circuit, s.rest_remaining)
}

#[tokio::test]
async fn a_rate_limit_seen_by_one_router_rests_the_target_for_all() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("rest");
    let (sim, p) = sim::start().await;
    let a = router(&p, store(&url, &prefix).await, None);
    let b = router(&p, store(&url, &prefix).await, None);
    let c = router(&p, store(&url, &prefix).await, None);
    sim.enqueue_for_model("model-a", Scenario::rate_limited(Duration::from_secs(60)));

    let r = a.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
    assert_eq!(r.model, "model-b");
    for other in [&b, &c] {
        eventually("the rest reaches the other routers", || {
            status(other, 0)
                .1
                .is_some_and(|left| left > Duration::from_secs(50))
        })
        .await;
    }
    for other in [&b, &c] {
        for _ in 0..3 {
            let r = other
                .chat(&ChatRequest::new("chat").user("hi"))
                .await
                .unwrap();
            assert_eq!(r.model, "model-b");
        }
    }
    assert_eq!(
        sim::count(&sim, "model-a"),
        1,
        "only the first router called it"
    );
}

#[tokio::test]
async fn a_router_started_later_learns_the_fleets_rests_and_open_circuits() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("late");
    let (sim, p) = sim::start().await;
    let breaker = CircuitBreaker::default()
        .with_min_requests(1)
        .with_cool_down(Duration::from_secs(60));
    let a = router(&p, store(&url, &prefix).await, Some(breaker.clone()));
    sim.enqueue_for_model("model-a", Scenario::rate_limited(Duration::from_secs(60)));
    sim.enqueue_for_model("model-b", Scenario::error(500, "boom"));
    let _ = a.chat(&ChatRequest::new("chat").user("hi")).await;
    eventually("router A rests a and opened b", || {
        status(&a, 0).1.is_some() && status(&a, 1).0 == Some(CircuitStatus::Open)
    })
    .await;

    // Its news went out before this router existed: it reads the keys instead.
    let late = router(&p, store(&url, &prefix).await, Some(breaker));
    eventually(
        "the late router reads the rest and the open circuit",
        || status(&late, 0).1.is_some() && status(&late, 1).0 == Some(CircuitStatus::Open),
    )
    .await;
}

#[tokio::test]
async fn a_circuit_opened_in_one_router_is_open_in_all_and_one_probe_closes_it_for_all() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("circuit");
    let (sim, p) = sim::start().await;
    let breaker = CircuitBreaker::default()
        .with_min_requests(2)
        .with_failure_rate_threshold(0.5)
        .with_cool_down(Duration::from_millis(1_500));
    let routers = [
        router(&p, store(&url, &prefix).await, Some(breaker.clone())),
        router(&p, store(&url, &prefix).await, Some(breaker.clone())),
        router(&p, store(&url, &prefix).await, Some(breaker)),
    ];
    for _ in 0..2 {
        sim.enqueue_for_model("model-a", Scenario::error(500, "boom"));
    }
    for _ in 0..2 {
        let r = routers[0]
            .chat(&ChatRequest::new("chat").user("hi"))
            .await
            .unwrap();
        assert_eq!(r.model, "model-b");
    }
    assert_eq!(status(&routers[0], 0).0, Some(CircuitStatus::Open));
    for r in &routers[1..] {
        eventually("the opening reaches the others", || {
            status(r, 0).0 == Some(CircuitStatus::Open)
        })
        .await;
    }
    let calls_when_open = sim::count(&sim, "model-a");
    for r in &routers[1..] {
        let answer = r.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
        assert_eq!(answer.model, "model-b");
    }
    assert_eq!(sim::count(&sim, "model-a"), calls_when_open);

    // After the cool-down, the three race for the probe: exactly one calls model-a.
    for r in &routers {
        eventually("the cool-down ends", || {
            status(r, 0).0 == Some(CircuitStatus::HalfOpen)
        })
        .await;
    }
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("probe ok").with_first_byte_delay(Duration::from_millis(300)),
    );
    let probe = ChatRequest::new("chat").user("probe?");
    let answers = futures::future::join_all(routers.iter().map(|r| r.chat(&probe))).await;
    let served_by_a = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().model == "model-a")
        .count();
    assert_eq!(served_by_a, 1, "one probe for the fleet");
    assert_eq!(sim::count(&sim, "model-a"), calls_when_open + 1);
    // Its success closes the circuit everywhere.
    for r in &routers {
        eventually("the closing reaches every router", || {
            status(r, 0).0 == Some(CircuitStatus::Closed)
        })
        .await;
    }
}

#[tokio::test]
async fn failures_spread_over_routers_open_the_fleets_circuit() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("counts");
    let (sim, p) = sim::start().await;
    // Four failures are needed; each router sees two, which alone would not open it.
    let breaker = CircuitBreaker::default()
        .with_min_requests(4)
        .with_failure_rate_threshold(0.5)
        .with_cool_down(Duration::from_secs(60));
    let a = router(&p, store(&url, &prefix).await, Some(breaker.clone()));
    let b = router(&p, store(&url, &prefix).await, Some(breaker));
    for _ in 0..4 {
        sim.enqueue_for_model("model-a", Scenario::error(500, "boom"));
    }
    for r in [&a, &b, &a, &b] {
        let answer = r.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
        assert_eq!(answer.model, "model-b");
    }
    // Neither saw enough failures alone.
    for r in [&a, &b] {
        eventually("the fleet's counts open the circuit in both", || {
            status(r, 0).0 == Some(CircuitStatus::Open)
        })
        .await;
    }
}

#[tokio::test]
async fn a_reset_in_one_router_clears_the_target_in_all() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("reset");
    let (sim, p) = sim::start().await;
    let a = router(&p, store(&url, &prefix).await, None);
    let b = router(&p, store(&url, &prefix).await, None);
    sim.enqueue_for_model("model-a", Scenario::rate_limited(Duration::from_secs(60)));
    let _ = a.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
    eventually("b rests a", || status(&b, 0).1.is_some()).await;
    a.reset_target("chat", 0).unwrap();
    eventually("the reset reaches b", || status(&b, 0).1.is_none()).await;
    let r = b.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
    assert_eq!(r.model, "model-a");
}

#[tokio::test]
async fn news_flows_again_once_a_killed_redis_is_back() {
    let Some(mut server) = redis_support::RedisServer::spawn() else {
        return;
    };
    let url = server.url();
    let prefix = prefix("restart");
    let (sim, p) = sim::start().await;
    let a = router(&p, store(&url, &prefix).await, None);
    let b = router(&p, store(&url, &prefix).await, None);
    sim.enqueue_for_model("model-a", Scenario::rate_limited(Duration::from_secs(1)));
    let _ = a.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
    eventually("b hears of the first rest", || status(&b, 0).1.is_some()).await;

    // Redis dies. A rest seen meanwhile cannot be told; it is kept, and told once Redis is
    // back (empty), while it is still in force.
    server.kill();
    eventually("the first rest is over", || status(&b, 0).1.is_none()).await;
    sim.enqueue_for_model("model-a", Scenario::rate_limited(Duration::from_secs(60)));
    let r = a.chat(&ChatRequest::new("chat").user("hi")).await.unwrap();
    assert_eq!(r.model, "model-b");
    a.flush().await.unwrap_err();
    assert_eq!(
        status(&b, 0).1,
        None,
        "nothing crossed while Redis was away"
    );
    server.restart();
    eventually("b hears of the rest after the restart", || {
        status(&b, 0)
            .1
            .is_some_and(|left| left > Duration::from_secs(30))
    })
    .await;
}
