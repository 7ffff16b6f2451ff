//! Cost-aware routing against the built-in simulator: rules pick a route from the prompt, a
//! lowest-latency route moves away from a slow target, a rate-limited target's traffic falls
//! back, a daily budget past its soft limit downgrades everything to the cheap route, and the
//! router's statistics and budgets are printed at the end.
//!
//! ```sh
//! cargo run --example cost_routing
//! ```
//!
//! Four providers on the simulator's four wires, asked for real model names so that the
//! built-in price table costs every answer. Runs in about a second and needs no API key.

use std::sync::Arc;
use std::time::Duration;

use modelgate::providers::{Anthropic, DeepSeek, Gemini, OpenAi};
use modelgate::router::{Budget, Condition, Router, Rules, Strategy, Target};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::types::{AttemptOutcome, ChatResponse};
use modelgate::{ChatProvider, ChatRequest, ContentPart};

/// What every simulated model answers (its usage is estimated from the text lengths).
const ANSWER: &str = "Here is a short, useful answer from the simulator: the router picked the \
    route from the prompt, ordered the route's targets by its strategy, checked the budgets and \
    called the first target that could serve. Every answer carries its cost, priced from the \
    built-in table.";

/// A 1×1 PNG, for the request with an image.
const PIXEL: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// The first-byte delay of the slow target.
const SLOW: Duration = Duration::from_millis(60);

/// How long the rate-limited target asks to be left alone.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The daily budget, and the fraction of it past which requests are downgraded.
const DAILY_USD: f64 = 0.02;
const SOFT_LIMIT: f64 = 0.5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start().await?;
    sim.set_default(Scenario::text(ANSWER));
    let key = "sim-key";
    let openai: Arc<dyn ChatProvider> = Arc::new(
        OpenAi::builder()
            .api_key(key)
            .base_url(sim.base_url(Wire::OpenAi))
            .build()?,
    );
    let anthropic: Arc<dyn ChatProvider> = Arc::new(
        Anthropic::builder()
            .api_key(key)
            .base_url(sim.base_url(Wire::Anthropic))
            .build()?,
    );
    let gemini: Arc<dyn ChatProvider> = Arc::new(
        Gemini::builder()
            .api_key(key)
            .base_url(sim.base_url(Wire::Gemini))
            .build()?,
    );
    let deepseek: Arc<dyn ChatProvider> = Arc::new(
        DeepSeek::builder()
            .api_key(key)
            .base_url(sim.base_url(Wire::DeepSeek))
            .build()?,
    );

    // The routing table: images to Gemini, accuracy to Claude, long prompts to a cheaper
    // long-context model, short ones to DeepSeek, everything else to GPT.
    let auto = Rules::new()
        .when(Condition::has_images(), "vision")
        .when(Condition::tag("quality", "accuracy"), "accurate")
        .when(Condition::min_input_tokens(4_000), "long")
        .when(Condition::max_input_tokens(499), "cheap")
        .otherwise("gpt");
    let gpt_4o_mini = || Target::new(openai.clone(), "gpt-4o-mini");
    let router = Router::builder()
        .rules("auto", auto)
        .route(
            "vision",
            [
                Target::new(gemini.clone(), "gemini-2.5-flash"),
                gpt_4o_mini(),
            ],
        )
        .route(
            "accurate",
            [
                Target::new(anthropic.clone(), "claude-sonnet-4-5"),
                Target::new(openai.clone(), "gpt-4.1"),
            ],
        )
        .route("long", [Target::new(gemini.clone(), "gemini-2.5-flash")])
        .route(
            "cheap",
            [
                Target::new(deepseek.clone(), "deepseek-chat"),
                gpt_4o_mini(),
            ],
        )
        .route(
            "gpt",
            [Target::new(openai.clone(), "gpt-4.1"), gpt_4o_mini()],
        )
        .strategy("gpt", Strategy::lowest_latency())
        // Past half of the day's $0.02, every request goes to the cheap route.
        .budget(
            Budget::new("daily", DAILY_USD)
                .daily()
                .soft_limit(SOFT_LIMIT)
                .downgrade_to("cheap"),
        )
        .build()?;

    // gpt-4.1 is slow today: every answer takes 60 ms to start.
    for _ in 0..10 {
        sim.enqueue_for_model(
            "gpt-4.1",
            Scenario::text(ANSWER).with_first_byte_delay(SLOW),
        );
    }

    let ask = |text: &str| ChatRequest::new("auto").user(text).max_tokens(400);
    let question = "Why is the sky blue?";
    let design = format!(
        "{}How should the client behave when every region is down?",
        "Our service retries failed calls with exponential backoff and full jitter. ".repeat(50)
    );
    let document = format!(
        "{}Summarize the report in three bullet points.",
        "The quarterly report says revenue grew in every region, led by the new subscriptions. "
            .repeat(300)
    );
    let photo = ChatRequest::new("auto")
        .user_parts([
            ContentPart::text("What is in this picture?"),
            ContentPart::image_base64("image/png", PIXEL),
        ])
        .max_tokens(400);
    let accurate = || {
        ChatRequest::new("auto")
            .user("Check this contract clause for ambiguities.")
            .metadata("quality", "accuracy")
            .max_tokens(400)
    };

    println!(
        "   {:<25} {:>6}  {:<9} {:<28} {:>5}  {:>9}  {:>9}",
        "request", "tokens", "route", "served by", "ms", "cost", "daily"
    );

    heading("1. rules pick a route from the prompt");
    serve(&router, "a photo", &photo, false).await?;
    serve(&router, "tagged quality=accuracy", &accurate(), false).await?;
    serve(&router, "a long report", &ask(&document), false).await?;

    // The gpt route streams, so the statistics show a time to first token.
    heading("2. lowest latency moves away from slow gpt-4.1 (streams)");
    for i in 1..=4 {
        serve(
            &router,
            &format!("design question {i}"),
            &ask(&design),
            true,
        )
        .await?;
    }

    heading("3. deepseek answers 429: traffic falls back while it rests");
    sim.enqueue_for_model("deepseek-chat", Scenario::rate_limited(RETRY_AFTER));
    serve(&router, "short question 1", &ask(question), false).await?;
    serve(&router, "short question 2", &ask(question), false).await?;
    tokio::time::sleep(RETRY_AFTER).await;
    println!(
        "   ({} ms later, its rest is over)",
        RETRY_AFTER.as_millis()
    );
    serve(&router, "short question 3", &ask(question), false).await?;

    heading("4. past the daily budget's soft limit, everything goes to cheap");
    for i in 1..=5 {
        let label = format!("tagged quality=accuracy {i}");
        serve(&router, &label, &accurate(), false).await?;
    }
    serve(&router, "design question 5", &ask(&design), true).await?;

    println!("\nrouter.stats():\n{}", router.stats());
    println!("router.budgets():");
    for b in router.budgets().await? {
        println!(
            "   {:<6} ${:.6} of ${:.2} spent, ${:.6} reserved, ${:.6} left, resets in {}",
            b.name,
            b.spent_usd,
            b.limit_usd,
            b.reserved_usd,
            b.remaining_usd(),
            b.resets_in
                .map_or_else(|| "never".to_owned(), |d| hours(d.as_secs()))
        );
    }
    Ok(())
}

/// Sends one request through the router (as a stream, folded, when `stream`) and prints the
/// estimated prompt tokens the rules saw, the route, target, latency and cost of its answer,
/// the daily budget's spend after it, and every attempt that did not serve it.
async fn serve(
    router: &Router,
    label: &str,
    req: &ChatRequest,
    stream: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let tokens = modelgate::tokens::estimate_request(req);
    let before = router.budget("daily", None).await?;
    let started = tokio::time::Instant::now();
    let answer: ChatResponse = if stream {
        router.chat_stream(req).await?.into_response().await?
    } else {
        router.chat(req).await?
    };
    let took = started.elapsed();
    let daily = router.budget("daily", None).await?;
    let route = answer.route.as_ref();
    println!(
        "   {:<25} {:>6}  {:<9} {:<28} {:>5}  {:>9}  {:>9}",
        label,
        tokens,
        route.map_or("-", |r| r.route.as_str()),
        format!("{}/{}", answer.provider, answer.model),
        took.as_millis(),
        usd(answer.cost),
        usd(Some(daily.spent_usd)),
    );
    let used = before.spent_usd + before.reserved_usd;
    if used >= SOFT_LIMIT * before.limit_usd {
        println!(
            "      downgraded: ${used:.6} spent is past the daily budget's soft limit (${:.2})",
            SOFT_LIMIT * before.limit_usd
        );
    }
    for a in route.iter().flat_map(|r| &r.attempts) {
        let why = match a.outcome {
            AttemptOutcome::Failed(kind) => format!("failed: {kind}"),
            AttemptOutcome::Skipped(kind) => format!("skipped: {kind}"),
            AttemptOutcome::Cancelled => "cancelled".to_owned(),
            _ => continue,
        };
        println!("      {}/{} {why}", a.provider, a.model);
    }
    Ok(())
}

fn heading(title: &str) {
    println!("\n{title}");
}

fn usd(cost: Option<f64>) -> String {
    cost.map_or_else(|| "-".to_owned(), |c| format!("${c:.6}"))
}

fn hours(secs: u64) -> String {
    format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60)
}
