//! A budget on Redis, seen from a router: a downgrade decision (advisory: the reservation is
//! what admits spend) reads the store's recent copy of the counters instead of asking Redis on
//! every request, so a budgeted request waits for one script, its reservation; and the copy
//! follows the spend closely enough that the downgrade still comes as soon as it is due.
#![cfg(all(feature = "redis", feature = "simulator", feature = "openai"))]

#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/sim.rs"]
mod sim;

use std::time::Duration;

use modelgate::pricing::ModelPrice;
use modelgate::router::{Budget, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::state::{RedisOptions, RedisStore};
use modelgate::{ChatProvider, ChatRequest};
use redis_support::RedisServer;

/// How many scripts Redis has run (`EVALSHA` and `EVAL` calls that did not fail: a first
/// `EVALSHA` of a script Redis does not know yet fails, and the script is loaded and sent again).
async fn scripts_run(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .map(|l| {
            let field = |name: &str| -> u64 {
                l.split([':', ','])
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                    .unwrap_or(0)
            };
            field("calls") - field("failed_calls") - field("rejected_calls")
        })
        .sum()
}

#[tokio::test]
async fn a_downgrading_budget_costs_one_script_per_request_and_still_downgrades_in_time() {
    // A private server: its command counts are this test's alone.
    let Some(server) = RedisServer::spawn() else {
        return;
    };
    let (sim, p) = sim::start().await;
    let req = ChatRequest::new("chat").user("hello").max_tokens(100);
    let used = modelgate::tokens::estimate_request(&req);
    // Each answer costs exactly its worst case, `w`.
    sim.set_default(Scenario::text("ok").with_usage(used, 100));
    let w = (used + 100) as f64 / 1e6;
    let store =
        RedisStore::connect(RedisOptions::new(server.url()).sync_interval(Duration::from_secs(60)))
            .await
            .unwrap();
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p.clone(), "big").price(ModelPrice::new(1.0, 1.0))],
        )
        .route(
            "cheap",
            [Target::new(p, "small").price(ModelPrice::new(1.0, 1.0))],
        )
        .budget(
            Budget::new("chat", w * 10.0)
                .for_route("chat")
                .soft_limit(0.5)
                .downgrade_to("cheap"),
        )
        .state_store(store)
        .build()
        .unwrap();

    let before = scripts_run(&server.url()).await;
    let mut models = Vec::new();
    for _ in 0..8 {
        let answer = router.chat(&req).await.unwrap();
        router.flush().await.unwrap();
        models.push(answer.model);
    }
    // Five answers reach the soft limit (half of ten); the sixth request sees it.
    assert_eq!(
        models,
        ["big", "big", "big", "big", "big", "small", "small", "small"]
    );
    let scripts = scripts_run(&server.url()).await - before;
    // A reservation and a settlement per request (on "chat", then on "cheap", which no budget
    // covers, none), and one read of the counters the first time: never one per request.
    assert_eq!(scripts, 5 * 2 + 1, "scripts run for 8 requests");
}
