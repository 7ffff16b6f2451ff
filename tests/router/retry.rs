//! Retries: only what can succeed, Retry-After to the millisecond, budgets per target and per
//! request, and nested routers that do not multiply them.

use std::sync::Arc;

use modelgate::router::{RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ErrorKind};
use tokio::time::Instant;

use crate::sim::{self, count, models, ms, secs, steps};

#[tokio::test(start_paused = true)]
async fn a_400_is_never_retried() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .retry(
            RetryPolicy::default()
                .with_max_retries(5)
                .with_max_total_retries(5),
        )
        .build()
        .unwrap();
    sim.set_default(Scenario::error(
        400,
        r#"{"error":{"message":"unknown parameter","type":"invalid_request_error","param":"x","code":"unknown_parameter"}}"#,
    ));
    let started = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.message(), "unknown parameter");
    assert_eq!(sim.request_count(), 1);
    assert_eq!(started.elapsed(), ms(0), "no backoff before giving up");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_obeyed_to_the_millisecond() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .build()
        .unwrap();
    sim.enqueue(Scenario::rate_limited(ms(1_500)));
    let started = Instant::now();
    let call = tokio::spawn({
        let router = router.clone();
        async move { router.chat(&ChatRequest::new("chat").user("x")).await }
    });
    // One millisecond before the Retry-After runs out, nothing has been sent again.
    tokio::time::sleep(ms(1_499)).await;
    assert_eq!(sim.request_count(), 1);
    let r = call.await.unwrap().unwrap();
    assert_eq!(started.elapsed(), ms(1_500));
    assert_eq!(sim.request_count(), 2);
    let route = r.route.unwrap();
    assert_eq!(
        steps(&route),
        [
            ("model-a", R::First, O::Failed(ErrorKind::RateLimited)),
            ("model-a", R::Retry, O::Success),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_whole_seconds_and_on_a_503() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .build()
        .unwrap();
    sim.enqueue(Scenario::error(503, "{}").with_header("retry-after", "3"));
    let started = Instant::now();
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), secs(3));
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
    // Longer than `max_retry_after`: no wait, the next target serves at once.
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::default().with_max_retry_after(secs(1)))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::error(503, "{}").with_header("retry-after-ms", "1001"),
    );
    let started = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), ms(0));
    assert_eq!(r.model, "model-b");

    // Past the request's deadline: the request fails at once instead of sleeping into it.
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .build()
        .unwrap();
    sim.enqueue(Scenario::rate_limited(ms(2_000)));
    let started = Instant::now();
    let err = router
        .chat(&ChatRequest::new("chat").user("x").timeout(ms(2_000)))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), ms(0));
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(err.retry_after(), Some(ms(2_000)));
    assert_eq!(sim.request_count(), 1);

    // Just inside the deadline: waited for, exactly (once the first rest is over).
    tokio::time::sleep(ms(2_000)).await;
    sim.enqueue(Scenario::rate_limited(ms(1_999)));
    let started = Instant::now();
    router
        .chat(&ChatRequest::new("chat").user("x").timeout(ms(2_000)))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), ms(1_999));
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_falls_back_on_the_first_retry() {
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
    let started = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        started.elapsed(),
        ms(0),
        "no wait: another target was ready"
    );
    assert_eq!(r.model, "model-b");
    assert_eq!(r.route.as_ref().unwrap().target_index, Some(1));
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::RateLimited)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(models(&sim), ["model-a", "model-b"]);
}

#[tokio::test(start_paused = true)]
async fn backoff_without_a_hint_stays_within_full_jitter_bounds() {
    let (sim, p) = sim::start().await;
    let base = ms(400);
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .retry(RetryPolicy::default().with_base_delay(base))
        .seed(42)
        .build()
        .unwrap();
    sim.enqueue(Scenario::overloaded());
    sim.enqueue(Scenario::overloaded());
    let started = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    // Two waits: at most `base`, then at most `2·base`.
    assert!(started.elapsed() <= base * 3, "{:?}", started.elapsed());
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-a", R::Retry, O::Failed(ErrorKind::Overloaded)),
            ("model-a", R::Retry, O::Success),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_counted_per_target_and_per_request() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
                Target::new(p.clone(), "model-c"),
                Target::new(p.clone(), "model-d"),
            ],
        )
        .retry(
            RetryPolicy::default()
                .with_max_retries(2)
                .with_max_total_retries(3)
                .with_base_delay(ms(10)),
        )
        .build()
        .unwrap();
    sim.set_default(Scenario::overloaded());
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    // a: first + 2 retries (per-target cap); b: first + 1 retry (request cap reached);
    // c and d: first attempts only.
    assert_eq!(
        models(&sim),
        [
            "model-a", "model-a", "model-a", "model-b", "model-b", "model-c", "model-d"
        ]
    );
    assert_eq!(err.attempts().len(), 7);
}

#[tokio::test(start_paused = true)]
async fn nested_routers_do_not_multiply_retries() {
    let (sim, p) = sim::start().await;
    let inner = Router::builder()
        .name("inner")
        .route("pool", [Target::new(p.clone(), "model-a")])
        .retry(RetryPolicy::default().with_base_delay(ms(10)))
        .build()
        .unwrap();
    let inner: Arc<dyn ChatProvider> = Arc::new(inner);
    let outer = Router::builder()
        .name("outer")
        .route(
            "chat",
            [
                Target::new(inner.clone(), "pool"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .route("only", [Target::new(inner, "pool")])
        .retry(RetryPolicy::default().with_base_delay(ms(10)))
        .build()
        .unwrap();
    sim.set_default(Scenario::overloaded());
    sim.enqueue_for_model("model-b", Scenario::text("from b"));

    let r = outer
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "from b");
    // The inner router retried its target twice; the outer router did not retry the inner one.
    assert_eq!(count(&sim, "model-a"), 3);
    assert_eq!(count(&sim, "model-b"), 1);
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("pool", R::First, O::Failed(ErrorKind::AllTargetsFailed)),
            ("model-b", R::Fallback, O::Success),
        ]
    );

    let err = outer
        .chat(&ChatRequest::new("only").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(count(&sim, "model-a"), 6, "3 more, not 9");
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(err.attempts()[0].attempts().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn x_should_retry_true_makes_a_caller_error_retryable() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p, "model-a")])
        .retry(RetryPolicy::default().with_base_delay(ms(0)))
        .build()
        .unwrap();
    let conflict = r#"{"error":{"message":"try again","type":"invalid_request_error","param":null,"code":null}}"#;
    // As the official SDKs read it: the provider's `true` retries a 400 it would not otherwise.
    sim.enqueue(Scenario::error(400, conflict).with_header("x-should-retry", "true"));
    sim.enqueue(Scenario::text("ok"));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "ok");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::InvalidRequest)),
            ("model-a", R::Retry, O::Success),
        ]
    );

    // `false` still wins over a status that would be retried.
    sim.enqueue(Scenario::error(500, "{}").with_header("x-should-retry", "false"));
    router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(sim.request_count(), 3, "not retried");
}
