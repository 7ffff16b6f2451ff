//! Circuit breaking per target: opens on health failures, rejects without a call, half-opens after
//! the cool-down, and closes (or opens again) on its probe. Caller errors and rate limits never
//! count.

use modelgate::router::{CircuitBreaker, CircuitStatus, RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ErrorKind};
use tokio::time::Instant;

use crate::sim::{self, count, ms, secs, steps};

fn breaker() -> CircuitBreaker {
    CircuitBreaker::default()
        .with_min_requests(2)
        .with_failure_rate_threshold(0.5)
        .with_cool_down(secs(10))
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opens_rejects_half_opens_and_closes() {
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
        .circuit_breaker(breaker())
        .build()
        .unwrap();
    let status = || router.circuit_status("chat", "model-a");
    let req = ChatRequest::new("chat").user("x");
    let ask = || router.chat(&req);
    assert_eq!(status(), Some(CircuitStatus::Closed));
    assert_eq!(router.circuit_status("chat", "nope"), None);

    // Two health failures out of two: open.
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-a", Scenario::error(500, "{}"));
    assert_eq!(ask().await.unwrap().model, "model-b");
    assert_eq!(status(), Some(CircuitStatus::Closed), "below min_requests");
    assert_eq!(ask().await.unwrap().model, "model-b");
    assert_eq!(status(), Some(CircuitStatus::Open));
    let opened = Instant::now();

    // Open: rejected without a call.
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::CircuitOpen)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    tokio::time::sleep_until(opened + ms(9_999)).await;
    assert_eq!(status(), Some(CircuitStatus::Open));
    ask().await.unwrap();
    assert_eq!(count(&sim, "model-a"), 2, "an open circuit sends nothing");

    // After the cool-down: half-open; the probe fails, so it opens again.
    tokio::time::sleep_until(opened + secs(10)).await;
    assert_eq!(status(), Some(CircuitStatus::HalfOpen));
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap())[0].2,
        O::Failed(ErrorKind::Overloaded)
    );
    assert_eq!(status(), Some(CircuitStatus::Open));
    assert_eq!(count(&sim, "model-a"), 3);
    let reopened = Instant::now();

    // Half-open again; this probe succeeds and the circuit closes.
    tokio::time::sleep_until(reopened + secs(10)).await;
    assert_eq!(status(), Some(CircuitStatus::HalfOpen));
    let r = ask().await.unwrap();
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-a", R::First, O::Success)]
    );
    assert_eq!(status(), Some(CircuitStatus::Closed));
    ask().await.unwrap();
    assert_eq!(count(&sim, "model-a"), 5);
}

#[tokio::test(start_paused = true)]
async fn a_single_target_with_an_open_circuit_fails_fast() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue(Scenario::overloaded());
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), ms(0));
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(err.attempts()[0].kind(), ErrorKind::CircuitOpen);
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_health_failures_count_never_400_or_429() {
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
        .circuit_breaker(
            breaker()
                .with_min_requests(1)
                .with_failure_rate_threshold(0.1),
        )
        .build()
        .unwrap();
    let bad =
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
    for _ in 0..5 {
        sim.enqueue_for_model("model-a", Scenario::error(400, bad));
        let err = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        sim.enqueue_for_model("model-a", Scenario::rate_limited(ms(1)));
        router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        tokio::time::sleep(ms(1)).await;
    }
    assert_eq!(
        router.circuit_status("chat", "model-a"),
        Some(CircuitStatus::Closed)
    );
    assert_eq!(count(&sim, "model-a"), 10);

    // A single timeout (a health failure) opens it at this threshold.
    let slow = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").timeout(secs(1)),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("late").with_first_byte_delay(secs(5)),
    );
    let r = slow
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap())[0].2,
        O::Failed(ErrorKind::Timeout)
    );
    assert_eq!(
        slow.circuit_status("chat", "model-a"),
        Some(CircuitStatus::Open)
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_the_half_open_slot() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p.clone(), "model-a")])
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue(Scenario::overloaded());
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    tokio::time::sleep(secs(10)).await;
    // The probe is dropped before it answers.
    sim.enqueue(Scenario::text("slow").with_first_byte_delay(secs(5)));
    let probe =
        tokio::time::timeout(secs(1), router.chat(&ChatRequest::new("chat").user("x"))).await;
    assert!(probe.is_err());
    assert_eq!(
        router.circuit_status("chat", "model-a"),
        Some(CircuitStatus::HalfOpen)
    );
    // The next request may probe at once rather than wait for the lost one.
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "You said: x");
    assert_eq!(
        router.circuit_status("chat", "model-a"),
        Some(CircuitStatus::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_by_a_failed_attempt_stops_its_retries() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::default().with_base_delay(ms(0)))
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    // The retry meets the open circuit: skipped once, then the next target serves.
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-a", R::Retry, O::Skipped(ErrorKind::CircuitOpen)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-a"), 1);
}

#[tokio::test(start_paused = true)]
async fn streams_that_break_after_their_first_delta_open_the_circuit() {
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
        .circuit_breaker(breaker())
        .build()
        .unwrap();
    let req = ChatRequest::new("chat").user("x");
    // The first delta arrives, so the stream is released; then it is cut.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abcdefgh")
            .with_chunk_chars(2)
            .with_truncate_after(2),
    );
    let stream = router.chat_stream(&req).await.unwrap();
    assert_eq!(stream.route().unwrap().attempts[0].model, "model-a");
    assert_eq!(
        router.circuit_status("chat", "model-a"),
        Some(CircuitStatus::Closed),
        "the first delta counted as a success"
    );
    let err = stream.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    // The cut after the first delta counts as a health failure: 1 of 2 outcomes, the threshold.
    assert_eq!(
        router.circuit_status("chat", "model-a"),
        Some(CircuitStatus::Open)
    );
    let stream = router.chat_stream(&req).await.unwrap();
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::CircuitOpen)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-a"), 1);
}
