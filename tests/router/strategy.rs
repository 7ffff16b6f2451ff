//! Rules and strategies through the router: rule routes pick a route from the prompt, and each
//! strategy orders a route's targets (weighted, lowest cost, least busy, lowest latency) with
//! resting or broken targets last and fallback in the strategy's order; answers announcing an
//! exhausted rate limit steer traffic away until their reset.

use std::sync::Arc;

use futures::StreamExt;
use modelgate::pricing::ModelPrice;
use modelgate::router::{CircuitBreaker, Condition, RetryPolicy, Router, Rules, Strategy, Target};
use modelgate::simulator::{Scenario, Simulator};
use modelgate::types::{AttemptOutcome as O, AttemptReason as R, ContentPart, Tool};
use modelgate::{ChatProvider, ChatRequest, ChatStream, ErrorKind};
use tokio::time::Instant;

use crate::sim::{self, count, models, ms, secs, steps};

/// The seed's routing table.
fn seed_rules() -> Rules {
    Rules::new()
        .when(Condition::has_images(), "vision")
        .when(Condition::tag("quality", "accuracy"), "accurate")
        .when(Condition::max_input_tokens(499), "cheap")
        .otherwise("gpt")
}

/// The seed's four target routes, each on its own model, and `auto` as their rules.
fn seed_router(p: &Arc<dyn ChatProvider>) -> Router {
    Router::builder()
        .route("vision", [Target::new(p.clone(), "model-vision")])
        .route("accurate", [Target::new(p.clone(), "model-accurate")])
        .route("cheap", [Target::new(p.clone(), "model-cheap")])
        .route("gpt", [Target::new(p.clone(), "model-gpt")])
        .rules("auto", seed_rules())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// A prompt of well over 500 estimated tokens.
fn long_prompt() -> String {
    "the quick brown fox jumps over the lazy dog. ".repeat(200)
}

fn image() -> ContentPart {
    ContentPart::image_base64(
        "image/png",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    )
}

/// Reads a stream to its end, failing the test on an error.
async fn drain(mut stream: ChatStream) -> String {
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let modelgate::Delta::Text(t) = item.expect("the stream ends cleanly") {
            text.push_str(&t);
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_seed_table_sends_each_kind_of_prompt_to_its_model() {
    let (sim, p) = sim::start().await;
    let router = seed_router(&p);
    assert!(
        modelgate::tokens::estimate_request(&ChatRequest::new("auto").user(long_prompt())) >= 500,
        "the long prompt is long"
    );
    let cases = [
        // Short: DeepSeek's route.
        (ChatRequest::new("auto").user("hi"), "model-cheap"),
        // Long: everything else.
        (ChatRequest::new("auto").user(long_prompt()), "model-gpt"),
        // Images, short or long, tagged or not: the first rule wins.
        (
            ChatRequest::new("auto").user_parts([ContentPart::text("what is this?"), image()]),
            "model-vision",
        ),
        (
            ChatRequest::new("auto")
                .user_parts([ContentPart::text(long_prompt()), image()])
                .metadata("quality", "accuracy"),
            "model-vision",
        ),
        // Asked for accuracy, short or long.
        (
            ChatRequest::new("auto")
                .user("hi")
                .metadata("quality", "accuracy"),
            "model-accurate",
        ),
        (
            ChatRequest::new("auto")
                .user(long_prompt())
                .metadata("quality", "accuracy"),
            "model-accurate",
        ),
        // Another value of the tag is no match.
        (
            ChatRequest::new("auto")
                .user("hi")
                .metadata("quality", "speed"),
            "model-cheap",
        ),
    ];
    let mut expected = Vec::new();
    for (req, model) in &cases {
        let r = router.chat(req).await.unwrap();
        assert_eq!(r.model, *model, "{req:?}");
        let route = r.route.as_ref().unwrap();
        // The route reported is the route of targets the rules chose.
        assert_eq!(route.route, model.trim_start_matches("model-"));
        assert_eq!(route.target_index, Some(0));
        assert_eq!(steps(route), [(*model, R::First, O::Success)]);
        expected.push(model.to_string());
    }
    // Streams follow the same rules.
    let s = router
        .chat_stream(&ChatRequest::new("auto").user(long_prompt()))
        .await
        .unwrap();
    assert_eq!(s.route().unwrap().attempts[0].model, "model-gpt");
    drain(s).await;
    expected.push("model-gpt".into());
    assert_eq!(models(&sim), expected, "what the simulator was asked for");
}

#[tokio::test]
async fn a_rule_route_can_lead_to_another_rule_route() {
    let (sim, p) = sim::start().await;
    let tool = Tool::function("f", "does f", serde_json::json!({"type": "object"}));
    let router = Router::builder()
        .route("tools", [Target::new(p.clone(), "model-tools")])
        .route("voice", [Target::new(p.clone(), "model-voice")])
        .route("gpt", [Target::new(p.clone(), "model-gpt")])
        .rules(
            "auto",
            Rules::new()
                .when(Condition::tag("team", "voice"), "voice-team")
                .otherwise("gpt"),
        )
        .rules(
            "voice-team",
            Rules::new()
                .when(Condition::has_tools(), "tools")
                .otherwise("voice"),
        )
        .build()
        .unwrap();
    let voice = ChatRequest::new("auto").user("x").metadata("team", "voice");
    assert_eq!(router.chat(&voice).await.unwrap().model, "model-voice");
    let with_tools = voice.clone().tool(tool.clone());
    assert_eq!(router.chat(&with_tools).await.unwrap().model, "model-tools");
    let other = ChatRequest::new("auto").user("x").tool(tool);
    assert_eq!(router.chat(&other).await.unwrap().model, "model-gpt");
    // The inner rule route can be named directly too.
    let inner = ChatRequest::new("voice-team").user("x");
    assert_eq!(router.chat(&inner).await.unwrap().model, "model-voice");
    assert_eq!(
        models(&sim),
        ["model-voice", "model-tools", "model-gpt", "model-voice"]
    );
}

#[tokio::test]
async fn bad_rules_and_strategies_are_refused_when_the_router_is_built() {
    let (_sim, p) = sim::start().await;
    let base = || Router::builder().route("gpt", [Target::new(p.clone(), "model-gpt")]);

    // A rule naming a route that does not exist.
    let err = base()
        .rules(
            "auto",
            Rules::new()
                .when(Condition::has_images(), "vision")
                .otherwise("gpt"),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("`vision`"), "{err}");
    // A default naming one.
    let err = base()
        .rules("auto", Rules::new().otherwise("nowhere"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("`nowhere`"), "{err}");

    // Rule routes leading back to themselves.
    let err = base()
        .rules(
            "a",
            Rules::new()
                .when(Condition::has_tools(), "b")
                .otherwise("gpt"),
        )
        .rules(
            "b",
            Rules::new()
                .when(Condition::has_images(), "c")
                .otherwise("gpt"),
        )
        .rules("c", Rules::new().otherwise("a"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("a -> b -> c -> a"), "{err}");
    let err = base()
        .rules("self", Rules::new().otherwise("self"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("self -> self"), "{err}");

    // A strategy for a route that does not exist, or is a route of rules.
    let err = base()
        .strategy("chat", Strategy::weighted())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("`chat`"), "{err}");
    let err = base()
        .rules("auto", Rules::new().otherwise("gpt"))
        .strategy("auto", Strategy::lowest_cost())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // A rule route sharing a target route's name.
    let err = base()
        .rules("gpt", Rules::new().otherwise("gpt"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // A strategy with impossible settings.
    let err = base()
        .strategy("gpt", Strategy::lowest_latency().with_ewma_alpha(0.0))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);

    // The same setup, well formed, builds.
    base()
        .rules(
            "auto",
            Rules::new()
                .when(Condition::has_tools(), "gpt")
                .otherwise("gpt"),
        )
        .strategy("gpt", Strategy::least_busy())
        .build()
        .unwrap();
}

#[tokio::test]
async fn a_rule_route_without_a_match_or_default_is_not_found() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("vision", [Target::new(p.clone(), "model-vision")])
        .rules("auto", Rules::new().when(Condition::has_images(), "vision"))
        .build()
        .unwrap();
    let err = router
        .chat(&ChatRequest::new("auto").user("no image here"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("`auto`"), "{err}");
    let err = router
        .chat_stream(&ChatRequest::new("auto").user("no image here"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(sim.request_count(), 0, "nothing was sent");
    // A match still goes through.
    let r = router
        .chat(&ChatRequest::new("auto").user_parts([ContentPart::text("this?"), image()]))
        .await
        .unwrap();
    assert_eq!(r.model, "model-vision");
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_ordered_strategy_keeps_route_order() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .strategy("chat", Strategy::ordered())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..5 {
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        assert_eq!(r.model, "model-a");
    }
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-a"), 6);
}

#[tokio::test(start_paused = true)]
async fn the_weighted_strategy_splits_traffic_by_weight() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").weight(1),
                Target::new(p.clone(), "model-b").weight(3),
                Target::new(p.clone(), "model-z").weight(0),
            ],
        )
        .strategy("chat", Strategy::weighted())
        .retry(RetryPolicy::none())
        .seed(42)
        .build()
        .unwrap();
    const N: usize = 400;
    for _ in 0..N {
        let r = router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap();
        let route = r.route.as_ref().unwrap();
        assert_eq!(route.attempts.len(), 1);
        assert_ne!(r.model, "model-z", "a weight of 0 is never first");
        // The index is the target's position in the route, whatever the order tried.
        let expected = if r.model == "model-a" { 0 } else { 1 };
        assert_eq!(route.target_index, Some(expected));
    }
    let (a, b) = (count(&sim, "model-a"), count(&sim, "model-b"));
    assert_eq!(a + b, N);
    assert_eq!(count(&sim, "model-z"), 0);
    // 1:3 → 25 % / 75 %; a binomial's standard deviation here is under 9 requests.
    assert!((70..=130).contains(&a), "model-a served {a} of {N}");
    assert!((270..=330).contains(&b), "model-b served {b} of {N}");

    // A weight of 0 still serves as a fallback, last.
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model("model-b", Scenario::overloaded());
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-z");
    let route = r.route.unwrap();
    assert_eq!(route.target_index, Some(2));
    assert_eq!(route.attempts.len(), 3);
    assert_eq!(route.attempts[2].reason, R::Fallback);
}

#[tokio::test(start_paused = true)]
async fn the_lowest_cost_strategy_tries_the_cheapest_first_and_falls_back_in_price_order() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                // No price (and not in the built-in table): last.
                Target::new(p.clone(), "model-unpriced"),
                Target::new(p.clone(), "model-dear").price(ModelPrice::new(10.0, 30.0)),
                Target::new(p.clone(), "model-cheap").price(ModelPrice::new(0.1, 0.4)),
                Target::new(p.clone(), "model-mid").price(ModelPrice::new(1.0, 4.0)),
            ],
        )
        .strategy("chat", Strategy::lowest_cost())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let req = ChatRequest::new("chat").user("x");
    let ask = || router.chat(&req);
    for _ in 0..3 {
        let r = ask().await.unwrap();
        assert_eq!(r.model, "model-cheap");
        assert_eq!(r.route.as_ref().unwrap().target_index, Some(2));
    }
    // Fallback follows price order: cheap, mid, dear, then the unpriced one.
    sim.enqueue_for_model("model-cheap", Scenario::overloaded());
    sim.enqueue_for_model("model-mid", Scenario::overloaded());
    sim.enqueue_for_model("model-dear", Scenario::overloaded());
    let r = ask().await.unwrap();
    let route = r.route.unwrap();
    assert_eq!(
        steps(&route),
        [
            ("model-cheap", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-mid", R::Fallback, O::Failed(ErrorKind::Overloaded)),
            ("model-dear", R::Fallback, O::Failed(ErrorKind::Overloaded)),
            ("model-unpriced", R::Fallback, O::Success),
        ]
    );
    assert_eq!(route.target_index, Some(0));
    sim.enqueue_for_model("model-cheap", Scenario::overloaded());
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-cheap", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-mid", R::Fallback, O::Success),
        ]
    );
    assert_eq!(r.route.unwrap().target_index, Some(3));
}

#[tokio::test(start_paused = true)]
async fn the_lowest_cost_strategy_weighs_the_prompt_and_the_answer() {
    // Cheap input, dear output, against the reverse: which is cheaper depends on max_tokens.
    let (_sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-reader").price(ModelPrice::new(0.1, 100.0)),
                Target::new(p.clone(), "model-writer").price(ModelPrice::new(10.0, 1.0)),
            ],
        )
        .strategy("chat", Strategy::lowest_cost())
        .build()
        .unwrap();
    // A long prompt and a short answer: the cheap reader.
    let r = router
        .chat(&ChatRequest::new("chat").user(long_prompt()).max_tokens(1))
        .await
        .unwrap();
    assert_eq!(r.model, "model-reader");
    // A short prompt and a long answer: the cheap writer.
    let r = router
        .chat(&ChatRequest::new("chat").user("x").max_tokens(4_000))
        .await
        .unwrap();
    assert_eq!(r.model, "model-writer");
}

#[tokio::test(start_paused = true)]
async fn the_least_busy_strategy_goes_past_a_target_holding_a_stream() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .strategy("chat", Strategy::least_busy())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let req = ChatRequest::new("chat").user("x");
    // Idle: route order.
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");

    // A stream on a that has sent its first delta and then waits keeps a busy.
    sim.enqueue_for_model("model-a", Scenario::text("held open").with_stall_after(2));
    let mut held = router.chat_stream(&req).await.unwrap();
    assert_eq!(held.route().unwrap().attempts[0].model, "model-a");
    assert!(held.next().await.unwrap().is_ok(), "its first delta");
    for _ in 0..3 {
        assert_eq!(router.chat(&req).await.unwrap().model, "model-b");
    }
    // A second stream, on b, while a's is still open: both busy, route order again.
    sim.enqueue_for_model("model-b", Scenario::text("also open").with_stall_after(2));
    let held_b = router.chat_stream(&req).await.unwrap();
    assert_eq!(held_b.route().unwrap().attempts[0].model, "model-b");
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    // Once a's stream is gone, a is the least busy.
    drop(held);
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    drop(held_b);

    // A chat call in flight counts too.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("slow").with_first_byte_delay(secs(5)),
    );
    let slow = {
        let router = router.clone();
        let req = req.clone();
        tokio::spawn(async move { router.chat(&req).await })
    };
    sim::eventually("the slow call reaches the simulator", || {
        router.stats().targets[0].in_flight == 1
    })
    .await;
    assert_eq!(router.chat(&req).await.unwrap().model, "model-b");
    assert_eq!(slow.await.unwrap().unwrap().text(), "slow");
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
}

/// A dear and a cheap target, cheapest first, with a circuit breaker that opens on two failures.
fn cheapest_first(p: &Arc<dyn ChatProvider>) -> Router {
    Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-dear").price(ModelPrice::new(10.0, 30.0)),
                Target::new(p.clone(), "model-cheap").price(ModelPrice::new(0.1, 0.4)),
            ],
        )
        .strategy("chat", Strategy::lowest_cost())
        .retry(RetryPolicy::none())
        .circuit_breaker(
            CircuitBreaker::default()
                .with_min_requests(2)
                .with_failure_rate_threshold(0.5)
                .with_cool_down(secs(10)),
        )
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_strategy_puts_a_resting_target_last() {
    let (sim, p) = sim::start().await;
    let router = cheapest_first(&p);
    let req = ChatRequest::new("chat").user("x");
    let ask = || router.chat(&req);
    assert_eq!(ask().await.unwrap().model, "model-cheap");

    // The cheap one is told to wait 30 s: it rests, and the dear one serves meanwhile, first.
    sim.enqueue_for_model("model-cheap", Scenario::rate_limited(secs(30)));
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-cheap", R::First, O::Failed(ErrorKind::RateLimited)),
            ("model-dear", R::Fallback, O::Success),
        ]
    );
    let rested = Instant::now();
    for _ in 0..3 {
        let r = ask().await.unwrap();
        assert_eq!(
            steps(r.route.as_ref().unwrap()),
            [("model-dear", R::First, O::Success)],
            "a resting target is not first"
        );
    }
    assert_eq!(count(&sim, "model-cheap"), 2);
    tokio::time::sleep_until(rested + secs(30)).await;
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-cheap", R::First, O::Success)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_strategy_puts_a_target_with_an_open_circuit_last() {
    let (sim, p) = sim::start().await;
    let router = cheapest_first(&p);
    let req = ChatRequest::new("chat").user("x");
    let ask = || router.chat(&req);
    // Two health failures open the cheap one's circuit.
    sim.enqueue_for_model("model-cheap", Scenario::overloaded());
    sim.enqueue_for_model("model-cheap", Scenario::overloaded());
    for _ in 0..2 {
        let r = ask().await.unwrap();
        assert_eq!(
            steps(r.route.as_ref().unwrap()),
            [
                ("model-cheap", R::First, O::Failed(ErrorKind::Overloaded)),
                ("model-dear", R::Fallback, O::Success),
            ]
        );
    }
    assert_eq!(
        router.circuit_status("chat", 1),
        Some(modelgate::router::CircuitStatus::Open)
    );
    let opened = Instant::now();
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-dear", R::First, O::Success)],
        "an open circuit is not first"
    );
    // When the dear one fails too, the open circuit is skipped without a call.
    sim.enqueue_for_model("model-dear", Scenario::overloaded());
    let err = ask().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert_eq!(
        count(&sim, "model-cheap"),
        2,
        "an open circuit sends nothing"
    );
    // After the cool-down the cheap one is first again: its probe.
    tokio::time::sleep_until(opened + secs(10)).await;
    let r = ask().await.unwrap();
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-cheap", R::First, O::Success)]
    );
}

// ---------------------------------------------------------------------------------------------
// Lowest latency
// ---------------------------------------------------------------------------------------------

/// Two simulators, one per target, so that each one's default scenario sets its own speed.
async fn two_sims() -> (Simulator, Simulator, Router) {
    let sim_a = Simulator::start().await.unwrap();
    let sim_b = Simulator::start().await.unwrap();
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(sim::openai(&sim_a), "model-a"),
                Target::new(sim::openai(&sim_b), "model-b"),
            ],
        )
        .strategy(
            "chat",
            Strategy::lowest_latency()
                .with_probe_interval(secs(5))
                .with_ewma_alpha(1.0),
        )
        .retry(RetryPolicy::none())
        .seed(7)
        .build()
        .unwrap();
    (sim_a, sim_b, router)
}

#[tokio::test(start_paused = true)]
async fn lowest_latency_moves_chat_traffic_off_a_slow_target_and_back_when_it_recovers() {
    let (sim_a, sim_b, router) = two_sims().await;
    sim_a.set_default(Scenario::text("a").with_first_byte_delay(ms(500)));
    sim_b.set_default(Scenario::text("b").with_first_byte_delay(ms(20)));
    let req = ChatRequest::new("chat").user("x");

    // Each target is measured once (the unmeasured go first), then the fast one serves.
    const N: usize = 50;
    let mut measured_a = None;
    for _ in 0..N {
        if router.chat(&req).await.unwrap().model == "model-a" {
            assert!(measured_a.is_none(), "the slow target served twice");
            measured_a = Some(Instant::now());
        }
    }
    let measured_a = measured_a.expect("the slow target was measured once");
    assert_eq!(sim_a.request_count(), 1);
    assert_eq!(sim_b.request_count(), N - 1);

    // a recovers (and is now faster than b), but nobody knows until it is probed, one probe
    // interval after it was last measured.
    sim_a.set_default(Scenario::text("a").with_first_byte_delay(ms(5)));
    let mut probe = None;
    for _ in 0..1_000 {
        let r = router.chat(&req).await.unwrap();
        if r.model == "model-a" {
            probe = Some(Instant::now() - r.route.unwrap().attempts[0].latency);
            break;
        }
    }
    let probe = probe.expect("the recovered target is probed");
    assert!(
        probe >= measured_a + secs(5) && probe < measured_a + secs(5) + ms(20),
        "probed {:?} after it was measured",
        probe - measured_a
    );
    // Measured fast, it now takes the traffic.
    let before = sim_a.request_count();
    for _ in 0..N {
        assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    }
    assert_eq!(sim_a.request_count(), before + N);
}

#[tokio::test(start_paused = true)]
async fn lowest_latency_with_gradual_averages_still_comes_back() {
    // The default weight: a recovered target needs several probes to win again, and does.
    let sim_a = Simulator::start().await.unwrap();
    let sim_b = Simulator::start().await.unwrap();
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(sim::openai(&sim_a), "model-a"),
                Target::new(sim::openai(&sim_b), "model-b"),
            ],
        )
        .strategy(
            "chat",
            Strategy::lowest_latency().with_probe_interval(secs(1)),
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim_a.set_default(Scenario::text("a").with_first_byte_delay(secs(1)));
    sim_b.set_default(Scenario::text("b").with_first_byte_delay(ms(50)));
    let req = ChatRequest::new("chat").user("x");
    let mut served = [0; 2];
    // 200 requests of 50 ms: 10 s, 10 probe intervals at most.
    for _ in 0..200 {
        let r = router.chat(&req).await.unwrap();
        served[usize::from(r.model == "model-b")] += 1;
    }
    assert!(served[1] >= 180, "fast b served {} of 200", served[1]);
    assert!((1..=15).contains(&served[0]), "slow a served {}", served[0]);

    sim_a.set_default(Scenario::text("a").with_first_byte_delay(ms(10)));
    let mut served = [0; 2];
    // Another 30 s of traffic: a is probed until its average beats b's, then wins.
    let until = Instant::now() + secs(30);
    while Instant::now() < until {
        let r = router.chat(&req).await.unwrap();
        served[usize::from(r.model == "model-b")] += 1;
    }
    assert!(
        served[0] > served[1] * 5,
        "recovered a served {} to b's {}",
        served[0],
        served[1]
    );
}

#[tokio::test(start_paused = true)]
async fn lowest_latency_steers_streams_by_time_to_first_delta() {
    let (sim_a, sim_b, router) = two_sims().await;
    // a answers at once but sends each event 300 ms apart: its first text comes at 600 ms;
    // b takes 50 ms to answer, then streams without delay.
    sim_a.set_default(Scenario::text("aaaa").with_chunk_delay(ms(300)));
    sim_b.set_default(Scenario::text("bbbb").with_first_byte_delay(ms(50)));
    let req = ChatRequest::new("chat").user("x");
    let mut served = Vec::new();
    for _ in 0..20 {
        let s = router.chat_stream(&req).await.unwrap();
        let route = s.route().unwrap().clone();
        let text = drain(s).await;
        served.push(route.attempts[0].model.clone());
        if route.attempts[0].model == "model-a" {
            assert_eq!(text, "aaaa");
            assert!(route.attempts[0].latency >= ms(600));
        } else {
            assert_eq!(text, "bbbb");
            assert_eq!(route.attempts[0].latency, ms(50));
        }
    }
    assert_eq!(served.iter().filter(|m| *m == "model-a").count(), 1);
    assert_eq!(sim_b.request_count(), 19);

    // a recovers; once the probe interval has passed, it is measured again and takes the
    // streams.
    sim_a.set_default(Scenario::text("aaaa").with_first_byte_delay(ms(10)));
    let recovered = Instant::now();
    let mut probed = false;
    for _ in 0..1_000 {
        let s = router.chat_stream(&req).await.unwrap();
        let model = s.route().unwrap().attempts[0].model.clone();
        drain(s).await;
        if model == "model-a" {
            probed = true;
            break;
        }
    }
    assert!(probed, "the recovered target is probed");
    assert!(
        Instant::now() - recovered <= secs(5),
        "within one probe interval"
    );
    for _ in 0..10 {
        let s = router.chat_stream(&req).await.unwrap();
        assert_eq!(s.route().unwrap().attempts[0].model, "model-a");
        drain(s).await;
    }
    assert_eq!(sim_a.request_count(), 12);
}

// ---------------------------------------------------------------------------------------------
// Rate-limit steering
// ---------------------------------------------------------------------------------------------

fn rate_limited_router(p: &Arc<dyn ChatProvider>, steer: bool) -> Router {
    Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a"),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .steer_by_rate_limits(steer)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_target_announcing_its_rate_limit_is_exhausted_rests_until_the_reset() {
    let (sim, p) = sim::start().await;
    let router = rate_limited_router(&p, true);
    let req = ChatRequest::new("chat").user("x");
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("last one").with_rate_limit(0, 1000, secs(20)),
    );
    let r = router.chat(&req).await.unwrap();
    let answered = Instant::now();
    assert_eq!(r.model, "model-a");
    assert_eq!(r.rate_limit.unwrap().remaining_requests, Some(0));
    let statuses = router.target_statuses("chat").unwrap();
    assert_eq!(statuses[0].rest_remaining, Some(secs(20)));
    assert_eq!(router.stats().targets[0].rest_remaining, Some(secs(20)));
    assert_eq!(statuses[1].rest_remaining, None);

    // The next requests go to b without asking a (which would answer 429).
    for _ in 0..3 {
        let r = router.chat(&req).await.unwrap();
        assert_eq!(r.model, "model-b");
        assert_eq!(
            steps(r.route.as_ref().unwrap()),
            [
                ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
                ("model-b", R::Fallback, O::Success),
            ]
        );
    }
    tokio::time::sleep_until(answered + secs(20) - ms(1)).await;
    assert_eq!(router.chat(&req).await.unwrap().model, "model-b");
    assert_eq!(
        count(&sim, "model-a"),
        1,
        "a was never asked while it rested"
    );

    // Once the window has reset, a serves again.
    tokio::time::sleep_until(answered + secs(20)).await;
    let r = router.chat(&req).await.unwrap();
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-a", R::First, O::Success)]
    );
    assert_eq!(
        router.target_statuses("chat").unwrap()[0].rest_remaining,
        None
    );
    assert_eq!(count(&sim, "model-a"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_announcing_an_exhausted_rate_limit_steers_too() {
    let (sim, p) = sim::start().await;
    let router = rate_limited_router(&p, true);
    let req = ChatRequest::new("chat").user("x");
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("last one").with_rate_limit(0, 1000, secs(20)),
    );
    let s = router.chat_stream(&req).await.unwrap();
    assert_eq!(s.rate_limit().unwrap().remaining_requests, Some(0));
    assert_eq!(drain(s).await, "last one");
    let s = router.chat_stream(&req).await.unwrap();
    assert_eq!(
        steps(s.route().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    drain(s).await;
    tokio::time::sleep(secs(20)).await;
    let s = router.chat_stream(&req).await.unwrap();
    assert_eq!(s.route().unwrap().attempts[0].model, "model-a");
    drain(s).await;
    assert_eq!(count(&sim, "model-a"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_short_token_window_steers_a_large_prompt_only() {
    // 50 tokens left: a large prompt would not fit, so the target rests after announcing it.
    let (sim, p) = sim::start().await;
    let router = rate_limited_router(&p, true);
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("ok").with_rate_limit(10, 50, secs(20)),
    );
    let r = router
        .chat(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(r.model, "model-a");
    // Still plenty of requests, and a tiny prompt fits in 50 tokens: no rest.
    assert_eq!(
        router.target_statuses("chat").unwrap()[0].rest_remaining,
        None
    );
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("ok").with_rate_limit(10, 50, secs(20)),
    );
    let r = router
        .chat(&ChatRequest::new("chat").user(long_prompt()))
        .await
        .unwrap();
    assert_eq!(r.model, "model-a");
    assert_eq!(
        router.target_statuses("chat").unwrap()[0].rest_remaining,
        Some(secs(20)),
        "a prompt larger than the tokens left"
    );
    assert_eq!(
        router
            .chat(&ChatRequest::new("chat").user("x"))
            .await
            .unwrap()
            .model,
        "model-b"
    );
    assert_eq!(count(&sim, "model-a"), 2);
}

#[tokio::test(start_paused = true)]
async fn without_steering_an_exhausted_rate_limit_is_ignored() {
    let (sim, p) = sim::start().await;
    let router = rate_limited_router(&p, false);
    let req = ChatRequest::new("chat").user("x");
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("last one").with_rate_limit(0, 1000, secs(20)),
    );
    assert_eq!(router.chat(&req).await.unwrap().model, "model-a");
    assert_eq!(
        router.target_statuses("chat").unwrap()[0].rest_remaining,
        None
    );
    let r = router.chat(&req).await.unwrap();
    assert_eq!(r.model, "model-a");
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [("model-a", R::First, O::Success)]
    );
    assert_eq!(count(&sim, "model-a"), 2);
    assert_eq!(count(&sim, "model-b"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_sole_target_announcing_an_exhausted_rate_limit_is_waited_for_not_called() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route("chat", [Target::new(p.clone(), "model-a")])
        .build()
        .unwrap();
    let req = ChatRequest::new("chat").user("x");
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("last one").with_rate_limit(0, 1000, secs(20)),
    );
    router.chat(&req).await.unwrap();
    let t0 = Instant::now();
    // Nothing else can serve: the request waits for the reset instead of drawing a 429.
    let r = router.chat(&req).await.unwrap();
    assert_eq!(t0.elapsed(), secs(20));
    assert_eq!(
        steps(r.route.as_ref().unwrap()),
        [
            ("model-a", R::First, O::Skipped(ErrorKind::RateLimited)),
            ("model-a", R::Retry, O::Success),
        ]
    );
    assert_eq!(count(&sim, "model-a"), 2);
}
