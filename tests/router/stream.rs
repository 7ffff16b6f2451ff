//! Stream pre-flight: a stream is held until its first content delta, so failures before it are
//! retried, fallen back or hedged; after it, errors surface and nothing is re-sent.

use futures::StreamExt;
use modelgate::router::{RetryPolicy, Router, Target};
use modelgate::simulator::Scenario;
use modelgate::types::{AttemptOutcome as O, AttemptReason as R};
use modelgate::{ChatProvider, ChatRequest, ChatStream, Delta, ErrorKind, FinishReason};
use tokio::time::Instant;

use crate::sim::{self, count, ms, secs, steps};

/// Reads a stream to its end: its text, and the error that ended it, if any.
async fn drain(mut stream: ChatStream) -> (String, Vec<Delta>, Option<modelgate::Error>) {
    let mut text = String::new();
    let mut deltas = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(d) => {
                if let Delta::Text(t) = &d {
                    text.push_str(t);
                }
                deltas.push(d);
            }
            Err(e) => return (text, deltas, Some(e)),
        }
    }
    (text, deltas, None)
}

fn two_targets(p: &std::sync::Arc<dyn ChatProvider>) -> modelgate::router::RouterBuilder {
    Router::builder().route(
        "chat",
        [
            Target::new(p.clone(), "model-a"),
            Target::new(p.clone(), "model-b"),
        ],
    )
}

#[tokio::test(start_paused = true)]
async fn a_stream_stalled_before_its_first_delta_is_served_whole_by_the_next_target() {
    let sim = modelgate::simulator::Simulator::start().await.unwrap();
    let (pa, pb) = (sim::openai(&sim), sim::openai(&sim));
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(pa, "model-a"), Target::new(pb, "model-b")],
        )
        .retry(RetryPolicy::none())
        .first_delta_timeout(secs(5))
        .build()
        .unwrap();
    // a sends its headers and role chunk, then nothing.
    sim.enqueue_for_model("model-a", Scenario::text("never").with_stall_after(1));
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("the whole answer").with_chunk_chars(3),
    );
    let t0 = Instant::now();
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), secs(5));
    let route = stream.route().unwrap().clone();
    assert_eq!(
        steps(&route),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Timeout)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(route.attempts[0].latency, secs(5));
    assert_eq!(stream.provider(), "openai");
    let (text, deltas, err) = drain(stream).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text, "the whole answer");
    assert!(deltas.contains(&Delta::Finish(FinishReason::Stop)));
    assert!(deltas.iter().any(|d| matches!(d, Delta::Usage(_))));
    // The stalled stream was dropped: its connection is closed.
    sim::settle().await;
    assert_eq!(sim.connections_open(), 1);
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_per_target_first_delta_timeout_replaces_the_routers() {
    let (sim, p) = sim::start().await;
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-a").first_delta_timeout(ms(700)),
                Target::new(p.clone(), "model-b"),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("never").with_first_byte_delay(secs(60)),
    );
    let t0 = Instant::now();
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(700));
    assert_eq!(drain(stream).await.0, "You said: x");
}

#[tokio::test(start_paused = true)]
async fn pre_flight_holds_the_stream_until_its_first_content_delta() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).retry(RetryPolicy::none()).build().unwrap();
    // a fails after its role chunk, before any content: the caller never sees a.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abandoned").with_error_event_at(1),
    );
    sim.enqueue_for_model(
        "model-b",
        Scenario::text("served by b").with_chunk_delay(ms(100)),
    );
    let t0 = Instant::now();
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    // b's role chunk at 100 ms is held; its first text at 200 ms releases the stream.
    assert_eq!(t0.elapsed(), ms(200));
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Server)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(stream.route().unwrap().attempts[1].latency, ms(200));
    let (text, _, err) = drain(stream).await;
    assert!(err.is_none());
    assert_eq!(text, "served by b");

    // A stream that breaks before its first delta falls back (undecodable) or is retried
    // (truncated) likewise.
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(p.clone(), "model-c"),
                Target::new(p.clone(), "model-d"),
            ],
        )
        .retry(RetryPolicy::default().with_base_delay(ms(10)))
        .build()
        .unwrap();
    sim.enqueue_for_model("model-c", Scenario::text("one").with_malformed_chunk_at(1));
    sim.enqueue_for_model("model-d", Scenario::text("two").with_truncate_after(1));
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(
        steps(stream.route().unwrap()),
        [
            ("model-c", R::First, O::Failed(ErrorKind::Decode)),
            (
                "model-d",
                R::Fallback,
                O::Failed(ErrorKind::StreamTruncated)
            ),
            ("model-d", R::Retry, O::Success),
        ]
    );
    assert_eq!(drain(stream).await.0, "You said: x");
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_first_delta_surfaces_and_is_not_resent() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).build().unwrap();
    // Events: role chunk, "abcd", "efgh", then an error event instead of the rest.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abcdefghijkl").with_error_event_at(3),
    );
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let (text, _, err) = drain(stream).await;
    assert_eq!(text, "abcdefgh");
    assert_eq!(err.expect("the failure surfaces").kind(), ErrorKind::Server);
    assert_eq!(sim.request_count(), 1, "nothing was re-sent");

    // A truncated stream likewise ends with an error, not a clean end, and no second request.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abcdefghijkl").with_truncate_after(3),
    );
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    let (text, _, err) = drain(stream).await;
    assert_eq!(text, "abcdefgh");
    assert_eq!(err.unwrap().kind(), ErrorKind::StreamTruncated);

    // So does a stall after the first delta: the stream's own idle timeout, not a retry.
    sim.enqueue_for_model(
        "model-a",
        Scenario::text("abcdefghijkl").with_stall_after(2),
    );
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x").timeout(secs(20)))
        .await
        .unwrap();
    let t0 = Instant::now();
    let (text, _, err) = drain(stream).await;
    assert_eq!(text, "abcd");
    assert_eq!(err.unwrap().kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), secs(20));
    assert_eq!(sim.request_count(), 3);
    assert_eq!(count(&sim, "model-b"), 0);
}

#[tokio::test]
async fn a_stream_keeps_every_delta_and_records_its_route() {
    let (sim, p) = sim::start().await;
    let router = two_targets(&p).retry(RetryPolicy::none()).build().unwrap();
    sim.enqueue_for_model("model-a", Scenario::overloaded());
    sim.enqueue_for_model(
        "model-b",
        Scenario::tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#).with_usage(9, 4),
    );
    let stream = router
        .chat_stream(&ChatRequest::new("chat").user("x"))
        .await
        .unwrap();
    assert_eq!(stream.model(), "model-b");
    let r = stream.into_response().await.unwrap();
    assert_eq!(r.tool_calls().len(), 1);
    assert_eq!(r.tool_calls()[0].name, "get_weather");
    assert_eq!(r.tool_calls()[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(r.usage.unwrap().input_tokens, 9);
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let route = r.route.unwrap();
    assert_eq!(route.route, "chat");
    assert_eq!(
        steps(&route),
        [
            ("model-a", R::First, O::Failed(ErrorKind::Overloaded)),
            ("model-b", R::Fallback, O::Success),
        ]
    );
    assert_eq!(sim.requests().iter().filter(|r| r.stream).count(), 2);
}
