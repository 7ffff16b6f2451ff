//! A loopback HTTP/1.1 server that answers every request with the same pre-rendered response,
//! so benchmarks measure the client, not the server. Both the raw baseline and modelgate call it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Starts the server on the current runtime; every request gets `status 200`, `content_type`, `body`.
pub async fn static_server(content_type: &'static str, body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let response: &'static [u8] = Box::leak(response.into_boxed_slice());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut filled = 0;
                loop {
                    // Read one request: head, then content-length bytes of body.
                    let (head_end, body_len) = loop {
                        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, len);
                        }
                        if filled == buf.len() {
                            buf.resize(buf.len() * 2, 0);
                        }
                        match sock.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                    };
                    while filled < head_end + body_len {
                        if filled == buf.len() {
                            buf.resize(buf.len() * 2, 0);
                        }
                        match sock.read(&mut buf[filled..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => filled += n,
                        }
                    }
                    buf.copy_within(head_end + body_len..filled, 0);
                    filled -= head_end + body_len;
                    if sock.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The runtime every benchmark runs on: one thread for the loopback server and the client, so
/// the figure is the CPU each side spends rather than the scheduling noise of cross-thread
/// wake-ups (which, on two cores, swamped a 5 % difference run to run).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The one HTTP client both sides of a comparison share.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

/// An OpenAI provider aimed at the loopback server at `addr`, sharing `client`'s pool.
pub fn openai(addr: SocketAddr, client: &reqwest::Client) -> modelgate::providers::OpenAi {
    modelgate::providers::OpenAi::builder()
        .api_key("sk-bench")
        .base_url(format!("http://{addr}/v1"))
        .http_client(client.clone())
        .build()
        .unwrap()
}

/// The request both sides send, as a normalized request for `model`.
pub fn request(model: &str) -> modelgate::ChatRequest {
    modelgate::ChatRequest::new(model)
        .system("Be brief.")
        .user("Why is the sky blue?")
}

/// Reads a whole stream, counting the bytes of its text.
pub async fn read_stream(
    provider: &dyn modelgate::ChatProvider,
    req: &modelgate::ChatRequest,
) -> usize {
    use futures::StreamExt;
    let mut stream = provider.chat_stream(req).await.unwrap();
    let mut text = 0;
    while let Some(d) = stream.next().await {
        if let modelgate::Delta::Text(t) = d.unwrap() {
            text += t.len();
        }
    }
    text
}

/// A realistic non-streamed chat completion.
pub fn completion_body() -> Vec<u8> {
    serde_json::json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1732000000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "The sky looks blue because air molecules scatter short blue wavelengths of sunlight far more than long red ones, so blue light reaches your eyes from every direction.",
            "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 24, "completion_tokens": 36, "total_tokens": 60,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default"
    })
    .to_string()
    .into_bytes()
}

/// A streamed answer of `n` text chunks, then finish, usage and `[DONE]`.
pub fn stream_body(n: usize) -> Vec<u8> {
    let mut out = String::new();
    let head = r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":"#;
    out.push_str(&format!("data: {head}{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"));
    for i in 0..n {
        out.push_str(&format!(
            "data: {head}{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"Qx\"}}\n\n"
        ));
    }
    out.push_str(&format!(
        "data: {head}{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"
    ));
    out.push_str(r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":36,"total_tokens":60}}"#);
    out.push_str("\n\ndata: [DONE]\n\n");
    out.into_bytes()
}

/// The request body both sides send.
pub fn request_json(stream: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Why is the sky blue?"}],
    });
    if stream {
        v["stream"] = true.into();
        v["stream_options"] = serde_json::json!({"include_usage": true});
    }
    v
}
