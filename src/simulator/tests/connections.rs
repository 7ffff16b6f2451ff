//! Connection handling: keep-alive, and connections closing promptly when a client goes away
//! or the simulator shuts down.

use std::time::Duration;

use super::{call_json, chat, client};
use crate::simulator::{Scenario, Simulator, Wire};

/// Waits (in real time, at most five seconds) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let sim = Simulator::start().await.unwrap();
    let client = client();
    for (i, wire) in [Wire::OpenAi, Wire::DeepSeek, Wire::Anthropic, Wire::Gemini]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let stream = i % 2 == 1;
        let response = chat(&client, &sim, wire, "m", stream).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap();
    }
    // Errors and pieced bodies must leave the connection reusable too.
    sim.enqueue(Scenario::rate_limited(Duration::from_secs(1)));
    sim.enqueue(Scenario::text("in pieces").with_piece_size(5));
    for _ in 0..2 {
        chat(&client, &sim, Wire::Anthropic, "m", false)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(sim.request_count(), 10);
    assert_eq!(sim.connections_accepted(), 1);
    assert_eq!(sim.connections_open(), 1);
    drop(client);
    eventually("the client's pool closed its connection", || {
        sim.connections_open() == 0
    })
    .await;
}

#[tokio::test]
async fn dropping_a_stalled_stream_closes_its_connection() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("never finishes").with_stall_after(2));
    let client = client();
    let mut response = chat(&client, &sim, Wire::OpenAi, "m", true)
        .send()
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        received.extend_from_slice(&response.chunk().await.unwrap().expect("stream still open"));
    }
    assert_eq!(sim.connections_open(), 1);
    // The stall holds: nothing more arrives.
    let more = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
    assert!(more.is_err(), "a stalled stream sent more data");

    drop(response);
    eventually("the server closed the dropped stream's connection", || {
        sim.connections_open() == 0
    })
    .await;
    assert_eq!(sim.connections_accepted(), 1);
    // The client itself is still alive: the connection closed because the stream was dropped.
    let (status, _, _) = call_json(&sim, Wire::OpenAi, "m").await;
    assert_eq!(status, 200);
    drop(client);
}

#[tokio::test]
async fn a_client_that_gives_up_during_the_first_byte_delay_is_let_go() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("too late").with_first_byte_delay(Duration::from_secs(3600)));
    let client = client();
    let request = chat(&client, &sim, Wire::Anthropic, "m", false).send();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), request)
            .await
            .is_err()
    );
    eventually("the abandoned connection closed", || {
        sim.connections_open() == 0
    })
    .await;
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("stuck").with_stall_after(1));
    let client = client();
    let mut response = chat(&client, &sim, Wire::Gemini, "g", true)
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap();
    assert_eq!(sim.connections_open(), 1);

    sim.shutdown();
    eventually("shutdown closed the connection", || {
        sim.connections_open() == 0
    })
    .await;
    // The stalled body ends early: as an error or as a clean end without the rest.
    while let Ok(Some(_)) = response.chunk().await {}
    let url = sim.base_url(Wire::OpenAi);
    eventually_fails(&client, &url).await;
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let sim = Simulator::start().await.unwrap();
    let url = sim.base_url(Wire::OpenAi);
    let other = sim.clone();
    drop(sim);
    let (status, _, _) = call_json(&other, Wire::OpenAi, "m").await;
    assert_eq!(status, 200, "a clone keeps the server alive");
    drop(other);
    eventually_fails(&client(), &url).await;
}

/// Checks that new requests to `base_url` fail once the listener is gone (the abort takes
/// effect when the runtime next polls the accept task).
async fn eventually_fails(client: &reqwest::Client, base_url: &str) {
    for _ in 0..500 {
        let sent = client
            .post(format!("{base_url}/chat/completions"))
            .json(
                &serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            )
            .send()
            .await;
        if sent.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the simulator still answers after shutdown");
}
