//! One chat round trip through `OpenAi` vs a raw reqwest + serde_json call, against the same
//! loopback server, sequentially and at concurrency 32.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::join_all;
use modelgate::providers::OpenAi;
use modelgate::{ChatProvider, ChatRequest};
use serde::Deserialize;

#[derive(Deserialize)]
struct RawCompletion {
    choices: Vec<RawChoice>,
    usage: RawUsage,
}
#[derive(Deserialize)]
struct RawChoice {
    message: RawMessage,
}
#[derive(Deserialize)]
struct RawMessage {
    content: Option<String>,
}
#[derive(Deserialize)]
struct RawUsage {
    prompt_tokens: u64,
}

async fn raw_call(client: &reqwest::Client, url: &str) -> usize {
    let resp = client
        .post(url)
        .bearer_auth("sk-bench")
        .json(&common::request_json(false))
        .send()
        .await
        .unwrap();
    let bytes = resp.bytes().await.unwrap();
    let c: RawCompletion = serde_json::from_slice(&bytes).unwrap();
    c.choices[0].message.content.as_ref().unwrap().len() + c.usage.prompt_tokens as usize
}

async fn lib_call(provider: &OpenAi, req: &ChatRequest) -> usize {
    let r = provider.chat(req).await.unwrap();
    r.text().len() + r.usage.unwrap().input_tokens as usize
}

fn bench(c: &mut Criterion) {
    let rt = common::runtime();
    let addr = rt.block_on(common::static_server(
        "application/json",
        common::completion_body(),
    ));
    let url = format!("http://{addr}/v1/chat/completions");
    let client = common::client();
    let provider = common::openai(addr, &client);
    let req = common::request("gpt-4o-mini");

    let mut group = c.benchmark_group("chat_roundtrip");
    group.bench_function("raw_reqwest_serde/c1", |b| {
        b.to_async(&rt).iter(|| raw_call(&client, &url))
    });
    group.bench_function("modelgate_openai/c1", |b| {
        b.to_async(&rt).iter(|| lib_call(&provider, &req))
    });
    group.bench_function("raw_reqwest_serde/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| raw_call(&client, &url))))
    });
    group.bench_function("modelgate_openai/c32", |b| {
        b.to_async(&rt)
            .iter(|| join_all((0..32).map(|_| lib_call(&provider, &req))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
