//! Budgets: reserve the worst cost before a call, settle the real cost after it, release on
//! failure; refuse or downgrade when a budget cannot pay, and never overshoot under concurrency.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use modelgate::pricing::ModelPrice;
use modelgate::router::{Budget, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::state::{MemoryStore, StateStore};
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ErrorKind};

use crate::sim::{self, steps};

/// $1 per million input and output tokens: a token costs a thousand nano-dollars.
fn dollar_per_million() -> ModelPrice {
    ModelPrice::new(1.0, 1.0)
}

/// A router with one route, `chat`, of one target priced at $1/M, and `budget`.
fn one_target(p: Arc<dyn ChatProvider>, budget: Budget) -> Router {
    Router::builder()
        .route(
            "chat",
            [Target::new(p, "model-a").price(dollar_per_million())],
        )
        .budget(budget)
        .build()
        .unwrap()
}

fn req(text: &str) -> ChatRequest {
    ChatRequest::new("chat").user(text).max_tokens(100)
}

/// A request's worst cost at $1/M: its estimated prompt plus its `max_tokens`.
fn worst(req: &ChatRequest) -> f64 {
    (modelgate::tokens::estimate_request(req) + 100) as f64 / 1e6
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn a_budget_that_cannot_pay_refuses_without_calling_the_provider() {
    let (sim, p) = sim::start().await;
    let r = req("hello");
    let router = one_target(p, Budget::new("tiny", worst(&r) / 2.0));
    let err = router.chat(&r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    let text = err.to_string();
    assert!(
        text.contains("`tiny`") && text.contains("$0.000000 of"),
        "{text}"
    );
    assert_eq!(
        err.retry_after(),
        None,
        "a budget for all time never resets"
    );
    assert_eq!(
        err.provider(),
        Some("router"),
        "the router refused, not a provider"
    );
    assert_eq!(sim.request_count(), 0);
    let b = router.budget("tiny", None).await.unwrap();
    assert_eq!((b.spent_usd, b.reserved_usd), (0.0, 0.0));
}

#[tokio::test]
async fn the_real_cost_is_settled_and_the_reservation_returned() {
    let (sim, p) = sim::start().await;
    sim.set_default(Scenario::text("ok").with_usage(30, 7));
    let router = one_target(p, Budget::new("all", 1.0));
    let r = router.chat(&req("hello")).await.unwrap();
    assert!(close(r.cost.unwrap(), 37.0 / 1e6));
    assert!(close(
        r.route.unwrap().attempts[0].cost.unwrap(),
        37.0 / 1e6
    ));
    let b = router.budget("all", None).await.unwrap();
    assert!(close(b.spent_usd, 37.0 / 1e6), "{b:?}");
    assert_eq!(b.reserved_usd, 0.0);
    assert!(close(b.remaining_usd(), 1.0 - 37.0 / 1e6));
}

#[tokio::test]
async fn a_failed_call_releases_its_reservation() {
    let (sim, p) = sim::start().await;
    sim.enqueue(Scenario::error(
        400,
        r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
    ));
    let router = one_target(p, Budget::new("all", 1.0));
    assert_eq!(
        router.chat(&req("hello")).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let b = router.budget("all", None).await.unwrap();
    assert_eq!((b.spent_usd, b.reserved_usd), (0.0, 0.0));
}

#[tokio::test]
async fn a_budget_downgrades_to_a_cheaper_route_instead_of_refusing() {
    let (sim, p) = sim::start().await;
    sim.set_default(Scenario::text("ok").with_usage(10, 10));
    let r = req("hello");
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p.clone(), "big").price(ModelPrice::new(100.0, 100.0))],
        )
        .route(
            "cheap",
            [Target::new(p, "small").price(dollar_per_million())],
        )
        .budget(
            Budget::new("chat", worst(&r) * 10.0)
                .for_route("chat")
                .downgrade_to("cheap"),
        )
        .build()
        .unwrap();
    // The big model's worst case is 100× the small one's: over the chat budget.
    let answer = router.chat(&r).await.unwrap();
    assert_eq!(answer.model, "small");
    assert_eq!(answer.route.unwrap().route, "cheap");
    assert_eq!(sim::models(&sim), ["small"]);
}

#[tokio::test]
async fn past_its_soft_limit_a_budget_downgrades() {
    let (sim, p) = sim::start().await;
    let r = req("hello");
    let w = worst(&r);
    // Each answer costs exactly its worst case.
    let used = modelgate::tokens::estimate_request(&r);
    sim.set_default(Scenario::text("ok").with_usage(used, 100));
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p.clone(), "big").price(dollar_per_million())],
        )
        .route(
            "cheap",
            [Target::new(p, "small").price(dollar_per_million())],
        )
        .budget(
            Budget::new("chat", w * 10.0)
                .for_route("chat")
                .soft_limit(0.5)
                .downgrade_to("cheap"),
        )
        .build()
        .unwrap();
    let mut served = Vec::new();
    for _ in 0..8 {
        served.push(router.chat(&r).await.unwrap().model);
    }
    assert_eq!(
        served,
        ["big", "big", "big", "big", "big", "small", "small", "small"]
    );
    let b = router.budget("chat", None).await.unwrap();
    assert!(close(b.spent_usd, 5.0 * w), "{b:?}");
}

#[tokio::test(start_paused = true)]
async fn a_windowed_budget_refuses_until_its_window_resets() {
    let (sim, p) = sim::start().await;
    let r = req("hello");
    let used = modelgate::tokens::estimate_request(&r);
    sim.set_default(Scenario::text("ok").with_usage(used, 100));
    let router = one_target(p, Budget::new("hourly", worst(&r) * 2.0).hourly());
    router.chat(&r).await.unwrap();
    router.chat(&r).await.unwrap();
    let err = router.chat(&r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    let reset = err
        .retry_after()
        .expect("a windowed budget says when it resets");
    assert!(
        reset > Duration::ZERO && reset <= Duration::from_secs(3_600),
        "{reset:?}"
    );
    let snapshot = router.budget("hourly", None).await.unwrap();
    assert_eq!(snapshot.resets_in, Some(reset));
    // Just before the reset it still refuses; at the reset the window starts afresh.
    tokio::time::advance(reset - Duration::from_secs(1)).await;
    assert_eq!(
        router.chat(&r).await.unwrap_err().kind(),
        ErrorKind::BudgetExceeded
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    router.chat(&r).await.unwrap();
    let b = router.budget("hourly", None).await.unwrap();
    assert!(close(b.spent_usd, worst(&r)), "{b:?}");
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn five_hundred_concurrent_requests_never_overshoot_a_budget_that_fits_fifty() {
    let (sim, p) = sim::start().await;
    let r = req("hello there");
    let w = worst(&r);
    // Every answer costs exactly its worst case: no overshoot at all is allowed.
    let used = modelgate::tokens::estimate_request(&r);
    sim.set_default(Scenario::text("ok").with_usage(used, 100));
    let store = Arc::new(MemoryStore::new());
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p, "model-a").price(dollar_per_million())],
        )
        .budget(Budget::new("all", w * 50.0))
        .state_store(store.clone())
        .build()
        .unwrap();
    let calls = (0..500).map(|_| {
        let router = router.clone();
        let r = r.clone();
        tokio::spawn(async move { router.chat(&r).await })
    });
    let results = futures::future::join_all(calls).await;
    let ok = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    let refused = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .unwrap()
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::BudgetExceeded)
        })
        .count();
    assert_eq!((ok, refused), (50, 450));
    assert_eq!(sim.request_count(), 50);
    let b = router.budget("all", None).await.unwrap();
    assert!(b.spent_usd <= w * 50.0 + 1e-12, "{b:?}");
    assert!(close(b.spent_usd, w * 50.0), "{b:?}");
    assert_eq!(b.reserved_usd, 0.0);
    // The store saw it too.
    let c = store.counters("all", 0).await.unwrap();
    assert_eq!(c.reserved, 0);
}

#[tokio::test]
async fn when_answers_cost_less_than_reserved_the_whole_budget_can_still_be_spent() {
    let (sim, p) = sim::start().await;
    let r = req("hello there");
    let w = worst(&r);
    // Answers cost a quarter of their worst case.
    let used = modelgate::tokens::estimate_request(&r);
    sim.set_default(Scenario::text("ok").with_usage(0, (used + 100) / 4));
    let router = one_target(p, Budget::new("all", w * 20.0));
    let calls = (0..200).map(|_| {
        let router = router.clone();
        let r = r.clone();
        tokio::spawn(async move { router.chat(&r).await })
    });
    futures::future::join_all(calls).await;
    // Keep going one at a time until the budget refuses.
    let mut more = 0;
    while router.chat(&r).await.is_ok() {
        more += 1;
        assert!(more < 1_000);
    }
    let b = router.budget("all", None).await.unwrap();
    assert_eq!(b.reserved_usd, 0.0);
    assert!(b.spent_usd <= w * 20.0 + 1e-12, "{b:?}");
    assert!(
        b.spent_usd > w * 19.0,
        "all but the last worst case is spendable: {b:?}"
    );
}

#[tokio::test]
async fn a_stream_settles_its_usage_when_it_ends() {
    let (sim, p) = sim::start().await;
    sim.set_default(Scenario::text("hello world").with_usage(20, 5));
    let router = one_target(p, Budget::new("all", 1.0));
    let mut stream = router.chat_stream(&req("hi")).await.unwrap();
    let during = router.budget("all", None).await.unwrap();
    assert!(
        during.reserved_usd > 0.0,
        "held while streaming: {during:?}"
    );
    while let Some(d) = stream.next().await {
        d.unwrap();
    }
    assert!(close(stream.cost().unwrap(), 25.0 / 1e6));
    let b = router.budget("all", None).await.unwrap();
    assert!(close(b.spent_usd, 25.0 / 1e6), "{b:?}");
    assert_eq!(b.reserved_usd, 0.0);
}

#[tokio::test]
async fn a_stream_dropped_early_settles_what_it_used_never_nothing() {
    let (sim, p) = sim::start().await;
    // A long answer in small chunks; the reader stops after the first.
    sim.set_default(
        Scenario::text("word ".repeat(200))
            .with_usage(20, 200)
            .with_chunk_chars(8),
    );
    let r = req("hi");
    let router = one_target(p, Budget::new("all", 1.0));
    let mut stream = router.chat_stream(&r).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, modelgate::Delta::Text(_)));
    drop(stream);
    let b = router.budget("all", None).await.unwrap();
    assert_eq!(b.reserved_usd, 0.0, "the reservation is settled: {b:?}");
    // Its prompt and the text it delivered, at the target's price.
    let prompt = modelgate::tokens::estimate_request(&r) as f64 / 1e6;
    assert!(b.spent_usd > prompt, "{b:?}");
    assert!(b.spent_usd < worst(&r), "{b:?}");
}

#[tokio::test]
async fn a_target_budget_skips_its_target_and_the_next_one_serves() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").price(dollar_per_million()),
                Target::new(p, "model-b").price(dollar_per_million()),
            ],
        )
        .budget(Budget::new("a-only", 0.0).for_target("openai", "model-a"))
        .build()
        .unwrap();
    let r = router.chat(&req("hi")).await.unwrap();
    assert_eq!(r.model, "model-b");
    assert_eq!(
        steps(&r.route.unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::BudgetExceeded)),
            ("model-b", R::Fallback, O::Success)
        ]
    );
    assert_eq!(sim::models(&sim), ["model-b"]);
}

#[tokio::test]
async fn tag_budgets_count_only_their_tag_and_per_value_budgets_each_value() {
    let (sim, p) = sim::start().await;
    let r = req("hi");
    let used = modelgate::tokens::estimate_request(&r);
    sim.set_default(Scenario::text("ok").with_usage(used, 100));
    let w = worst(&r);
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(p, "model-a").price(dollar_per_million())],
        )
        .budget(Budget::new("search", w).for_tag("team", "search"))
        .budget(Budget::new("per-user", w * 2.0).for_each_tag_value("user"))
        .build()
        .unwrap();
    let search = r.clone().metadata("team", "search");
    router.chat(&search).await.unwrap();
    assert_eq!(
        router.chat(&search).await.unwrap_err().kind(),
        ErrorKind::BudgetExceeded
    );
    // Another team is not counted.
    router
        .chat(&r.clone().metadata("team", "ads"))
        .await
        .unwrap();
    let ann = r.clone().metadata("user", "ann");
    let bob = r.clone().metadata("user", "bob");
    router.chat(&ann).await.unwrap();
    router.chat(&ann).await.unwrap();
    let err = router.chat(&ann).await.unwrap_err();
    assert!(err.to_string().contains("per-user (ann)"), "{err}");
    router.chat(&bob).await.unwrap();
    let ann_budget = router.budget("per-user", Some("ann")).await.unwrap();
    assert!(close(ann_budget.spent_usd, 2.0 * w));
    let bob_budget = router.budget("per-user", Some("bob")).await.unwrap();
    assert!(close(bob_budget.spent_usd, w));
}

#[tokio::test]
async fn budgets_that_cannot_work_are_config_errors() {
    let (_sim, p) = sim::start().await;
    let priced = || Target::new(p.clone(), "model-a").price(dollar_per_million());
    let cases = [
        (
            Router::builder()
                .route("chat", [Target::new(p.clone(), "unpriced-model")])
                .budget(Budget::new("all", 1.0)),
            "no price",
        ),
        (
            Router::builder()
                .route("chat", [priced()])
                .budget(Budget::new("b", 1.0).for_route("nope")),
            "not a route",
        ),
        (
            Router::builder()
                .route("chat", [priced()])
                .budget(Budget::new("b", 1.0).downgrade_to("nope")),
            "not a route",
        ),
        (
            Router::builder()
                .route("chat", [priced()])
                .budget(Budget::new("b", 1.0).for_target("openai", "typo")),
            "no route lists",
        ),
        (
            Router::builder()
                .route("chat", [priced()])
                .budget(Budget::new("b", 1.0))
                .budget(Budget::new("b", 2.0)),
            "two budgets",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[tokio::test]
async fn the_built_in_prices_cost_a_real_model() {
    let (sim, p) = sim::start().await;
    sim.set_default(Scenario::text("ok").with_usage(1_000_000, 1_000_000));
    let router = Router::builder()
        .route("chat", [Target::new(p, "gpt-4o-mini")])
        .budget(Budget::new("all", 10.0))
        .build()
        .unwrap();
    let r = router.chat(&req("hi")).await.unwrap();
    // $0.15 per million input tokens and $0.60 per million output tokens.
    assert!(close(r.cost.unwrap(), 0.75), "{:?}", r.cost);
    let b = router.budget("all", None).await.unwrap();
    assert!(close(b.spent_usd, 0.75));
    let all = router.budgets().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "all");
    let _: &dyn StateStore = &MemoryStore::new();
}
