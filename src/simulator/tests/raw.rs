//! The bytes on the wire, read from a plain TCP socket: HTTP framing, one event per frame, and
//! pieces no larger than asked.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::simulator::{Scenario, Simulator};

/// Sends one OpenAI request with `Connection: close` and returns the response head (lower-cased)
/// and raw body.
async fn exchange(sim: &Simulator, stream: bool) -> (String, Vec<u8>) {
    let body = format!(
        r#"{{"model":"m","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let request = format!(
        "POST /openai/v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut socket = TcpStream::connect(sim.addr()).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    (
        String::from_utf8(raw[..split].to_vec())
            .unwrap()
            .to_ascii_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

/// Decodes a chunked body into its chunks, checking it ends with the zero-size chunk.
fn dechunk(mut body: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk-size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            assert_eq!(body, b"\r\n", "nothing after the last chunk");
            return chunks;
        }
        chunks.push(&body[..size]);
        assert_eq!(&body[size..size + 2], b"\r\n");
        body = &body[size + 2..];
    }
}

#[tokio::test]
async fn each_event_is_one_frame() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("four char deltas"));
    let (head, body) = exchange(&sim, true).await;
    assert!(head.starts_with("http/1.1 200 ok"));
    assert!(head.contains("transfer-encoding: chunked"));
    assert!(head.contains("content-type: text/event-stream"));
    let frames = dechunk(&body);
    assert!(frames.len() > 5);
    for frame in &frames {
        assert!(frame.starts_with(b"data: ") && frame.ends_with(b"\n\n"));
        assert_eq!(
            frame.windows(2).filter(|w| w == b"\n\n").count(),
            1,
            "one event per frame"
        );
    }
    assert_eq!(frames.last().unwrap(), b"data: [DONE]\n\n");
}

#[tokio::test]
async fn pieces_are_at_most_the_piece_size() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("split into tiny pieces").with_piece_size(5));
    let (_, body) = exchange(&sim, true).await;
    let frames = dechunk(&body);
    assert!(frames.iter().all(|f| f.len() <= 5));
    let joined = frames.concat();
    assert!(joined.ends_with(b"data: [DONE]\n\n"));
    assert!(
        String::from_utf8(joined)
            .unwrap()
            .contains(r#""content":"spli""#)
    );
}

#[tokio::test]
async fn whole_bodies_are_length_delimited() {
    let sim = Simulator::start().await.unwrap();
    sim.enqueue(Scenario::text("plain"));
    sim.enqueue(Scenario::text("pieced").with_piece_size(3));
    for _ in 0..2 {
        let (head, body) = exchange(&sim, false).await;
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("transfer-encoding"));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["object"], "chat.completion");
    }
}
