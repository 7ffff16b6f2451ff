//! A fixed number of calls of one kind, for counting instructions with callgrind, which is
//! deterministic where wall-clock benchmarks on a shared two-core machine are not:
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! for n in 100 600; do
//!   MG_PROBE=direct MG_CALLS=$n valgrind --tool=callgrind target/release/deps/instructions-* 2>&1 | grep refs
//! done
//! ```
//!
//! The difference between the two counts, divided by 500, is the instructions per call (client and
//! loopback server together, user space). `MG_PROBE` is one of `raw` (reqwest + serde_json),
//! `direct` (`OpenAi::chat`), `router` (the same through a router with every policy on),
//! `full` (the router with rules, a lowest-latency strategy over two targets, a daily budget
//! and a tag budget on top), `unhedged` (the same without hedging),
//! `rawstream` and `stream` (a 2,000-chunk streamed answer). Without `MG_PROBE` it runs each kind
//! a few times, as a smoke test.

mod common;
use modelgate::ChatProvider;
use modelgate::router::{
    Budget, CircuitBreaker, Condition, HedgePolicy, RetryPolicy, Router, Rules, Strategy, Target,
};
use std::sync::Arc;
#[derive(serde::Deserialize)]
struct Raw {
    choices: Vec<RawChoice>,
    usage: RawUsage,
}
#[derive(serde::Deserialize)]
struct RawChoice {
    message: RawMessage,
}
#[derive(serde::Deserialize)]
struct RawMessage {
    content: Option<String>,
}
#[derive(serde::Deserialize)]
struct RawUsage {
    prompt_tokens: u64,
}
#[derive(serde::Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawStreamChoice>,
}
#[derive(serde::Deserialize)]
struct RawStreamChoice {
    #[serde(default)]
    delta: Option<RawMessage>,
}
fn main() {
    match std::env::var("MG_PROBE") {
        Ok(which) => {
            let n = std::env::var("MG_CALLS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(100);
            probe(&which, n);
        }
        Err(_) => {
            for which in [
                "raw",
                "direct",
                "router",
                "full",
                "unhedged",
                "rawstream",
                "stream",
            ] {
                probe(which, 3);
            }
        }
    }
}

fn probe(which: &str, n: usize) {
    let rt = common::runtime();
    let client = common::client();
    let addr = rt.block_on(common::static_server(
        "application/json",
        common::completion_body(),
    ));
    let direct: Arc<dyn ChatProvider> = Arc::new(common::openai(addr, &client));
    let all = Router::builder()
        .route("chat", [Target::new(direct.clone(), "gpt-4o-mini")])
        .retry(RetryPolicy::default())
        .hedge(HedgePolicy::adaptive(0.95))
        .circuit_breaker(CircuitBreaker::default())
        .build()
        .unwrap();
    let full_router = |hedge: bool| {
        let builder = Router::builder()
            .route(
                "chat",
                [
                    Target::new(direct.clone(), "gpt-4o-mini"),
                    Target::new(direct.clone(), "gpt-4.1-mini"),
                ],
            )
            .route("accurate", [Target::new(direct.clone(), "gpt-4.1")])
            .rules(
                "auto",
                Rules::new()
                    .when(Condition::has_images(), "accurate")
                    .when(Condition::tag("quality", "accuracy"), "accurate")
                    .when(Condition::max_input_tokens(500), "chat")
                    .otherwise("accurate"),
            )
            .strategy("chat", Strategy::lowest_latency())
            .retry(RetryPolicy::default())
            .circuit_breaker(CircuitBreaker::default())
            .budget(Budget::new("daily", 1e9).daily())
            .budget(Budget::new("team", 1e9).for_tag("team", "bench"));
        let builder = if hedge {
            builder.hedge(HedgePolicy::adaptive(0.95))
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let full = full_router(true);
    let unhedged = full_router(false);
    if which == "stream" || which == "rawstream" {
        let saddr = rt.block_on(common::static_server(
            "text/event-stream",
            common::stream_body(2000),
        ));
        let provider = common::openai(saddr, &client);
        let url = format!("http://{saddr}/v1/chat/completions");
        rt.block_on(async {
            for _ in 0..n {
                if which == "stream" {
                    common::read_stream(&provider, &common::request("gpt-4o-mini")).await;
                } else {
                    use futures::StreamExt;
                    let resp = client
                        .post(&url)
                        .bearer_auth("sk-bench")
                        .json(&common::request_json(true))
                        .send()
                        .await
                        .unwrap();
                    let mut body = resp.bytes_stream();
                    let mut buf: Vec<u8> = Vec::new();
                    let mut text = 0;
                    while let Some(chunk) = body.next().await {
                        buf.extend_from_slice(&chunk.unwrap());
                        let mut start = 0;
                        while let Some(i) = memchr::memmem::find(&buf[start..], b"\n\n") {
                            let event = &buf[start..start + i];
                            if let Some(data) = event.strip_prefix(b"data: ")
                                && data != b"[DONE]"
                            {
                                let c: RawChunk = serde_json::from_slice(data).unwrap();
                                if let Some(t) =
                                    c.choices.into_iter().next().and_then(|c| c.delta?.content)
                                {
                                    text += t.len();
                                }
                            }
                            start += i + 2;
                        }
                        buf.drain(..start);
                    }
                    assert!(text > 0);
                }
            }
        });
        return;
    }
    if which == "raw" {
        let url = format!("http://{addr}/v1/chat/completions");
        rt.block_on(async {
            for _ in 0..n {
                let resp = client
                    .post(&url)
                    .bearer_auth("sk-bench")
                    .json(&common::request_json(false))
                    .send()
                    .await
                    .unwrap();
                let bytes = resp.bytes().await.unwrap();
                let v: Raw = serde_json::from_slice(&bytes).unwrap();
                assert!(v.choices[0].message.content.is_some() && v.usage.prompt_tokens > 0);
            }
        });
        return;
    }
    let (p, r): (&dyn ChatProvider, _) = match which {
        "direct" => (direct.as_ref(), common::request("gpt-4o-mini")),
        "full" => (&full, common::request("auto").metadata("team", "bench")),
        "unhedged" => (&unhedged, common::request("auto").metadata("team", "bench")),
        _ => (&all, common::request("chat")),
    };
    rt.block_on(async {
        for _ in 0..n {
            p.chat(&r).await.unwrap();
        }
    });
}
