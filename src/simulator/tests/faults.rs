//! Scripting (queues) and the injected failures: errors, rate limits, overload, delays and
//! broken streams.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{call_json, call_stream, chat, client, parse_sse};
use crate::simulator::{Scenario, Simulator, Wire};

#[tokio::test]
async fn per_model_queue_is_served_before_the_global_one() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("global 1"));
    sim.enqueue(Scenario::text("global 2"));
    sim.enqueue_for_model("backup", Scenario::text("backup 1"));
    sim.set_default(Scenario::text("default"));
    let content = |body: Value| {
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        content(call_json(&sim, Wire::OpenAi, "primary").await.2),
        "global 1"
    );
    assert_eq!(
        content(call_json(&sim, Wire::OpenAi, "backup").await.2),
        "backup 1"
    );
    assert_eq!(
        content(call_json(&sim, Wire::OpenAi, "backup").await.2),
        "global 2"
    );
    assert_eq!(
        content(call_json(&sim, Wire::OpenAi, "primary").await.2),
        "default"
    );
    assert_eq!(
        content(call_json(&sim, Wire::OpenAi, "primary").await.2),
        "default"
    );
    let models: Vec<_> = sim
        .requests()
        .into_iter()
        .map(|r| r.model.unwrap())
        .collect();
    assert_eq!(
        models,
        ["primary", "backup", "backup", "primary", "primary"]
    );
}

#[tokio::test]
async fn requests_are_recorded() {
    let sim = Simulator::start().await.unwrap();
    call_stream(&sim, Wire::Gemini, "gemini-2.5-flash").await;
    let recorded = &sim.requests()[0];
    assert_eq!(recorded.wire, Wire::Gemini);
    assert_eq!(recorded.method, "POST");
    assert_eq!(
        recorded.path,
        "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(recorded.header("X-Goog-Api-Key"), Some("gm-test"));
    assert!(
        recorded
            .headers
            .iter()
            .all(|(name, _)| name.chars().all(|c| !c.is_ascii_uppercase()))
    );
    assert_eq!(
        recorded.body["contents"][0]["parts"][0]["text"],
        super::PROMPT
    );
    assert!(recorded.stream);
}

#[tokio::test]
async fn error_scenario_sends_status_body_and_headers() {
    let sim = Simulator::start().await.unwrap();
    let body = r#"{"error":{"message":"nope","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    sim.enqueue(
        Scenario::error(429, body)
            .with_header("retry-after", "3")
            .with_header("x-should-retry", "false"),
    );
    let response = chat(&client(), &sim, Wire::OpenAi, "m", true)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.headers()["x-should-retry"], "false");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), body);
}

#[tokio::test]
async fn rate_limits_use_each_wires_native_body() {
    let sim = Simulator::start().await.unwrap();
    for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Gemini] {
        sim.enqueue(Scenario::rate_limited(Duration::from_millis(2500)));
        let (status, headers, body) = call_json(&sim, wire, "m").await;
        assert_eq!(status, 429, "{wire:?}");
        assert_eq!(headers["retry-after-ms"], "2500");
        assert_eq!(headers["retry-after"], "3");
        match wire {
            Wire::OpenAi => {
                assert_eq!(body["error"]["code"], "rate_limit_exceeded");
                assert_eq!(body["error"]["param"], Value::Null);
                assert!(headers.contains_key("x-request-id"));
            }
            Wire::Anthropic => {
                assert_eq!(body["type"], "error");
                assert_eq!(body["error"]["type"], "rate_limit_error");
                assert_eq!(body["request_id"], headers["request-id"].to_str().unwrap());
            }
            _ => {
                assert_eq!(body["error"]["code"], 429);
                assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
                let details = body["error"]["details"].as_array().unwrap();
                let retry = details
                    .iter()
                    .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
                    .unwrap();
                assert_eq!(retry["retryDelay"], "2.5s");
            }
        }
    }
}

#[tokio::test]
async fn overload_uses_each_wires_native_status() {
    let sim = Simulator::start().await.unwrap();
    let expected = [
        (Wire::OpenAi, 503, json!("server_error")),
        (Wire::DeepSeek, 503, json!("server_error")),
        (Wire::Anthropic, 529, json!("overloaded_error")),
        (Wire::Gemini, 503, json!("UNAVAILABLE")),
    ];
    for (wire, status, kind) in expected {
        sim.enqueue(Scenario::overloaded());
        let (got, _, body) = call_json(&sim, wire, "m").await;
        assert_eq!(got, status, "{wire:?}");
        let got_kind = match wire {
            Wire::Gemini => &body["error"]["status"],
            _ => &body["error"]["type"],
        };
        assert_eq!(got_kind, &kind, "{wire:?}");
    }
}

#[tokio::test]
async fn refused_requests_get_native_errors_and_consume_no_scenario() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("kept"));
    let client = client();

    let response = client
        .post(format!("{}/v1/messages", sim.base_url(Wire::Anthropic)))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "c", "max_tokens": 10, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");

    let response = client
        .post(format!(
            "{}/v1beta/models/g:generateContent",
            sim.base_url(Wire::Gemini)
        ))
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");

    let response = client
        .post(format!("{}/responses", sim.base_url(Wire::OpenAi)))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let url = format!("{}/chat/completions", sim.base_url(Wire::DeepSeek));
    let response = client.post(url).body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);

    assert_eq!(sim.request_count(), 4);
    let (_, _, body) = call_json(&sim, Wire::OpenAi, "m").await;
    assert_eq!(body["choices"][0]["message"]["content"], "kept");
}

#[tokio::test(start_paused = true)]
async fn first_byte_delay_runs_on_tokios_clock() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("late").with_first_byte_delay(Duration::from_secs(30)));
    let started = Instant::now();
    let (status, _, _) = call_json(&sim, Wire::OpenAi, "m").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert!(elapsed >= Duration::from_secs(30), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(31), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn chunk_delay_precedes_every_event() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("abcdefgh").with_chunk_delay(Duration::from_secs(1)));
    let started = Instant::now();
    let (_, body) = call_stream(&sim, Wire::Anthropic, "c").await;
    let events = parse_sse(&body, "\n").len() as u64;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(events),
        "{elapsed:?} for {events} events"
    );
    assert!(
        elapsed < Duration::from_secs(events + 1),
        "{elapsed:?} for {events} events"
    );
}

#[tokio::test]
async fn truncated_streams_lack_their_terminal_marker() {
    let sim = Simulator::start().await.unwrap();
    for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Gemini] {
        sim.enqueue(Scenario::text("a complete answer").with_truncate_after(3));
        let (_, body) = call_stream(&sim, wire, "m").await;
        let eol = if wire == Wire::Gemini { "\r\n" } else { "\n" };
        let events = parse_sse(&body, eol);
        assert_eq!(events.len(), 3, "{wire:?}");
        assert!(
            !body.contains("[DONE]")
                && !body.contains("message_stop")
                && !body.contains("finishReason")
        );
    }
    // Truncating past the end still withholds the marker.
    sim.enqueue(Scenario::text("hi").with_truncate_after(1000));
    let (_, body) = call_stream(&sim, Wire::OpenAi, "m").await;
    assert!(!body.contains("[DONE]"));
    assert!(body.contains("finish_reason\":\"stop"));
}

#[tokio::test]
async fn malformed_chunk_keeps_framing_but_breaks_json() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("abcdefgh").with_malformed_chunk_at(1));
    let (_, body) = call_stream(&sim, Wire::OpenAi, "m").await;
    let events = parse_sse(&body, "\n");
    assert!(serde_json::from_str::<Value>(&events[0].data).is_ok());
    assert!(serde_json::from_str::<Value>(&events[1].data).is_err());
    assert!(serde_json::from_str::<Value>(&events[2].data).is_ok());
    assert_eq!(events.last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn error_events_are_native_and_end_the_stream() {
    let sim = Simulator::start().await.unwrap();
    for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Gemini] {
        sim.enqueue(Scenario::text("abcdefghijkl").with_error_event_at(2));
        let (_, body) = call_stream(&sim, wire, "m").await;
        match wire {
            Wire::OpenAi => {
                let events = parse_sse(&body, "\n");
                assert_eq!(events.len(), 3);
                assert_eq!(events[2].json()["error"]["type"], "server_error");
            }
            Wire::Anthropic => {
                let events = parse_sse(&body, "\n");
                assert_eq!(events.len(), 3);
                assert_eq!(events[2].event.as_deref(), Some("error"));
                assert_eq!(events[2].json()["error"]["type"], "overloaded_error");
            }
            _ => {
                // Two SSE chunks, then a bare JSON object outside SSE framing.
                let (sse, raw) = body.rsplit_once("\r\n\r\n").unwrap();
                assert_eq!(parse_sse(&format!("{sse}\r\n\r\n"), "\r\n").len(), 2);
                assert!(raw.starts_with('{') && !raw.starts_with("data:"));
                let error: Value = serde_json::from_str(raw).unwrap();
                assert_eq!(error["error"]["status"], "UNAVAILABLE");
            }
        }
    }
}

#[tokio::test]
async fn piece_size_does_not_change_the_bytes() {
    let sim = Simulator::start().await.unwrap();
    let answer = || {
        Scenario::text("naïve café ✓ done")
            .with_reasoning("思考中")
            .with_chunk_chars(3)
    };
    sim.enqueue(answer());
    let (_, whole) = call_stream(&sim, Wire::DeepSeek, "m").await;
    sim.enqueue(answer().with_piece_size(3));
    let (_, pieces) = call_stream(&sim, Wire::DeepSeek, "m").await;
    // Only the ids and timestamps differ between two answers.
    let strip = |body: &str| -> Vec<Value> {
        parse_sse(body, "\n")
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(|e| {
                let mut chunk = e.json();
                chunk["id"] = Value::Null;
                chunk["created"] = Value::Null;
                chunk
            })
            .collect()
    };
    assert_eq!(strip(&whole), strip(&pieces));

    sim.enqueue(Scenario::text("whole body in pieces").with_piece_size(7));
    let (status, headers, body) = call_json(&sim, Wire::Anthropic, "c").await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("content-length"));
    assert_eq!(body["content"][0]["text"], "whole body in pieces");
}
