//! The overall deadline: never exceeded, whether by a slow attempt, a retry wait, a rest, or a
//! stream's body.

use futures::StreamExt;
use modelgate::router::{HedgePolicy, RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, Delta, ErrorKind};
use tokio::time::{Duration, Instant};

use crate::sim::{self, ms, secs, steps};

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_cut_at_the_deadline() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .timeout(secs(3))
        .build()
        .unwrap();
    sim.set_default(Scenario::text("late").with_first_byte_delay(secs(100)));
    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), secs(3));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(sim.request_count(), 1);

    // The request's own timeout wins over the router's.
    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x").timeout(ms(1_250)))
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), ms(1_250));
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn a_per_target_timeout_moves_on_within_the_deadline() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").timeout(secs(2)),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .timeout(secs(10))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("late").with_first_byte_delay(secs(5)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("b").with_first_byte_delay(secs(1)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(3));
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Timeout)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn no_retry_starts_that_could_not_begin_before_the_deadline() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .build()
        .unwrap();
    sim.enqueue(
        Scenario::error(503, "{}")
            .with_header("retry-after", "5")
            .with_first_byte_delay(secs(1)),
    );
    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x").timeout(secs(5)))
        .await
        .unwrap_err();
    assert_eq!(
        t0.elapsed(),
        secs(1),
        "gave up at once instead of sleeping into the deadline"
    );
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_streams_body_ends_at_the_deadline_even_after_earlier_attempts() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    // a fails after 2 s; b starts streaming at once but sends a delta a second.
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(secs(2)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("a long and slow answer").with_chunk_delay(secs(1)),
    );
    let t0 = Instant::now();
    let mut stream = router
        .chat_stream(&ChatRequest::new("chat").user("x").timeout(secs(5)))
        .await
        .unwrap();
    assert_eq!(
        t0.elapsed(),
        secs(4),
        "2 s on a, then b's role chunk and first text"
    );
    let mut text = String::new();
    let err = loop {
        match stream.next().await {
            Some(Ok(Delta::Text(t))) => text.push_str(&t),
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("the stream outlived its deadline and ended cleanly"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), secs(5));
    assert_eq!(text, "a lo");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_exceeded_whatever_fails() {
    // Random stories of slow, failing, rate-limited, stalled targets with hedging on: every
    // request ends by its deadline.
    let mut rng = fastrand::Rng::with_seed(2026);
    for round in 0..40 {
        let (sim, p) = sim::start().await;
        let router = Router::builder()
            .route(
                "chat",
                [
                    Target::new(p.clone(), "model-a"),
                    Target::new(p.clone(), "model-b").timeout(secs(rng.u64(1..6))),
                    Target::new(p.clone(), "model-c"),
                ],
            )
            .hedge(HedgePolicy::fixed(ms(rng.u64(100..3_000))))
            .first_delta_timeout(secs(rng.u64(1..8)))
            .seed(round)
            .build()
            .unwrap();
        for model in ["model-a", "model-b", "model-c"] {
            for _ in 0..4 {
                let delay = Duration::from_millis(rng.u64(0..6_000));
                let scenario = match rng.u8(0..6) {
                    0 => Scenario::overloaded(),
                    1 => Scenario::rate_limited(Duration::from_millis(rng.u64(1..8_000))),
                    2 => Scenario::text("stalls").with_stall_after(rng.usize(0..4)),
                    3 => Scenario::text("slow chunks").with_chunk_delay(ms(rng.u64(1..2_000))),
                    4 => Scenario::error(500, "{}"),
                    _ => Scenario::text("fine"),
                };
                sim.enqueue_for_model(model, scenario.with_first_byte_delay(delay));
            }
        }
        sim.set_default(Scenario::text("late").with_first_byte_delay(secs(60)));
        let deadline = ms(rng.u64(500..12_000));
        let req = ChatRequest::new("chat").user("x").timeout(deadline);
        let t0 = Instant::now();
        if rng.bool() {
            let _ = router.chat(&req).await;
        } else if let Ok(mut stream) = router.chat_stream(&req).await {
            while let Some(Ok(_)) = stream.next().await {}
        }
        let took = t0.elapsed();
        assert!(took <= deadline, "round {round}: {took:?} > {deadline:?}");
    }
}
