//! Helpers for router tests against the fault-injecting simulator.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use modelgate::ChatProvider;
use modelgate::providers::OpenAi;
use modelgate::simulator::{Simulator, Wire};
use modelgate::types::{AttemptOutcome, AttemptReason, RouteInfo};

/// A simulator and an OpenAI provider pointed at it, with its own connection pool so that
/// connection counts belong to this test alone.
pub async fn start() -> (Simulator, Arc<dyn ChatProvider>) {
    let sim = Simulator::start().await.expect("simulator starts");
    let provider = openai(&sim);
    (sim, provider)
}

/// Another OpenAI provider on `sim`, with a connection pool of its own.
pub fn openai(sim: &Simulator) -> Arc<dyn ChatProvider> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    Arc::new(
        OpenAi::builder()
            .api_key("sk-test")
            .base_url(sim.base_url(Wire::OpenAi))
            .http_client(client)
            .build()
            .expect("provider builds"),
    )
}

/// The model of every request the simulator received, in arrival order.
pub fn models(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .map(|r| r.model.unwrap_or_default())
        .collect()
}

/// How many requests asked for `model`.
pub fn count(sim: &Simulator, model: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.model.as_deref() == Some(model))
        .count()
}

/// Each attempt as (model, reason, outcome).
pub fn steps(route: &RouteInfo) -> Vec<(&str, AttemptReason, AttemptOutcome)> {
    route
        .attempts
        .iter()
        .map(|a| (a.model.as_str(), a.reason, a.outcome))
        .collect()
}

/// Lets the simulator's connection tasks and the client's pool notice closed sockets, without
/// moving the paused clock.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Waits until `condition` holds, yielding and then sleeping 1 ms of (paused) tokio time between
/// checks; panics after 200 rounds.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        settle().await;
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting until {what}");
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
