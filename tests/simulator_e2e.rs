//! End-to-end checks of the providers against the in-process simulator: connection lifetime,
//! truncation and faults, as a user of the library sees them.
#![cfg(all(feature = "simulator", feature = "openai", feature = "deepseek"))]

use std::time::Duration;

use futures::StreamExt;
use modelgate::providers::{DeepSeek, OpenAi};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest, Delta, ErrorKind};

fn openai(sim: &Simulator) -> OpenAi {
    OpenAi::builder()
        .api_key("sk-sim")
        .base_url(sim.base_url(Wire::OpenAi))
        .http_client(reqwest::Client::new())
        .build()
        .unwrap()
}

/// Lets the simulator's tasks notice closed sockets (the clock is paused: this costs no time).
async fn settle(sim: &Simulator, open: usize) {
    for _ in 0..200 {
        if sim.connections_open() == open {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_closes_its_connection() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("one two three four five six")
            .with_chunk_chars(4)
            .with_stall_after(3),
    );
    let provider = openai(&sim);
    let mut stream = provider
        .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap();
    assert!(matches!(stream.next().await, Some(Ok(Delta::Text(_)))));
    assert_eq!(sim.connections_open(), 1);
    drop(stream);
    settle(&sim, 0).await;
    assert_eq!(
        sim.connections_open(),
        0,
        "the dropped stream's connection is closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_stream_leaves_its_connection_reusable() {
    let sim = Simulator::start().await.unwrap();
    let provider = openai(&sim);
    for _ in 0..3 {
        sim.enqueue(Scenario::text("hello there").with_piece_size(3));
        let r = provider
            .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.text(), "hello there");
    }
    assert_eq!(
        sim.connections_accepted(),
        1,
        "one keep-alive connection served all three"
    );
}

#[tokio::test(start_paused = true)]
async fn a_truncated_stream_is_an_error_after_its_deltas() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("abcdefghijkl")
            .with_chunk_chars(4)
            .with_truncate_after(2),
    );
    let mut stream = openai(&sim)
        .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap();
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    let last = items.pop().unwrap().unwrap_err();
    assert_eq!(last.kind(), ErrorKind::StreamTruncated);
    assert!(items.iter().all(Result::is_ok));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_times_out_when_idle() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("abcdefgh")
            .with_chunk_chars(2)
            .with_stall_after(2),
    );
    let provider = OpenAi::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::OpenAi))
        .idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = provider
        .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() >= Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_byte_hits_the_first_byte_timeout() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("late").with_first_byte_delay(Duration::from_secs(30)));
    let provider = OpenAi::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::OpenAi))
        .first_byte_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = provider
        .chat(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed().as_secs(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_mid_stream_error_event_is_an_err_item() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("abcdefgh")
            .with_chunk_chars(2)
            .with_error_event_at(2),
    );
    let err = openai(&sim)
        .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("openai"));
}

#[tokio::test(start_paused = true)]
async fn deepseek_reasoning_streams_as_reasoning_deltas() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(
        Scenario::text("42")
            .with_reasoning("Six times seven.")
            .with_reasoning_tokens(5),
    );
    let provider = DeepSeek::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::DeepSeek))
        .build()
        .unwrap();
    let r = provider
        .chat_stream(&ChatRequest::new("deepseek-reasoner").user("6*7?"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "42");
    assert_eq!(r.reasoning.as_deref(), Some("Six times seven."));
    assert_eq!(r.usage.unwrap().reasoning_tokens, 5);
    assert_eq!(r.provider, "deepseek");
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_steady_stream_is_not_idle() {
    let sim = Simulator::start().await.unwrap();
    // Four text deltas three seconds apart: twelve seconds in all, never five silent ones.
    sim.enqueue(
        Scenario::text("abcdefgh")
            .with_chunk_chars(2)
            .with_chunk_delay(Duration::from_secs(3)),
    );
    let provider = OpenAi::builder()
        .api_key("k")
        .base_url(sim.base_url(Wire::OpenAi))
        .idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let r = provider
        .chat_stream(&ChatRequest::new("gpt-4o").user("hi"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "abcdefgh");
    assert!(start.elapsed() >= Duration::from_secs(12));
}
