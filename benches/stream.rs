//! Stream decoding: SSE framing + JSON + normalization of a 2,000-chunk answer through
//! `OpenAi::chat_stream`, vs a raw reqwest + serde_json reader of the same loopback body.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use futures::future::join_all;
use serde::Deserialize;

const CHUNKS: usize = 2_000;

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawChoice>,
}
#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    delta: Option<RawDelta>,
}
#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
}

/// The least a hand-written client must do: split events on blank lines, parse each JSON chunk,
/// keep the text.
async fn raw_stream(client: &reqwest::Client, url: &str) -> usize {
    let resp = client
        .post(url)
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
        // Consume every complete event in the buffer, then drop them in one move.
        let mut start = 0;
        while let Some(i) = memchr::memmem::find(&buf[start..], b"\n\n") {
            let event = &buf[start..start + i];
            if let Some(data) = event.strip_prefix(b"data: ")
                && data != b"[DONE]"
            {
                let c: RawChunk = serde_json::from_slice(data).unwrap();
                if let Some(t) = c.choices.into_iter().next().and_then(|c| c.delta?.content) {
                    text += t.len();
                }
            }
            start += i + 2;
        }
        buf.drain(..start);
    }
    text
}

fn bench(c: &mut Criterion) {
    let rt = common::runtime();
    let addr = rt.block_on(common::static_server(
        "text/event-stream",
        common::stream_body(CHUNKS),
    ));
    let url = format!("http://{addr}/v1/chat/completions");
    let client = common::client();
    let provider = common::openai(addr, &client);
    let req = common::request("gpt-4o-mini");
    assert_eq!(
        rt.block_on(raw_stream(&client, &url)),
        rt.block_on(common::read_stream(&provider, &req))
    );

    let mut group = c.benchmark_group("stream_decode");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function("raw_reqwest_serde", |b| {
        b.to_async(&rt).iter(|| raw_stream(&client, &url))
    });
    group.bench_function("modelgate_openai", |b| {
        b.to_async(&rt)
            .iter(|| common::read_stream(&provider, &req))
    });
    group.throughput(Throughput::Elements(32 * CHUNKS as u64));
    group.bench_function("raw_reqwest_serde/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| raw_stream(&client, &url))))
    });
    group.bench_function("modelgate_openai/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| common::read_stream(&provider, &req))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
