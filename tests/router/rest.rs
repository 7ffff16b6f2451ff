//! Rate-limit rest: a target told to wait is left alone until then while others serve; when every
//! target rests, a request waits for the earliest if that fits its deadline, else fails fast.

use modelgate::router::{CircuitStatus, RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ErrorKind};
use tokio::time::Instant;

use crate::sim::{self, count, ms, secs, steps};

#[tokio::test(start_paused = true)]
async fn a_rate_limited_target_rests_while_others_serve() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(5)));
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("1"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-b");

    // While it rests, the next requests skip it without a call.
    for at in [1_000, 4_999] {
        tokio::time::sleep_until(t0 + ms(at)).await;
        let r = router
            .chat(&ChatRequest::new("chat").user("2"))
            .await
            .unwrap();
        assert_eq!(r.model, "model-b");
        assert_eq!(
            steps(r.route.as_ref().unwrap()),
            [
                ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
                ("model-b", R::Fallback, O::Success),
            ]
        );
        assert_eq!(r.route.as_ref().unwrap().attempts[0].latency, ms(0));
    }
    assert_eq!(count(&sim, "model-a"), 1);

    // Once the Retry-After has passed, it serves again.
    tokio::time::sleep_until(t0 + secs(5)).await;
    let r = router
        .chat(&ChatRequest::new("chat").user("3"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-a", R::First, O::Success)]
    );
    assert_eq!(count(&sim, "model-a"), 2);
    assert_eq!(count(&sim, "model-b"), 3);
}

#[tokio::test(start_paused = true)]
async fn when_every_target_rests_a_request_waits_for_the_earliest() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .build()
        .unwrap();
    // a asks for 2 s, b for 5 s: the request waits for a, the earlier, not for the last one met.
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(2)));
    sim.enqueue_for_model("model-b", Scenario::rate_limited(secs(5)));
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(2));
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::RateLimited)),
            ("model-b", R::Fallback, O::Failed(ErrorKind::RateLimited)),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-a"), 2);
    assert_eq!(count(&sim, "model-b"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resting_target_is_waited_for_after_the_others_failed() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(
            RetryPolicy::default()
                .with_max_retries(1)
                .with_base_delay(ms(100)),
        )
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(3)));
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    // a rests; b is down. The request skips a, spends b's retries, then waits for a.
    sim.enqueue_for_model("model-b", Scenario::overloaded());
    sim.enqueue_for_model("model-b", Scenario::overloaded());
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(3));
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
            ("model-b", R::Fallback, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Retry, O::Failed(ErrorKind::Overloaded)),
            ("model-a", R::Retry, O::Success),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_arriving_while_every_target_rests_waits_without_calling() {
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
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(6)));
    sim.enqueue_for_model("model-b", Scenario::rate_limited(secs(2)));
    // With retries off, the request that met the 429s fails at once.
    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(t0.elapsed(), ms(0));
    assert_eq!(err.retry_after(), Some(secs(2)));
    assert_eq!(sim.request_count(), 2);

    // A new request sees both resting: it waits for b, the earliest, then calls it once.
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(2));
    assert_eq!(r.model, "model-b");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
            ("model-b", R::Fallback, O::Skipped(ErrorKind::RateLimited)),
            ("model-b", R::Retry, O::Success),
        ]
    );
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn when_every_target_rests_past_the_deadline_a_request_fails_fast() {
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
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(30)));
    sim.enqueue_for_model("model-b", Scenario::rate_limited(secs(20)));
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(sim.request_count(), 2);

    let t0 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x").timeout(secs(10)))
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), ms(0), "failed fast");
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    let kinds: Vec<_> = err.attempts().iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [ErrorKind::RateLimited, ErrorKind::RateLimited]);
    // The caller learns when to come back.
    assert_eq!(err.retry_after(), Some(secs(20)));
    assert_eq!(
        sim.request_count(),
        2,
        "nothing was sent to a resting target"
    );

    // Without a deadline, a rest longer than `max_retry_after` (60 s) is not waited for either.
    let router = Router::builder()
        .route("chat", [Target::new(p.clone(), "model-c")])
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim.enqueue_for_model("model-c", Scenario::rate_limited(secs(61)));
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    let t1 = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(t1.elapsed(), ms(0));
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_rest_is_shared_by_every_route_listing_the_target() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "one",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .route(
            "two",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-c"),
            ],
        )
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(5)));
    router
        .chat(&ChatRequest::new("one").user("x"))
        .await
        .unwrap();
    let r = router
        .chat(&ChatRequest::new("two").user("x"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-c");
    assert_eq!(count(&sim, "model-a"), 1);
}

/// Asks `router` once at `at` and returns the steps of the answer.
async fn ask_at(router: &Router, at: Instant) -> Vec<(String, R, O)> {
    tokio::time::sleep_until(at).await;
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    steps(r.route.as_ref().unwrap())
        .into_iter()
        .map(|(m, r, o)| (m.to_owned(), r, o))
        .collect()
}

fn step(model: &str, reason: R, outcome: O) -> (String, R, O) {
    (model.to_owned(), reason, outcome)
}

#[tokio::test(start_paused = true)]
async fn a_rest_never_outlasts_the_cap_whatever_the_header_says() {
    let (sim, p) = sim::start().await;
    let two = || {
        [
            Target::new(p.clone(), "model-a"),
            Target::new(p.clone(), "model-b"),
        ]
    };
    // The default cap: five minutes, not the hour asked for.
    let router = Router::builder().route("chat", two()).build().unwrap();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(3_600)));
    let t0 = Instant::now();
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let skipped = [
        step("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
        step("model-b", R::Fallback, O::Success),
    ];
    assert_eq!(ask_at(&router, t0 + ms(299_999)).await, skipped);
    assert_eq!(
        ask_at(&router, t0 + secs(300)).await,
        [step("model-a", R::First, O::Success)]
    );

    // A configured cap.
    let router = Router::builder()
        .route("chat", two())
        .max_rest(secs(20))
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(3_600)));
    let t0 = Instant::now();
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(ask_at(&router, t0 + ms(19_999)).await, skipped);
    assert_eq!(
        ask_at(&router, t0 + secs(20)).await,
        [step("model-a", R::First, O::Success)]
    );
}

const QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

#[tokio::test(start_paused = true)]
async fn an_exhausted_quota_takes_the_target_out_of_rotation() {
    let (sim, p) = sim::start().await;
    let two = || {
        [
            Target::new(p.clone(), "model-a"),
            Target::new(p.clone(), "model-b"),
        ]
    };
    let router = Router::builder().route("chat", two()).build().unwrap();
    sim.enqueue_for_model("model-a", Scenario::error(429, QUOTA));
    let t0 = Instant::now();
    assert_eq!(
        ask_at(&router, t0).await,
        [
            step("model-a", R::First, O::Failed(ErrorKind::QuotaExceeded)),
            step("model-b", R::Fallback, O::Success),
        ]
    );
    // Out of rotation for the default 60 s, without a call.
    let skipped = [
        step("model-a", R::First, O::Skipped(ErrorKind::QuotaExceeded)),
        step("model-b", R::Fallback, O::Success),
    ];
    assert_eq!(ask_at(&router, t0 + secs(1)).await, skipped);
    assert_eq!(ask_at(&router, t0 + ms(59_999)).await, skipped);
    assert_eq!(count(&sim, "model-a"), 1);
    assert_eq!(
        ask_at(&router, t0 + secs(60)).await,
        [step("model-a", R::First, O::Success)]
    );

    // A configured time; a Retry-After on the quota error wins over it.
    let router = Router::builder()
        .route("chat", two())
        .quota_rest(secs(10))
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::error(402, "{}"));
    let t0 = Instant::now();
    ask_at(&router, t0).await;
    assert_eq!(ask_at(&router, t0 + ms(9_999)).await, skipped);
    assert_eq!(
        ask_at(&router, t0 + secs(10)).await,
        [step("model-a", R::First, O::Success)]
    );
    sim.enqueue_for_model(
        "model-a",
        Scenario::error(429, QUOTA).with_header("retry-after", "3"),
    );
    let t0 = Instant::now();
    ask_at(&router, t0).await;
    assert_eq!(ask_at(&router, t0 + ms(2_999)).await, skipped);
    assert_eq!(
        ask_at(&router, t0 + secs(3)).await,
        [step("model-a", R::First, O::Success)]
    );

    // When every target is out of quota, a request fails at once rather than wait.
    let lone = Router::builder()
        .route("chat", [Target::new(p.clone(), "model-c")])
        .build()
        .unwrap();
    sim.enqueue_for_model("model-c", Scenario::error(429, QUOTA));
    lone.chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    let t1 = Instant::now();
    let err = lone
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(t1.elapsed(), ms(0));
    assert_eq!(err.attempts()[0].kind(), ErrorKind::QuotaExceeded);
    assert_eq!(count(&sim, "model-c"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_operator_reset_ends_a_rest_and_closes_a_circuit() {
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
            modelgate::router::CircuitBreaker::default()
                .with_min_requests(1)
                .with_cool_down(secs(60)),
        )
        .build()
        .unwrap();
    let t0 = Instant::now();
    sim.enqueue_for_model("model-a", Scenario::rate_limited(secs(30)));
    ask_at(&router, t0).await;
    let status = router.target_statuses("chat").unwrap();
    assert_eq!(status[0].model, "model-a");
    assert_eq!(status[0].rest_remaining, Some(secs(30)));
    assert_eq!(status[1].rest_remaining, None);
    router.reset_target("chat", 0).unwrap();
    assert_eq!(
        router.target_statuses("chat").unwrap()[0].rest_remaining,
        None
    );
    assert_eq!(
        ask_at(&router, t0).await,
        [step("model-a", R::First, O::Success)]
    );

    sim.enqueue_for_model("model-a", Scenario::overloaded());
    ask_at(&router, t0).await;
    assert_eq!(router.circuit_status("chat", 0), Some(CircuitStatus::Open));
    router.reset_target("chat", 0).unwrap();
    assert_eq!(
        router.circuit_status("chat", 0),
        Some(CircuitStatus::Closed)
    );
    assert_eq!(
        ask_at(&router, t0).await,
        [step("model-a", R::First, O::Success)]
    );

    // Addresses that name no target fail.
    assert_eq!(
        router.reset_target("chat", 2).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        router.reset_target("nope", 0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(router.target_statuses("nope").is_none());
}
