//! OpenAI wire tests: exact transcripts replayed in 1- to 7-byte pieces.
#![cfg(feature = "openai")]

mod support;

use futures::StreamExt;
use modelgate::providers::OpenAi;
use modelgate::{ChatProvider, ChatRequest, Delta, ErrorKind, FinishReason, Usage};
use support::{Canned, MockServer};

fn openai(server: &MockServer) -> OpenAi {
    OpenAi::builder()
        .api_key("sk-test-key-123456")
        .base_url(format!("{}/v1", server.url()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn streamed_text_with_usage() {
    let server = MockServer::start(vec![Canned::fixture("openai/stream_text.http")]).await;
    let provider = openai(&server);
    let req = ChatRequest::new("gpt-4o-mini").user("Say hello in French");
    let mut stream = provider.chat_stream(&req).await.unwrap();
    let mut deltas = Vec::new();
    while let Some(d) = stream.next().await {
        deltas.push(d.unwrap());
    }
    assert_eq!(stream.model(), "gpt-4o-mini-2024-07-18");
    assert_eq!(stream.id(), Some("chatcmpl-B1"));
    assert_eq!(
        deltas,
        vec![
            Delta::Text("Bonjour".into()),
            Delta::Text(" le monde — ça va? \"ok\"".into()),
            Delta::Finish(FinishReason::Stop),
            Delta::Usage(Usage {
                input_tokens: 19,
                output_tokens: 10,
                ..Usage::default()
            }),
        ]
    );
    let sent = server.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-test-key-123456")
    );
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(sent.body["messages"][0]["content"], "Say hello in French");
}

#[tokio::test]
async fn a_stream_cut_before_done_is_truncated() {
    let full = String::from_utf8(Canned::fixture("openai/stream_text.http").body).unwrap();
    let cut = &full[..full.find("data: [DONE]").unwrap()];
    let server = MockServer::start(vec![Canned::sse(cut)]).await;
    let stream = openai(&server)
        .chat_stream(&ChatRequest::new("gpt-4o-mini").user("hi"))
        .await
        .unwrap();
    let err = stream.into_response().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("openai"));
}
