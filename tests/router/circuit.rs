//! Circuit breaking per target: opens on health failures, rejects without a call, half-opens after
//! the cool-down, and closes (or opens again) on its probe. Caller errors and rate limits never
//! count.

use modelgate::router::{CircuitBreaker, CircuitStatus, HedgePolicy, RetryPolicy, Router, Target};
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
    let status = || router.circuit_status("chat", 0);
    let req = ChatRequest::new("chat").user("x");
    let ask = || router.chat(&req);
    assert_eq!(status(), Some(CircuitStatus::Closed));
    assert_eq!(router.circuit_status("chat", 2), None);

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
        router.circuit_status("chat", 0),
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
    assert_eq!(slow.circuit_status("chat", 0), Some(CircuitStatus::Open));
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
        router.circuit_status("chat", 0),
        Some(CircuitStatus::HalfOpen)
    );
    // The next request may probe at once rather than wait for the lost one.
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "You said: x");
    assert_eq!(
        router.circuit_status("chat", 0),
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
        router.circuit_status("chat", 0),
        Some(CircuitStatus::Closed),
        "the first delta counted as a success"
    );
    let err = stream.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    // The cut after the first delta counts as a health failure: 1 of 2 outcomes, the threshold.
    assert_eq!(router.circuit_status("chat", 0), Some(CircuitStatus::Open));
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

#[tokio::test(start_paused = true)]
async fn a_half_open_circuit_is_decided_by_its_probe_alone() {
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
    let status = || router.circuit_status("chat", 0);
    let req = ChatRequest::new("chat").user("x");
    // A long stream, admitted while the circuit is closed: its first delta is a success, and it is
    // cut long after the circuit has opened and half-opened.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abcdefghij")
            .with_chunk_chars(1)
            .with_chunk_delay(secs(2))
            .with_truncate_after(9),
    );
    let long = router.chat_stream(&req).await.unwrap();
    // A slow call, admitted while closed too, that succeeds while the circuit is half-open.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("late").with_first_byte_delay(secs(18)),
    );
    let spawn_chat = |text: &str| {
        let router = router.clone();
        let req = ChatRequest::new("chat").user(text);
        tokio::spawn(async move { router.chat(&req).await })
    };
    let slow = spawn_chat("slow");
    sim::eventually("the slow call arrived", || count(&sim, "model-a") == 2).await;
    // One health failure opens it (one success, one failure: the threshold).
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    router.chat(&req).await.unwrap();
    assert_eq!(status(), Some(CircuitStatus::Open));
    let opened = Instant::now();
    tokio::time::sleep_until(opened + secs(10)).await;
    assert_eq!(status(), Some(CircuitStatus::HalfOpen));
    // The probe goes out, and takes its time.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("probe").with_first_byte_delay(secs(10)),
    );
    let probe = spawn_chat("probe");
    sim::eventually("the probe arrived", || count(&sim, "model-a") == 4).await;

    // Meanwhile the stream admitted before is cut: that is not the probe's outcome.
    let err = long.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    assert_eq!(
        status(),
        Some(CircuitStatus::HalfOpen),
        "reopened by an old stream"
    );
    // Nor does the old slow call's success close it.
    assert_eq!(slow.await.unwrap().unwrap().text(), "late");
    assert_eq!(
        status(),
        Some(CircuitStatus::HalfOpen),
        "closed by an old call"
    );

    // The probe decides.
    let r = probe.await.unwrap().unwrap();
    assert_eq!(r.text(), "probe");
    assert_eq!(status(), Some(CircuitStatus::Closed));
}

#[tokio::test(start_paused = true)]
async fn the_requests_own_deadline_is_not_a_health_failure() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p.clone(), "model-a")])
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    let status = || router.circuit_status("chat", 0);
    // The caller's short deadline cuts a call the target would have answered.
    sim.enqueue(Scenario::text("late").with_first_byte_delay(secs(5)));
    let err = router
        .chat(&ChatRequest::new("chat").user("x").timeout(secs(1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(status(), Some(CircuitStatus::Closed));

    // A stream's body cut by the deadline, after its first delta, does not count either.
    sim.enqueue(
        Scenario::text("abcdefgh")
            .with_chunk_chars(1)
            .with_chunk_delay(ms(400)),
    );
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x").timeout(secs(1)))
        .await
        .unwrap();
    let err = stream.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(status(), Some(CircuitStatus::Closed));

    // The target's own timeout still does.
    let own = Router::builder()
        .route("chat", [Target::new(p, "model-a").timeout(secs(1))])
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue(Scenario::text("late").with_first_byte_delay(secs(5)));
    own.chat(&ChatRequest::new("chat").user("x").timeout(secs(3)))
        .await
        .unwrap_err();
    assert_eq!(own.circuit_status("chat", 0), Some(CircuitStatus::Open));
}

/// Answers with `inner`'s answer, but only `delay` after the call started: a provider whose
/// answer lands on a timer, at an instant a test can line up with a hedge.
struct OnTime {
    inner: std::sync::Arc<dyn ChatProvider>,
    delay: std::time::Duration,
}

#[async_trait::async_trait]
impl ChatProvider for OnTime {
    fn name(&self) -> &str {
        "on-time"
    }

    async fn chat(&self, req: &ChatRequest) -> Result<modelgate::ChatResponse, modelgate::Error> {
        let until = Instant::now() + self.delay;
        let answer = self.inner.chat(req).await;
        tokio::time::sleep_until(until).await;
        answer
    }

    async fn chat_stream(
        &self,
        req: &ChatRequest,
    ) -> Result<modelgate::ChatStream, modelgate::Error> {
        self.inner.chat_stream(req).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_admitted_as_a_hedge_that_never_runs_is_handed_back() {
    let (sim, p) = sim::start().await;
    let primary: std::sync::Arc<dyn ChatProvider> = std::sync::Arc::new(OnTime {
        inner: p.clone(),
        delay: ms(200),
    });
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(primary, "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .hedge(HedgePolicy::fixed(ms(200)).with_max_hedged_fraction(1.0))
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    let status = || router.circuit_status("chat", 1);
    // The primary answers at the very instant its hedge is due. Whichever the race sees first,
    // b's probe must be free afterwards; the order is the runtime's choice, so try it often.
    for round in 0..16 {
        sim.enqueue_for_model("model-b", Scenario::overloaded());
        router
            .chat(&ChatRequest::new("model-b").user("open"))
            .await
            .unwrap_err();
        assert_eq!(status(), Some(CircuitStatus::Open));
        tokio::time::sleep(secs(10)).await;
        assert_eq!(status(), Some(CircuitStatus::HalfOpen));

        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        assert_eq!(r.model, "model-a");
        // b may be probed at once.
        let r = router
            .chat(&ChatRequest::new("model-b").user("probe"))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(r.model, "model-b");
        assert_eq!(status(), Some(CircuitStatus::Closed));
    }
}

#[tokio::test(start_paused = true)]
async fn targets_sharing_a_model_are_told_apart_by_position() {
    let sim = modelgate::simulator::Simulator::start().await.unwrap();
    // The same model on two providers (here two connection pools to one simulator).
    let (pa, pb) = (sim::openai(&sim), sim::openai(&sim));
    let router = Router::builder()
        .route("chat", [Target::new(pa, "gpt"), Target::new(pb, "gpt")])
        .retry(RetryPolicy::none())
        .circuit_breaker(breaker().with_min_requests(1))
        .build()
        .unwrap();
    sim.enqueue(Scenario::overloaded());
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(router.circuit_status("chat", 0), Some(CircuitStatus::Open));
    assert_eq!(
        router.circuit_status("chat", 1),
        Some(CircuitStatus::Closed)
    );
    let statuses = router.target_statuses("chat").unwrap();
    assert_eq!(statuses.len(), 2);
    assert_eq!(
        statuses.iter().map(|s| s.circuit).collect::<Vec<_>>(),
        [Some(CircuitStatus::Open), Some(CircuitStatus::Closed)]
    );
    assert!(
        statuses
            .iter()
            .all(|s| s.model == "gpt" && s.provider == "openai")
    );

    // The reset addresses the first alone.
    router.reset_target("chat", 0).unwrap();
    assert_eq!(
        router.circuit_status("chat", 0),
        Some(CircuitStatus::Closed)
    );
}
