//! End-to-end tests: a real simulator on a loopback socket, driven with reqwest, and its
//! output parsed by hand so the tests check the bytes a provider client would see.

mod connections;
mod faults;
mod formats;
mod raw;

use serde_json::{Value, json};

use super::{Simulator, Wire};

/// Handles and scenarios move freely between tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Simulator>();
    send_sync::<super::Scenario>();
    send_sync::<super::RecordedRequest>();
};

/// The prompt every helper request sends.
const PROMPT: &str = "Hello there";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

/// A minimal valid chat request for `wire`, with the credentials that wire requires and, for
/// OpenAI streams, `stream_options.include_usage`.
fn chat(
    client: &reqwest::Client,
    sim: &Simulator,
    wire: Wire,
    model: &str,
    stream: bool,
) -> reqwest::RequestBuilder {
    let base = sim.base_url(wire);
    match wire {
        Wire::OpenAi | Wire::DeepSeek => {
            let mut body = json!({"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream});
            if stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            client
                .post(format!("{base}/chat/completions"))
                .bearer_auth("sk-test")
                .json(&body)
        }
        Wire::Anthropic => client
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(&json!({
                "model": model, "max_tokens": 1024, "stream": stream,
                "messages": [{"role": "user", "content": PROMPT}],
            })),
        Wire::Gemini => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            client
                .post(format!("{base}/v1beta/models/{model}:{method}"))
                .header("x-goog-api-key", "gm-test")
                .json(&json!({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}))
        }
    }
}

/// Sends a non-streaming request and returns status, headers and the body as JSON.
async fn call_json(
    sim: &Simulator,
    wire: Wire,
    model: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = chat(&client(), sim, wire, model, false)
        .send()
        .await
        .expect("request succeeds");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body arrives");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, headers, body)
}

/// Sends a streaming request and returns the content type and the raw body.
async fn call_stream(sim: &Simulator, wire: Wire, model: &str) -> (String, String) {
    let response = chat(&client(), sim, wire, model, true)
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.expect("body arrives"))
}

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    event: Option<String>,
    data: String,
}

impl Sse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// Parses an SSE body whose events end with `eol` twice, insisting on the exact framing the
/// simulator promises: only `event:` and `data:` lines, every event complete.
fn parse_sse(body: &str, eol: &str) -> Vec<Sse> {
    let separator = format!("{eol}{eol}");
    assert!(
        body.ends_with(&separator),
        "body does not end with a complete event: {body:?}"
    );
    if eol == "\r\n" {
        assert!(
            !body.replace("\r\n", "").contains('\n'),
            "bare LF in a CRLF stream: {body:?}"
        );
    }
    body.split(&separator)
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.split(eol) {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Sse {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}
