//! The router's resilience policies at work against the built-in fault-injecting simulator:
//! a 429 answered by fallback, an overloaded provider opening its circuit, a slow provider beaten
//! by a hedge, and a stream that stalls before its first delta served by the next provider.
//!
//! ```sh
//! cargo run --example resilience
//! ```
//!
//! Runs in about a second of real time and needs no API key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use modelgate::providers::{DeepSeek, OpenAi};
use modelgate::router::{CircuitBreaker, HedgePolicy, RetryPolicy, Router, Target};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::types::RouteInfo;
use modelgate::{ChatProvider, ChatRequest, Delta};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start().await?;
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key("sk-demo")
            .base_url(sim.base_url(Wire::OpenAi))
            .build()?,
    );
    let deepseek: Arc<dyn ChatProvider> = Arc::new(
        DeepSeek::builder()
            .api_key("sk-demo")
            .base_url(sim.base_url(Wire::DeepSeek))
            .build()?,
    );
    let req = |route: &str| ChatRequest::new(route).user("Why is the sky blue?");

    // 1. A rate-limited provider: the router falls back at once, and the provider rests until its
    //    Retry-After has passed while the other one serves.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(openai.clone(), "gpt-4o-mini"),
                Target::new(deepseek.clone(), "deepseek-chat"),
            ],
        )
        .build()?;
    sim.enqueue_for_model(
        "gpt-4o-mini",
        Scenario::rate_limited(Duration::from_secs(20)),
    );
    heading("1. a 429 answered by fallback");
    let answer = router.chat(&req("chat")).await?;
    show(answer.route.as_ref());
    let answer = router.chat(&req("chat")).await?;
    println!("   the next request, while openai rests:");
    show(answer.route.as_ref());

    // 2. An overloaded provider: after 3 failures out of 3 its circuit opens, and later requests
    //    skip it without a call until the cool-down has passed.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(openai.clone(), "gpt-4o"),
                Target::new(deepseek.clone(), "deepseek-chat"),
            ],
        )
        .retry(RetryPolicy::none())
        .circuit_breaker(
            CircuitBreaker::default()
                .with_min_requests(3)
                .with_cool_down(Duration::from_secs(30)),
        )
        .build()?;
    for _ in 0..3 {
        sim.enqueue_for_model("gpt-4o", Scenario::overloaded());
    }
    heading("2. an overloaded provider opens its circuit");
    for i in 1..=4 {
        let answer = router.chat(&req("chat")).await?;
        println!(
            "   request {i}: served by {}, openai circuit {:?}",
            answer.provider,
            router.circuit_status("chat", 0).expect("circuit on")
        );
        if i == 4 {
            show(answer.route.as_ref());
        }
    }

    // 3. A slow provider: after 150 ms without an answer, a hedge races the next provider; the
    //    first answer wins and the slow request is cancelled.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(openai.clone(), "gpt-4.1"),
                Target::new(deepseek.clone(), "deepseek-chat"),
            ],
        )
        .hedge(HedgePolicy::fixed(Duration::from_millis(150)))
        .build()?;
    sim.enqueue_for_model(
        "gpt-4.1",
        Scenario::text("slow").with_first_byte_delay(Duration::from_secs(10)),
    );
    heading("3. a slow provider beaten by a hedge");
    let started = Instant::now();
    let answer = router.chat(&req("chat")).await?;
    println!(
        "   answered by {} in {} ms",
        answer.provider,
        started.elapsed().as_millis()
    );
    show(answer.route.as_ref());

    // 4. A stream that stalls before its first delta: the router holds streams until their first
    //    delta arrives, so it can still fall back, and the caller sees one whole answer.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(openai.clone(), "gpt-4o-mini-stream"),
                Target::new(deepseek.clone(), "deepseek-chat"),
            ],
        )
        .retry(RetryPolicy::none())
        .first_delta_timeout(Duration::from_millis(300))
        .build()?;
    sim.enqueue_for_model(
        "gpt-4o-mini-stream",
        Scenario::text("never sent").with_stall_after(1),
    );
    sim.enqueue_for_model(
        "deepseek-chat",
        Scenario::text("Rayleigh scattering: air scatters blue light more than red."),
    );
    heading("4. a stalled stream served by the next provider");
    let mut stream = router.chat_stream(&req("chat")).await?;
    show(stream.route());
    print!("   ");
    while let Some(delta) = stream.next().await {
        if let Delta::Text(t) = delta? {
            print!("{t}");
        }
    }
    println!();
    Ok(())
}

fn heading(title: &str) {
    println!("\n{title}");
}

fn show(route: Option<&RouteInfo>) {
    let Some(route) = route else {
        return;
    };
    for (i, a) in route.attempts.iter().enumerate() {
        println!(
            "   {}. {:<8} {:<22} {:<9} {:<24} {:>5} ms",
            i + 1,
            a.provider,
            a.model,
            format!("{:?}", a.reason),
            format!("{:?}", a.outcome),
            a.latency.as_millis()
        );
    }
}
