//! `Router::stats()`: requests, errors by kind, latency and time-to-first-delta percentiles,
//! output tokens and their rate, spend and calls in flight per target, and its table; and the
//! cost a router puts on its answers and on each attempt.

use std::sync::Arc;

use futures::StreamExt;
use modelgate::pricing::{ModelPrice, PriceTable};
use modelgate::router::{HedgePolicy, Percentiles, RetryPolicy, Router, Target, TargetReport};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R, Usage};
use modelgate::{ChatProvider, ChatRequest, ChatStream, Delta, ErrorKind};
use tokio::time::Duration;

use crate::sim::{self, ms, secs, steps};

fn two_targets(p: &Arc<dyn ChatProvider>) -> modelgate::router::RouterBuilder {
    Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
}

/// Asserts `actual` is within 2 % of `expected`.
fn assert_close(actual: Duration, expected: Duration, what: &str) {
    let error = actual.as_secs_f64() / expected.as_secs_f64() - 1.0;
    assert!(
        error.abs() <= 0.02,
        "{what}: {actual:?}, expected {expected:?}"
    );
}

fn assert_percentiles(p: Option<Percentiles>, p50: u64, p95: u64, p99: u64, what: &str) {
    let p = p.unwrap_or_else(|| panic!("{what}: no percentiles"));
    assert_close(p.p50, ms(p50), &format!("{what} p50"));
    assert_close(p.p95, ms(p95), &format!("{what} p95"));
    assert_close(p.p99, ms(p99), &format!("{what} p99"));
}

fn report<'a>(stats: &'a modelgate::router::RouterStats, model: &str) -> &'a TargetReport {
    stats
        .targets
        .iter()
        .find(|t| t.model == model)
        .unwrap_or_else(|| panic!("no report for {model}"))
}

fn errors_of(t: &TargetReport, kind: ErrorKind) -> u64 {
    t.errors
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

/// Reads a stream to its end, failing the test on an error; returns its text.
async fn drain(stream: &mut ChatStream) -> String {
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let Delta::Text(t) = item.expect("the stream ends cleanly") {
            text.push_str(&t);
        }
    }
    text
}

#[tokio::test(start_paused = true)]
async fn latency_percentiles_of_a_known_sample() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    // 100 chat calls on a taking 1..=100 ms, in a scrambled order.
    for i in 0..100u64 {
        let delay = (i * 37) % 100 + 1;
        sim.enqueue_for_model(
            "model-a",
            Scenario::text("a").with_first_byte_delay(ms(delay)),
        );
    }
    let req = ChatRequest::new("chat").user("x");
    for _ in 0..100 {
        router.chat(&req).await.unwrap();
    }
    // 20 streams on b taking 10, 20, …, 200 ms to their first delta.
    for i in 1..=20u64 {
        sim.enqueue_for_model(
            "model-b",
            Scenario::text("b").with_first_byte_delay(ms(10 * i)),
        );
    }
    let req_b = ChatRequest::new("model-b").user("x");
    for _ in 0..20 {
        let mut s = router.chat_stream(&req_b).await.unwrap();
        drain(&mut s).await;
    }

    let stats = router.stats();
    assert_eq!(stats.targets.len(), 2);
    let a = report(&stats, "model-a");
    assert_eq!(a.provider, "openai");
    assert_eq!(a.requests, 100);
    assert_eq!(a.error_count(), 0);
    assert_percentiles(a.latency, 50, 95, 99, "chat latency");
    assert_eq!(a.first_delta, None, "no streams on a");
    let b = report(&stats, "model-b");
    assert_eq!(b.requests, 20);
    // Ranks ⌈0.5·20⌉ = 10, ⌈0.95·20⌉ = 19, ⌈0.99·20⌉ = 20.
    assert_percentiles(b.first_delta, 100, 190, 200, "time to first delta");
    // The whole stream took as long: nothing was delayed after the first delta.
    assert_percentiles(b.latency, 100, 190, 200, "stream latency");

    // Percentiles cover the last one to two minutes: after three quiet minutes, none.
    tokio::time::sleep(secs(180)).await;
    let stats = router.stats();
    assert_eq!(stats.targets[0].latency, None);
    assert_eq!(stats.targets[0].requests, 100, "counts are kept");
}

#[tokio::test(start_paused = true)]
async fn requests_and_errors_are_counted_per_target_and_kind() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    let req = ChatRequest::new("chat").user("x");
    for _ in 0..3 {
        sim.enqueue_for_model("model-a", Scenario::overloaded());
    }
    sim.enqueue_for_model("model-a", Scenario::error(500, "{}"));
    for _ in 0..4 {
        assert_eq!(router.chat(&req).await.unwrap().model, "model-b");
    }
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(1)));
    assert_eq!(router.chat(&req).await.unwrap().model, "model-b");
    // Resting: skipped without a call, which is no request of a's.
    let r = router.chat(&req).await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap())[0],
        ("model-a", R::First, O::Skipped(ErrorKind::RateLimited))
    );
    tokio::time::sleep(secs(1)).await;
    for _ in 0..2 {
        assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    }

    let stats = router.stats();
    let a = &stats.targets[0];
    assert_eq!(
        (a.provider.as_str(), a.model.as_str()),
        ("openai", "model-a")
    );
    assert_eq!(a.requests, 7);
    assert_eq!(errors_of(a, ErrorKind::Overloaded), 3);
    assert_eq!(errors_of(a, ErrorKind::Server), 1);
    assert_eq!(errors_of(a, ErrorKind::RateLimited), 1);
    assert_eq!(a.errors.len(), 3, "{:?}", a.errors);
    assert_eq!(a.error_count(), 5);
    let b = &stats.targets[1];
    assert_eq!(b.model, "model-b");
    assert_eq!(b.requests, 6);
    assert!(b.errors.is_empty());
    assert_eq!(b.error_count(), 0);
    assert_eq!(a.circuit, None, "no circuit breaker");
    assert_eq!(a.in_flight + b.in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn output_tokens_and_their_rate() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    // 10 chat answers of 50 output tokens, 100 ms each: 500 tokens in 1 s.
    for _ in 0..10 {
        sim.enqueue_for_model(
            "model-a",
            Scenario::text("a")
                .with_usage(10, 50)
                .with_first_byte_delay(ms(100)),
        );
    }
    for _ in 0..10 {
        router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
    }
    // 4 streams of 30 tokens, 250 ms each: 120 tokens in 1 s.
    for _ in 0..4 {
        sim.enqueue_for_model(
            "model-b",
            Scenario::text("bbbb")
                .with_usage(10, 30)
                .with_first_byte_delay(ms(250)),
        );
    }
    for _ in 0..4 {
        let mut s = router
            .chat_stream(&ChatRequest::new("model-b").user("x"))
            .await
            .unwrap();
        drain(&mut s).await;
    }
    // An answer without usage counts no tokens and no time.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a").with_first_byte_delay(secs(10)),
    );
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert!(r.usage.is_some(), "the simulator estimates usage");

    let stats = router.stats();
    let (a, b) = (&stats.targets[0], &stats.targets[1]);
    let estimated = r.usage.unwrap().output_tokens;
    assert_eq!(a.output_tokens, 500 + estimated);
    let rate = a.output_tokens_per_second.unwrap();
    let expected = (500 + estimated) as f64 / 11.0;
    assert!(
        (rate - expected).abs() < expected * 0.01,
        "a: {rate} tokens/s"
    );
    assert_eq!(b.output_tokens, 120);
    let rate = b.output_tokens_per_second.unwrap();
    assert!((rate - 120.0).abs() < 1.2, "b: {rate} tokens/s");
}

#[tokio::test(start_paused = true)]
async fn no_answers_no_rate() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let stats = router.stats();
    assert_eq!(stats.targets[0].output_tokens, 0);
    assert_eq!(stats.targets[0].output_tokens_per_second, None);
    assert_eq!(stats.targets[0].spent_usd, 0.0);
    assert_eq!(stats.targets[0].latency, None);
}

#[tokio::test(start_paused = true)]
async fn spend_is_the_sum_of_what_the_answers_cost() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").price(ModelPrice::new(2.0, 8.0)),
                Target::new(p.clone(), "model-b").price(ModelPrice::new(0.5, 1.5)),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let mut spent = [0.0f64; 2];
    let mut answers = 0u32;
    for i in 1..=10u64 {
        if i % 4 == 0 {
            // a fails: nothing is spent on it, and b serves.
            sim.enqueue_for_model("model-a", Scenario::overloaded());
        }
        sim.enqueue(Scenario::text("x").with_usage(100 * i, 10 * i));
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        let cost = r.cost.expect("a priced answer has a cost");
        assert!(cost > 0.0);
        spent[usize::from(r.model == "model-b")] += cost;
        answers += 1;
    }
    // Streams are counted once they end.
    for _ in 0..2 {
        sim.enqueue(Scenario::text("streamed").with_usage(1_000, 100));
        let mut s = router
            .chat_stream(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        drain(&mut s).await;
        let cost = s.cost().expect("a priced stream has a cost once it ends");
        assert!((cost - (1_000.0 * 2.0 + 100.0 * 8.0) / 1e6).abs() < 1e-12);
        spent[0] += cost;
        answers += 1;
    }
    let stats = router.stats();
    // Spend is kept in nano-dollars, each answer rounded up: at most 1e-9 off per answer.
    let tolerance = f64::from(answers) * 1e-9;
    for (report, spent) in stats.targets.iter().zip(spent) {
        assert!(
            (report.spent_usd - spent).abs() <= tolerance,
            "{}: spent {} vs answers' {}",
            report.model,
            report.spent_usd,
            spent
        );
    }
    assert!(spent[1] > 0.0, "b served the fallbacks");
}

#[tokio::test(start_paused = true)]
async fn in_flight_counts_a_stream_until_it_ends_or_is_dropped() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    let in_flight = || router.stats().targets[0].in_flight;
    let req = ChatRequest::new("chat").user("x");
    assert_eq!(in_flight(), 0);

    // Read to its end.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("one two three").with_chunk_chars(4),
    );
    let mut s = router.chat_stream(&req).await.unwrap();
    assert_eq!(in_flight(), 1);
    assert!(s.next().await.unwrap().is_ok());
    assert_eq!(in_flight(), 1, "still open");
    assert_eq!(drain(&mut s).await, "two three");
    assert_eq!(in_flight(), 0, "ended");
    drop(s);
    assert_eq!(in_flight(), 0);

    // Dropped half-way.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("one two three").with_stall_after(2),
    );
    let s = router.chat_stream(&req).await.unwrap();
    assert_eq!(in_flight(), 1);
    drop(s);
    assert_eq!(in_flight(), 0, "dropped");

    // Failed half-way.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("one two three").with_error_event_at(3),
    );
    let mut s = router.chat_stream(&req).await.unwrap();
    assert_eq!(in_flight(), 1);
    let mut failed = false;
    while let Some(item) = s.next().await {
        failed |= item.is_err();
    }
    assert!(failed);
    assert_eq!(in_flight(), 0, "failed");

    // Two at once, and a chat call while it waits for its answer.
    let s1 = router.chat_stream(&req).await.unwrap();
    let s2 = router.chat_stream(&req).await.unwrap();
    assert_eq!(in_flight(), 2);
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("slow").with_first_byte_delay(secs(3)),
    );
    let call = {
        let router = router.clone();
        let req = req.clone();
        tokio::spawn(async move { router.chat(&req).await })
    };
    sim::eventually("the chat call is in flight", || in_flight() == 3).await;
    drop(s1);
    assert_eq!(in_flight(), 2);
    call.await.unwrap().unwrap();
    assert_eq!(in_flight(), 1);
    drop(s2);
    assert_eq!(in_flight(), 0);
    assert_eq!(router.stats().targets[1].in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn the_stats_table_has_a_header_and_one_aligned_row_per_target() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").price(ModelPrice::new(1.0, 2.0)),
                Target::new(p.clone(), "a-much-longer-model-name"),
            ],
        )
        .route("other", [Target::new(p.clone(), "model-c")])
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..3 {
        sim.enqueue_for_model(
            "model-a",
            Scenario::text("a")
                .with_usage(1_000, 500)
                .with_first_byte_delay(ms(120)),
        );
    }
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    for _ in 0..4 {
        router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
    }
    let stats = router.stats();
    assert_eq!(stats.targets.len(), 3, "every target, even unused");
    let table = stats.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "a header and a row per target:\n{table}");
    let header = lines[0];
    let columns = [
        "requests", "errors", "p50", "p95", "ttft p50", "tokens/s", "spend",
    ];
    assert!(header.starts_with("target "), "{header}");
    // Rows follow the order targets were listed in.
    assert!(lines[1].starts_with("openai/model-a "), "{table}");
    assert!(
        lines[2].starts_with("openai/a-much-longer-model-name "),
        "{table}"
    );
    assert!(lines[3].starts_with("openai/model-c "), "{table}");
    // Every line is as wide as the others, and each column's cells end where its title does.
    let width = header.chars().count();
    let mut from = 0;
    let ends: Vec<usize> = columns
        .iter()
        .map(|c| {
            let at = header[from..].find(c).expect("column title") + from + c.len();
            from = at;
            at
        })
        .collect();
    for line in &lines[1..] {
        assert_eq!(line.chars().count(), width, "{table}");
        for &end in &ends {
            let bytes = line.as_bytes();
            assert_ne!(
                bytes[end - 1],
                b' ',
                "a cell ends at column {end}:\n{table}"
            );
            if end < bytes.len() {
                assert_eq!(bytes[end], b' ', "cells are apart:\n{table}");
            }
        }
        assert_eq!(line.split_whitespace().count(), 8, "{line}");
    }
    // The numbers that do not depend on time.
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[1], "4", "requests");
    assert_eq!(row[2], "1", "errors");
    assert_eq!(row[3], "120ms", "p50");
    assert_eq!(row[5], "-", "no streams: no time to first delta");
    assert_eq!(row[7], "$0.006000", "3 × (1000 × $1 + 500 × $2) / 1M");
    let unused: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(unused[1..], ["0", "0", "-", "-", "-", "-", "$0.000000"]);
}

// ---------------------------------------------------------------------------------------------
// Cost on router answers
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_routed_chat_answer_and_its_attempts_carry_their_cost() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").price(ModelPrice::new(1.0, 2.0)),
                Target::new(p.clone(), "model-b").price(ModelPrice::new(3.0, 4.0)),
                Target::new(p.clone(), "model-unpriced"),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-b", Scenario::text("b").with_usage(1_000, 500));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let expected = (1_000.0 * 3.0 + 500.0 * 4.0) / 1e6;
    assert_eq!(r.model, "model-b");
    assert!((r.cost.unwrap() - expected).abs() < 1e-12, "{:?}", r.cost);
    let route = r.route.unwrap();
    assert_eq!(route.attempts.len(), 2);
    assert_eq!(route.attempts[0].cost, None, "a failed call costs nothing");
    assert_eq!(route.attempts[1].cost, r.cost);

    // Cached prompt tokens are priced as the usage says (here at the input price: none set).
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a")
            .with_usage(2_000, 100)
            .with_cached_tokens(500),
    );
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let expected = ModelPrice::new(1.0, 2.0).cost(&r.usage.unwrap());
    assert!((r.cost.unwrap() - expected).abs() < 1e-12);
    assert_eq!(r.route.unwrap().attempts[0].cost, r.cost);

    // No price: no cost.
    let r = router
        .chat(&ChatRequest::new("model-unpriced").user("x"))
        .await
        .unwrap();
    assert_eq!(r.cost, None);
    assert_eq!(r.route.unwrap().attempts[0].cost, None);
}

#[tokio::test(start_paused = true)]
async fn a_targets_own_price_wins_over_the_price_table() {
    // gpt-4o-mini is in the built-in table; the target's own price is what its calls cost.
    let (sim, p) = sim::start().await;
    let own = ModelPrice::new(100.0, 200.0);
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p.clone(), "gpt-4o-mini").price(own.clone())],
        )
        .build()
        .unwrap();
    assert!(
        PriceTable::builtin()
            .lookup("openai", "gpt-4o-mini")
            .is_some()
    );
    sim.enqueue(Scenario::text("x").with_usage(1_000, 1_000));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let expected = own.cost(&r.usage.unwrap());
    assert!(
        (r.cost.unwrap() - expected).abs() < 1e-12,
        "{:?} vs {expected}",
        r.cost
    );
    sim.enqueue(Scenario::text("x").with_usage(1_000, 1_000));
    let mut s = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    drain(&mut s).await;
    assert!(
        (s.cost().unwrap() - expected).abs() < 1e-12,
        "{:?}",
        s.cost()
    );
    let spent = router.stats().targets[0].spent_usd;
    assert!((spent - 2.0 * expected).abs() < 1e-8, "{spent}");
}

#[tokio::test(start_paused = true)]
async fn a_hedge_loser_is_cancelled_with_the_cost_of_its_prompt() {
    let sim = modelgate::simulator::Simulator::start().await.unwrap();
    let price = ModelPrice::new(5.0, 15.0);
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(sim::openai(&sim), "model-a").price(price.clone()),
                Target::new(sim::openai(&sim), "model-b").price(ModelPrice::new(1.0, 1.0)),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(200)))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("slow").with_first_byte_delay(secs(30)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("fast")
            .with_usage(40, 10)
            .with_first_byte_delay(ms(50)),
    );
    let req = ChatRequest::new("chat").user("a question of some length for the estimate");
    let r = router.chat(&req).await.unwrap();
    assert_eq!(r.text(), "fast");
    let route = r.route.as_ref().unwrap();
    assert_eq!(
        steps(route),
        [
            ("model-a", R::First, O::Cancelled),
            ("model-b", R::Hedge, O::Success),
        ]
    );
    let prompt = modelgate::tokens::estimate_request(&req);
    assert!(prompt > 0);
    let loser = route.attempts[0]
        .cost
        .expect("the loser's prompt is priced");
    assert!(loser > 0.0);
    assert!((loser - price.estimate(prompt, 0)).abs() < 1e-12, "{loser}");
    let winner = (40.0 + 10.0) / 1e6;
    assert!((route.attempts[1].cost.unwrap() - winner).abs() < 1e-12);
    assert_eq!(
        r.cost, route.attempts[1].cost,
        "the answer costs the winner's call"
    );

    // An unpriced loser has no cost.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(sim::openai(&sim), "model-c"),
                Target::new(sim::openai(&sim), "model-d"),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(200)))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-c",
        Scenario::text("slow").with_first_byte_delay(secs(30)),
    );
    let r = router.chat(&req).await.unwrap();
    let route = r.route.unwrap();
    assert_eq!(route.attempts[0].outcome, O::Cancelled);
    assert_eq!(route.attempts[0].cost, None);
}

#[tokio::test(start_paused = true)]
async fn a_routed_streams_cost_is_known_once_it_ends() {
    let (sim, p) = sim::start().await;
    let mut prices = PriceTable::empty();
    prices.insert("openai", "model-table", ModelPrice::new(2.0, 6.0));
    let own = ModelPrice::new(3.0, 9.0);
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-table"),
                Target::new(p.clone(), "model-own").price(own.clone()),
            ],
        )
        .prices(Arc::new(prices))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let usage = Usage::new;
    // Priced from the router's table.
    sim.enqueue_for_model(
        "model-table",
        Scenario::text("some text").with_usage(1_000, 200),
    );
    let mut s = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(s.cost(), None, "no usage yet");
    assert_eq!(
        s.route().unwrap().attempts[0].cost,
        None,
        "not known when it opens"
    );
    drain(&mut s).await;
    let expected = ModelPrice::new(2.0, 6.0).cost(&usage(1_000, 200));
    assert!(
        (s.cost().unwrap() - expected).abs() < 1e-12,
        "{:?}",
        s.cost()
    );
    let table_spent = router.stats().targets[0].spent_usd;
    assert!((table_spent - expected).abs() <= 1e-9, "{table_spent}");

    // Priced by the target's own price.
    sim.enqueue_for_model("model-table", Scenario::overloaded());
    sim.enqueue_for_model("model-own", Scenario::text("more").with_usage(500, 100));
    let mut s = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(s.route().unwrap().attempts[1].model, "model-own");
    drain(&mut s).await;
    let expected = own.cost(&usage(500, 100));
    assert!(
        (s.cost().unwrap() - expected).abs() < 1e-12,
        "{:?}",
        s.cost()
    );
    let own_spent = router.stats().targets[1].spent_usd;
    assert!((own_spent - expected).abs() <= 1e-9, "{own_spent}");
    // Folded into a response, the same cost.
    sim.enqueue_for_model("model-table", Scenario::text("x").with_usage(1_000, 200));
    let r = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    let expected = ModelPrice::new(2.0, 6.0).cost(&usage(1_000, 200));
    assert!((r.cost.unwrap() - expected).abs() < 1e-12);
}
