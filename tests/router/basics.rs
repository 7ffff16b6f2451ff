//! Routing by alias and by model, per-target overrides, which errors surface at once and which
//! fall back, context-length moves, and the attempt records.

use modelgate::router::{RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ErrorKind};
use serde_json::json;

use crate::sim::{self, models, steps};

const BAD_REQUEST: &str =
    r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
const BAD_KEY: &str = r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
const FILTERED: &str = r#"{"error":{"message":"flagged","type":"invalid_request_error","param":null,"code":"content_filter"}}"#;
const TOO_LONG: &str = r#"{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
const NO_MODEL: &str = r#"{"error":{"message":"no such model","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
const NO_QUOTA: &str = r#"{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

#[tokio::test]
async fn routes_by_alias_and_by_direct_model_name() {
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

    let r = router
        .chat(&ChatRequest::new("chat").user("one"))
        .await
        .unwrap();
    assert_eq!(r.text(), "You said: one");
    assert_eq!(r.model, "model-a");
    let route = r.route.unwrap();
    assert_eq!(route.route, "chat");
    assert_eq!(route.target_index, Some(0));
    assert_eq!(steps(&route), [("model-a", R::First, O::Success)]);

    // A model named directly goes to the target serving it.
    let r = router
        .chat(&ChatRequest::new("model-b").user("two"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-b");
    assert_eq!(r.route.unwrap().route, "model-b");
    assert_eq!(models(&sim), ["model-a", "model-b"]);

    // Anything else is not found, and nothing is sent.
    let err = router
        .chat(&ChatRequest::new("model-z").user("three"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = router
        .chat_stream(&ChatRequest::new("nope").user("four"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn a_direct_model_name_is_retried_but_never_falls_back() {
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
                .with_base_delay(sim::ms(0)),
        )
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    let err = router
        .chat(&ChatRequest::new("model-a").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(models(&sim), ["model-a", "model-a"]);
}

#[tokio::test]
async fn per_target_overrides_reach_the_wire() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").max_tokens(11),
                Target::new(p.clone(), "model-b")
                    .max_tokens(222)
                    .temperature(0.25)
                    .extra("service_tier", json!("flex"))
                    .extra("prompt_cache_key", json!("router-test")),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    let req = ChatRequest::new("chat")
        .user("hi")
        .max_tokens(5)
        .temperature(0.5)
        .extra("seed_tag", json!(7));
    let r = router.chat(&req).await.unwrap();
    assert_eq!(r.model, "model-b");

    let sent = sim.requests();
    assert_eq!(sent.len(), 2);
    let a = &sent[0].body;
    assert_eq!(a["model"], "model-a");
    assert_eq!(a["max_completion_tokens"], 11);
    assert_eq!(a["temperature"], 0.5);
    assert_eq!(a["seed_tag"], 7);
    assert!(a.get("service_tier").is_none());
    let b = &sent[1].body;
    assert_eq!(b["model"], "model-b");
    assert_eq!(b["max_completion_tokens"], 222);
    assert_eq!(b["temperature"], 0.25);
    assert_eq!(b["service_tier"], "flex");
    assert_eq!(b["prompt_cache_key"], "router-test");
    assert_eq!(b["seed_tag"], 7);
    assert_eq!(b["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn caller_errors_surface_at_once_without_retry_or_fallback() {
    for (body, kind) in [
        (BAD_REQUEST, ErrorKind::InvalidRequest),
        (BAD_KEY, ErrorKind::Auth),
        (FILTERED, ErrorKind::ContentFilter),
    ] {
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
        let status = if kind == ErrorKind::Auth { 401 } else { 400 };
        sim.enqueue_for_model("model-a", Scenario::error(status, body));
        let err = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{body}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(
            models(&sim),
            ["model-a"],
            "{kind:?} was retried or fell back"
        );
    }
}

#[tokio::test]
async fn fallback_on_lets_a_caller_error_move_to_the_next_target() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .fallback_on(ErrorKind::Auth)
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::error(401, BAD_KEY));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-b");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Auth)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    // Not retried: an auth failure cannot succeed on the same target.
    assert_eq!(models(&sim), ["model-a", "model-b"]);

    // Other caller errors still surface.
    sim.enqueue_for_model("model-a", Scenario::error(400, BAD_REQUEST));
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn falls_back_without_retry_on_errors_another_target_can_serve() {
    for (status, body, kind) in [
        (404, NO_MODEL, ErrorKind::NotFound),
        (429, NO_QUOTA, ErrorKind::QuotaExceeded),
    ] {
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
        sim.enqueue_for_model("model-a", Scenario::error(status, body));
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        assert_eq!(
            steps(r.route.as_ref().unwrap()),
            [
                ("model-a", R::First, O::Failed(kind)),
                ("model-b", R::Fallback, O::Success),
            ]
        );
        assert_eq!(models(&sim), ["model-a", "model-b"]);
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_fall_back_once_the_target_is_retried_out() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::default().with_max_retries(1))
        .seed(7)
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-a", Scenario::error(500, "{}"));
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-a", R::Retry, O::Failed(ErrorKind::Server)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(models(&sim), ["model-a", "model-a", "model-b"]);
}

#[tokio::test]
async fn context_length_moves_only_to_a_target_with_a_larger_window() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "long",
            [
                Target::new(p.clone(), "small").context_window(8_000),
                Target::new(p.clone(), "same").context_window(8_000),
                Target::new(p.clone(), "large").context_window(128_000),
            ],
        )
        .route(
            "short",
            [
                Target::new(p.clone(), "small").context_window(8_000),
                Target::new(p.clone(), "smaller").context_window(4_000),
            ],
        )
        .build()
        .unwrap();
    sim.enqueue_for_model("small", Scenario::error(400, TOO_LONG));
    let r = router
        .chat(&ChatRequest::new("long").user("x"))
        .await
        .unwrap();
    assert_eq!(r.model, "large");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("small", R::First, O::Failed(ErrorKind::ContextLength)),
            ("large", R::Fallback, O::Success),
        ]
    );
    assert_eq!(r.route.as_ref().unwrap().target_index, Some(2));
    assert_eq!(models(&sim), ["small", "large"]);

    // No larger window: the error surfaces, not retried, nothing else tried.
    sim.enqueue_for_model("small", Scenario::error(400, TOO_LONG));
    let err = router
        .chat(&ChatRequest::new("short").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextLength);
    assert_eq!(models(&sim), ["small", "large", "small"]);
}

#[tokio::test]
async fn all_targets_failed_carries_every_attempts_error() {
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
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-b", Scenario::error(404, NO_MODEL));
    sim.enqueue_for_model("model-c", Scenario::error(502, "bad gateway"));
    let err = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    let each: Vec<_> = err
        .attempts()
        .iter()
        .map(|e| (e.kind(), e.status(), e.provider()))
        .collect();
    assert_eq!(
        each,
        [
            (ErrorKind::Overloaded, Some(503), Some("openai")),
            (ErrorKind::NotFound, Some(404), Some("openai")),
            (ErrorKind::Server, Some(502), Some("openai")),
        ]
    );
    assert_eq!(err.provider(), Some("router"));
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn route_info_records_every_attempt_with_its_latency() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::default().with_max_retries(1))
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::overloaded().with_first_byte_delay(sim::ms(300)),
    );
    sim.enqueue_for_model(
        "model-a",
        Scenario::error(500, "{}").with_first_byte_delay(sim::ms(200)),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("ok").with_first_byte_delay(sim::ms(50)),
    );
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let route = r.route.unwrap();
    assert_eq!(route.target_index, Some(1));
    let seen: Vec<_> = route
        .attempts
        .iter()
        .map(|a| {
            (
                a.provider.as_str(),
                a.model.as_str(),
                a.reason,
                a.outcome,
                a.latency,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "openai",
                "model-a",
                R::First,
                O::Failed(ErrorKind::Overloaded),
                sim::ms(300)
            ),
            (
                "openai",
                "model-a",
                R::Retry,
                O::Failed(ErrorKind::Server),
                sim::ms(200)
            ),
            ("openai", "model-b", R::Fallback, O::Success, sim::ms(50)),
        ]
    );
}

#[tokio::test]
async fn a_router_is_a_chat_provider_named_as_configured() {
    let (_sim, p) = sim::start().await;
    let router = Router::builder()
        .name("fleet")
        .route("chat", [Target::new(p, "m")])
        .build()
        .unwrap();
    let as_provider: std::sync::Arc<dyn ChatProvider> = std::sync::Arc::new(router);
    assert_eq!(as_provider.name(), "fleet");
    assert_eq!(
        as_provider
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap()
            .text(),
        "You said: x"
    );
}

#[tokio::test]
async fn build_rejects_setups_that_cannot_work() {
    let (_sim, p) = sim::start().await;
    let no_routes = Router::builder().build().unwrap_err();
    assert_eq!(no_routes.kind(), ErrorKind::Config);
    let empty = Router::builder().route("chat", []).build().unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::Config);
    let twice = Router::builder()
        .route("chat", [Target::new(p.clone(), "a")])
        .route("chat", [Target::new(p.clone(), "b")])
        .build()
        .unwrap_err();
    assert_eq!(twice.kind(), ErrorKind::Config);
    let zero = Router::builder()
        .route("chat", [Target::new(p, "a")])
        .timeout(sim::ms(0))
        .build()
        .unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn a_target_listed_by_two_routes_keeps_each_routes_overrides_and_one_health_state() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("plain", [Target::new(p.clone(), "model-a")])
        .route("capped", [Target::new(p.clone(), "model-a").max_tokens(7)])
        .build()
        .unwrap();
    router
        .chat(&ChatRequest::new("plain").user("x"))
        .await
        .unwrap();
    router
        .chat(&ChatRequest::new("capped").user("x"))
        .await
        .unwrap();
    let bodies: Vec<_> = sim.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies[0].get("max_completion_tokens"),
        None,
        "{:?}",
        bodies[0]
    );
    assert_eq!(
        bodies[1]["max_completion_tokens"],
        json!(7),
        "{:?}",
        bodies[1]
    );
    // One target, one report.
    let stats = router.stats();
    assert_eq!(stats.targets.len(), 1);
    assert_eq!(stats.targets[0].requests, 2);
}
