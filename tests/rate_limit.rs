//! The quota a provider announces in its answer's headers reaches the caller, on the response
//! and on the stream, whichever wire format carried it.
#![cfg(all(
    feature = "simulator",
    feature = "openai",
    feature = "anthropic",
    feature = "gemini"
))]

use std::time::Duration;

use modelgate::providers::{Anthropic, Gemini, OpenAi};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest, RateLimitStatus};

fn openai(sim: &Simulator) -> OpenAi {
    OpenAi::builder()
        .api_key("sk-sim")
        .base_url(sim.base_url(Wire::OpenAi))
        .build()
        .unwrap()
}

fn anthropic(sim: &Simulator) -> Anthropic {
    Anthropic::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::Anthropic))
        .build()
        .unwrap()
}

fn req() -> ChatRequest {
    ChatRequest::new("some-model").user("hi")
}

#[tokio::test]
async fn openai_answers_and_streams_carry_their_quota() {
    let sim = Simulator::start().await.unwrap();
    let provider = openai(&sim);
    sim.enqueue(Scenario::text("hello").with_rate_limit(59, 149_984, Duration::from_millis(1500)));
    let answer = provider.chat(&req()).await.unwrap();
    let expected = RateLimitStatus::new()
        .with_remaining_requests(59)
        .with_remaining_tokens(149_984)
        .with_requests_reset(Duration::from_millis(1500))
        .with_tokens_reset(Duration::from_millis(1500));
    assert_eq!(answer.rate_limit, Some(expected));

    sim.enqueue(Scenario::text("hello").with_rate_limit(0, 10, Duration::from_secs(360)));
    let stream = provider.chat_stream(&req()).await.unwrap();
    let status = *stream.rate_limit().expect("known before the first delta");
    assert_eq!(status.remaining_requests, Some(0));
    assert_eq!(status.remaining_tokens, Some(10));
    assert_eq!(status.requests_reset, Some(Duration::from_secs(360)));
    assert!(status.is_nearly_exhausted(1));
    assert_eq!(status.reset(), Some(Duration::from_secs(360)));
    // Folding the stream keeps it.
    let folded = stream.into_response().await.unwrap();
    assert_eq!(folded.text(), "hello");
    assert_eq!(folded.rate_limit, Some(status));
}

#[tokio::test]
async fn anthropic_answers_and_streams_carry_their_quota() {
    let sim = Simulator::start().await.unwrap();
    let provider = anthropic(&sim);
    let near = |d: Option<Duration>, secs: u64| {
        // RFC 3339 resets and the `date` header are whole seconds.
        d.is_some_and(|d| d.as_secs().abs_diff(secs) <= 2)
    };
    sim.enqueue(Scenario::text("hello").with_rate_limit(999, 80_000, Duration::from_secs(30)));
    let answer = provider.chat(&req()).await.unwrap();
    let status = answer.rate_limit.expect("anthropic-ratelimit-* headers");
    assert_eq!(status.remaining_requests, Some(999));
    assert_eq!(status.remaining_tokens, Some(80_000));
    assert!(near(status.requests_reset, 30), "{status:?}");
    assert!(near(status.tokens_reset, 30), "{status:?}");
    assert!(!status.is_nearly_exhausted(1_000));
    assert!(status.is_nearly_exhausted(100_000));

    sim.enqueue(Scenario::text("hello").with_rate_limit(5, 0, Duration::from_secs(60)));
    let stream = provider.chat_stream(&req()).await.unwrap();
    let status = *stream.rate_limit().expect("known before the first delta");
    assert_eq!(status.remaining_requests, Some(5));
    assert_eq!(status.remaining_tokens, Some(0));
    assert!(near(status.reset(), 60), "{status:?}");
    let folded = stream.into_response().await.unwrap();
    assert_eq!(folded.rate_limit, Some(status));
}

#[tokio::test]
async fn answers_without_quota_headers_have_none() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("hello"));
    assert_eq!(openai(&sim).chat(&req()).await.unwrap().rate_limit, None);
    sim.enqueue(Scenario::text("hello"));
    let stream = anthropic(&sim).chat_stream(&req()).await.unwrap();
    assert_eq!(stream.rate_limit(), None);
    // Gemini sends no quota headers, so the simulator sends none either.
    let gemini = Gemini::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::Gemini))
        .build()
        .unwrap();
    sim.enqueue(Scenario::text("hello").with_rate_limit(1, 2, Duration::from_secs(3)));
    assert_eq!(gemini.chat(&req()).await.unwrap().rate_limit, None);
}

#[tokio::test]
async fn a_scripted_header_set_is_read_like_a_real_one() {
    // Groq-style headers written by hand, one malformed.
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("hello")
            .with_header("x-ratelimit-remaining-requests", "14370")
            .with_header("x-ratelimit-remaining-tokens", "not-a-number")
            .with_header("x-ratelimit-reset-requests", "2m59.56s"),
    );
    let status = openai(&sim).chat(&req()).await.unwrap().rate_limit.unwrap();
    assert_eq!(status.remaining_requests, Some(14_370));
    assert_eq!(status.remaining_tokens, None);
    assert_eq!(status.requests_reset, Some(Duration::from_millis(179_560)));
}
