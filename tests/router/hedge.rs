//! Hedging: a slow attempt raced by the next target after a fixed or adaptive delay; the first
//! answer wins, the loser is cancelled and its connection closed, and a budget caps extra load.

use futures::StreamExt;
use modelgate::router::{HedgePolicy, RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, Delta, ErrorKind};
use tokio::time::Instant;

use crate::sim::{self, count, ms, secs, steps};

#[tokio::test(start_paused = true)]
async fn a_hedge_wins_and_the_losers_connection_is_closed() {
    let sim = modelgate::simulator::Simulator::start().await.unwrap();
    // Separate connection pools, so the connections counted belong to one target each.
    let (pa, pb) = (sim::openai(&sim), sim::openai(&sim));
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(pa, "model-a"), Target::new(pb, "model-b")],
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
        Scenario::text("fast").with_first_byte_delay(ms(50)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(250));
    assert_eq!(r.text(), "fast");
    let route = r.route.unwrap();
    assert_eq!(route.target_index, Some(1));
    assert_eq!(
        steps(&route),
        [
            ("model-a", R::First, O::Cancelled),
            ("model-b", R::Hedge, O::Success),
        ]
    );
    assert_eq!(route.attempts[0].latency, ms(250));
    assert_eq!(route.attempts[1].latency, ms(50));

    // The loser's request was abandoned: the simulator sees its connection closed, while the
    // winner's stays open in its pool for the next request.
    assert_eq!(sim.connections_accepted(), 2);
    sim::settle().await;
    assert_eq!(
        sim.connections_open(),
        1,
        "the loser's connection is still open"
    );
    assert_eq!(t0.elapsed(), ms(250), "checked without moving the clock");
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_first_answer_wins_even_when_it_is_the_primary() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(100)))
        .build()
        .unwrap();
    // A fast primary: no hedge at all.
    sim.enqueue_for_model("model-a", Scenario::text("a").with_first_byte_delay(ms(99)));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-a", R::First, O::Success)]
    );
    assert_eq!(count(&sim, "model-b"), 0);

    // A hedged primary that still answers first: the hedge is the loser.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a").with_first_byte_delay(ms(150)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("b").with_first_byte_delay(ms(500)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(150));
    assert_eq!(r.text(), "a");
    assert_eq!(r.route.as_ref().unwrap().target_index, Some(0));
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Success),
            ("model-b", R::Hedge, O::Cancelled),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_primary_leaves_the_race_to_the_hedge() {
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
        .hedge(HedgePolicy::fixed(ms(100)))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(ms(200)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("b").with_first_byte_delay(ms(400)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(500));
    assert_eq!(r.text(), "b");
    let route = r.route.unwrap();
    assert_eq!(route.target_index, Some(1));
    assert_eq!(route.attempts.len(), 2);
    assert_eq!(route.attempts[1].reason, R::Hedge);
    assert_eq!(route.attempts[1].outcome, O::Success);
    // b served once: the hedge, not a second fallback call.
    assert_eq!(count(&sim, "model-b"), 1);
}

#[tokio::test(start_paused = true)]
async fn adaptive_hedging_waits_for_data_then_hedges_at_the_p95() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .hedge(
            HedgePolicy::adaptive(0.95)
                .with_min_data_points(20)
                .with_max_hedged_fraction(1.0),
        )
        .build()
        .unwrap();
    // Without data: no hedge, however slow.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a").with_first_byte_delay(secs(2)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(2));
    assert_eq!(r.route.as_ref().unwrap().attempts.len(), 1);
    // 19 more at 100 ms: 20 data points, the p95 is 100 ms.
    for _ in 0..19 {
        sim.enqueue_for_model(
            "model-a",
            Scenario::text("a").with_first_byte_delay(ms(100)),
        );
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        assert_eq!(r.route.as_ref().unwrap().attempts.len(), 1);
    }
    assert_eq!(count(&sim, "model-b"), 0);

    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a").with_first_byte_delay(secs(10)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let hedged_after = t0.elapsed();
    // The histogram reports the middle of a bucket at most 1/32 wide.
    assert!(
        hedged_after >= ms(98) && hedged_after <= ms(104),
        "hedged after {hedged_after:?}"
    );
    assert_eq!(r.model, "model-b");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Cancelled),
            ("model-b", R::Hedge, O::Success),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_hedge_budget_caps_extra_load_at_the_configured_share() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(10)))
        .build()
        .unwrap();
    // Every request to a is slow enough to be hedged.
    sim.set_default(Scenario::text("a").with_first_byte_delay(secs(1)));
    for _ in 0..100 {
        sim.enqueue_for_model("model-b", Scenario::text("b"));
    }
    let mut hedged = 0;
    for _ in 0..100 {
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        if r.route
            .unwrap()
            .attempts
            .iter()
            .any(|a| a.reason == R::Hedge)
        {
            hedged += 1;
        }
    }
    // One hedge in hand at the start, then 10 % of requests.
    assert_eq!(hedged, 11);
    assert_eq!(count(&sim, "model-b"), 11);
    assert_eq!(count(&sim, "model-a"), 100);
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_hedged_before_its_first_delta() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(300)))
        .build()
        .unwrap();
    // a starts its stream at once but its first content is slow.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("slow answer").with_chunk_delay(secs(5)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("fast answer").with_chunk_delay(ms(10)),
    );
    let t0 = Instant::now();
    let mut stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        t0.elapsed(),
        ms(320),
        "the first delta of b: the role chunk then text"
    );
    let route = stream.route().unwrap().clone();
    assert_eq!(
        steps(&route),
        [
            ("model-a", R::First, O::Cancelled),
            ("model-b", R::Hedge, O::Success),
        ]
    );
    let mut text = String::new();
    while let Some(d) = stream.next().await {
        if let Delta::Text(t) = d.unwrap() {
            text.push_str(&t);
        }
    }
    assert_eq!(text, "fast answer");
}

#[tokio::test(start_paused = true)]
async fn max_hedges_caps_the_hedges_of_one_request() {
    let (sim, p) = sim::start().await;
    let targets = [
        Target::new(p.clone(), "model-a"),
        Target::new(p.clone(), "model-b"),
        Target::new(p.clone(), "model-c"),
    ];
    let script = || {
        sim.enqueue_for_model(
            "model-a",
            Scenario::text("a").with_first_byte_delay(secs(10)),
        );
        sim.enqueue_for_model(
            "model-b",
            Scenario::text("b").with_first_byte_delay(secs(5)),
        );
        sim.enqueue_for_model("model-c", Scenario::text("c").with_first_byte_delay(ms(50)));
    };

    // Two hedges: b after 100 ms, c after 200 ms; c answers first.
    let router = Router::builder()
        .route("chat", targets.clone())
        .hedge(
            HedgePolicy::fixed(ms(100))
                .with_max_hedges(2)
                .with_max_hedged_fraction(1.0),
        )
        .build()
        .unwrap();
    script();
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(250));
    assert_eq!(r.text(), "c");
    assert_eq!(r.route.as_ref().unwrap().target_index, Some(2));
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Cancelled),
            ("model-b", R::Hedge, O::Cancelled),
            ("model-c", R::Hedge, O::Success),
        ]
    );

    // One hedge (the default): c is never raced, and b, the faster of two, wins.
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
                Target::new(p.clone(), "model-c"),
            ],
        )
        .hedge(HedgePolicy::fixed(ms(100)).with_max_hedged_fraction(1.0))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a").with_first_byte_delay(secs(10)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("b").with_first_byte_delay(secs(5)),
    );
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(5_100));
    assert_eq!(r.text(), "b");
    assert_eq!(count(&sim, "model-c"), 0);

    // The hedge is per request, not per attempt: after a failed, hedged first attempt the
    // retry is not hedged again.
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(ms(300)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::overloaded().with_first_byte_delay(ms(100)),
    );
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("a again").with_first_byte_delay(secs(1)),
    );
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::default().with_base_delay(ms(0)))
        .hedge(HedgePolicy::fixed(ms(100)).with_max_hedged_fraction(1.0))
        .build()
        .unwrap();
    let before_b = count(&sim, "model-b");
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "a again");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            (
                "model-a",
                R::First,
                O::Failed(modelgate::ErrorKind::Overloaded)
            ),
            (
                "model-b",
                R::Hedge,
                O::Failed(modelgate::ErrorKind::Overloaded)
            ),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-b"), before_b + 1);
}

/// A route of `models` on one simulator provider, hedged after 100 ms on every request.
fn hedged_router(
    p: &std::sync::Arc<dyn ChatProvider>,
    models: &[&str],
    retry: RetryPolicy,
) -> Router {
    Router::builder()
        .route("chat", models.iter().map(|m| Target::new(p.clone(), *m)))
        .retry(retry)
        .hedge(HedgePolicy::fixed(ms(100)).with_max_hedged_fraction(1.0))
        .build()
        .unwrap()
}

const AUTH_BODY: &str = r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

/// Scripts the race where a's 503 asks for 1 s and its hedge b's 429 for 500 ms.
fn script_retry_after_race(sim: &modelgate::simulator::Simulator) {
    // a fails at 200 ms asking for 1 s; b, hedged at 100 ms, fails last (at 400 ms) asking for
    // 500 ms.
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded()
            .with_header("retry-after", "1")
            .with_first_byte_delay(ms(200)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::rate_limited(ms(500)).with_first_byte_delay(ms(300)),
    );
    sim.enqueue_for_model("model-a", Scenario::text("a again"));
}

#[tokio::test(start_paused = true)]
async fn each_racer_keeps_its_own_retry_after() {
    let (sim, p) = sim::start().await;
    let router = hedged_router(&p, &["model-a", "model-b"], RetryPolicy::default());
    script_retry_after_race(&sim);
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    // a's own Retry-After, counted from its own failure: 200 ms + 1 s.
    assert_eq!(t0.elapsed(), ms(1_200));
    assert_eq!(r.text(), "a again");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::RateLimited)),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-b"), 1);
}

#[tokio::test(start_paused = true)]
async fn each_stream_racer_keeps_its_own_retry_after() {
    let (sim, p) = sim::start().await;
    let router = hedged_router(&p, &["model-a", "model-b"], RetryPolicy::default());
    script_retry_after_race(&sim);
    let t0 = Instant::now();
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(1_200));
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::RateLimited)),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(stream.into_response().await.unwrap().text(), "a again");
}

/// Scripts a race where a fails retryably and its hedge b answers 401 first.
fn script_auth_hedge(sim: &modelgate::simulator::Simulator) {
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(ms(200)),
    );
    sim.enqueue_for_model("model-b", Scenario::error(401, AUTH_BODY));
    sim.enqueue_for_model("model-a", Scenario::text("a again"));
}

#[tokio::test(start_paused = true)]
async fn a_hedges_caller_error_does_not_end_a_request_its_primary_can_still_serve() {
    let (sim, p) = sim::start().await;
    let router = hedged_router(
        &p,
        &["model-a", "model-b"],
        RetryPolicy::default().with_base_delay(ms(0)),
    );
    script_auth_hedge(&sim);
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.text(), "a again");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::Auth)),
            ("model-a", R::Retry, O::Success),
        ]
    );

    // The same race on a stream.
    script_auth_hedge(&sim);
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::Auth)),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-b"), 2);
}

#[tokio::test(start_paused = true)]
async fn once_its_primary_is_out_a_hedges_caller_error_surfaces_as_without_hedging() {
    let (sim, p) = sim::start().await;
    let router = hedged_router(&p, &["model-a", "model-b", "model-c"], RetryPolicy::none());
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(ms(200)),
    );
    sim.enqueue_for_model("model-b", Scenario::error(401, AUTH_BODY));
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    // Without the hedge, a would have fallen back to b and met the same 401.
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(count(&sim, "model-b"), 1);
    assert_eq!(count(&sim, "model-c"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_target_raced_as_a_hedge_is_not_called_again_as_a_fallback() {
    let (sim, p) = sim::start().await;
    let router = hedged_router(&p, &["model-a", "model-b", "model-c"], RetryPolicy::none());
    let script = || {
        sim.enqueue_for_model(
            "model-a",
            Scenario::overloaded().with_first_byte_delay(ms(200)),
        );
        sim.enqueue_for_model(
            "model-b",
            Scenario::error(500, "{}").with_first_byte_delay(ms(50)),
        );
        sim.enqueue_for_model("model-c", Scenario::text("c"));
    };
    script();
    let t0 = Instant::now();
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(200));
    assert_eq!(r.text(), "c");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::Server)),
            ("model-c", R::Fallback, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-b"), 1);

    // A stream too.
    script();
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Hedge, O::Failed(ErrorKind::Server)),
            ("model-c", R::Fallback, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-b"), 2);
}
