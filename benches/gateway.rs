//! The gateway's own cost: the same router called in-process and through the gateway's HTTP
//! endpoint, against the built-in simulator, at concurrency 1 and 32. Prints the median latency
//! and the process's CPU time per request (user + system, from `/proc/self/stat`; simulator and
//! client included in both, so the difference is the gateway's HTTP layer and JSON).
//!
//! ```sh
//! cargo bench --features server --bench gateway
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use modelgate::providers::OpenAi;
use modelgate::router::{Router, Target};
use modelgate::server::Gateway;
use modelgate::simulator::{Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest};
use serde_json::json;

const REQUESTS: usize = 2_000;

/// The process's CPU time so far (Linux: utime + stime in clock ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the command name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run<F, Fut>(concurrency: usize, call: F) -> (Duration, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    // Warm up pools and caches.
    for _ in 0..50 {
        call().await;
    }
    let cpu_before = cpu();
    let per_task = REQUESTS / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    call().await;
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let cpu_per_request = (cpu() - cpu_before) / (per_task * concurrency) as u32;
    (median(all), cpu_per_request)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = Simulator::start().await.unwrap();
        let openai: Arc<dyn ChatProvider> = Arc::new(
            OpenAi::builder()
                .api_key("sk-bench")
                .base_url(sim.base_url(Wire::OpenAi))
                .build()
                .unwrap(),
        );
        let router = Router::builder()
            .route("chat", [Target::new(openai, "gpt-4o-mini")])
            .build()
            .unwrap();
        let app = Gateway::new(router.clone()).into_app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/chat/completions", listener.local_addr().unwrap());
        tokio::spawn(modelgate::server::serve(
            listener,
            app,
            std::future::pending(),
            Duration::ZERO,
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let req = ChatRequest::new("chat").user("Why is the sky blue?");
        let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Why is the sky blue?"}]});
        let stream_body = json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Why is the sky blue?"}]});

        println!("{:<8} {:<6} {:>11} {:>12} {:>11} {:>12}", "call", "conc.", "in-proc p50", "in-proc CPU", "gateway p50", "gateway CPU");
        for concurrency in [1, 32] {
            for stream in [false, true] {
                let r = router.clone();
                let q = req.clone();
                let direct = run(concurrency, move || {
                    let (r, q) = (r.clone(), q.clone());
                    async move {
                        if stream {
                            let mut s = r.chat_stream(&q).await.unwrap();
                            while let Some(d) = s.next().await {
                                d.unwrap();
                            }
                        } else {
                            r.chat(&q).await.unwrap();
                        }
                    }
                })
                .await;
                let (h, u) = (http.clone(), url.clone());
                let b = if stream { stream_body.clone() } else { body.clone() };
                let gateway = run(concurrency, move || {
                    let (h, u, b) = (h.clone(), u.clone(), b.clone());
                    async move {
                        let resp = h.post(&u).json(&b).send().await.unwrap();
                        assert!(resp.status().is_success());
                        resp.bytes().await.unwrap();
                    }
                })
                .await;
                println!(
                    "{:<8} {:<6} {:>9.0}µs {:>10.0}µs {:>9.0}µs {:>10.0}µs",
                    if stream { "stream" } else { "chat" },
                    concurrency,
                    direct.0.as_secs_f64() * 1e6,
                    direct.1.as_secs_f64() * 1e6,
                    gateway.0.as_secs_f64() * 1e6,
                    gateway.1.as_secs_f64() * 1e6,
                );
            }
        }
    });
}
