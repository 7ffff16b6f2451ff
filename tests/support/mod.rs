//! A replaying mock HTTP server for wire tests.
//!
//! Fixtures are raw HTTP responses (`tests/fixtures/<provider>/<scenario>.http`): a status line,
//! headers, a blank line and the body exactly as the provider sends it. The server answers each
//! request with the next fixture, writing the body in pieces of 1 to 7 bytes (as chunked transfer
//! chunks when the fixture says `transfer-encoding: chunked`, else with a content length), and
//! records every request it receives. A response may also end abnormally (see [`Ending`]): never
//! answer, stall after part of the body, or drop the connection mid-body.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server ends a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The whole body, then (for chunked bodies) the terminating chunk.
    Complete,
    /// Reads the request and never answers (not even the status line).
    StallBeforeHead,
    /// Sends the head and the first `n` body bytes, then keeps the connection open, silent.
    StallAfter(usize),
    /// Sends the head and the first `n` body bytes, then closes the connection without finishing
    /// the body (no terminating chunk, or fewer bytes than the content length).
    CutAfter(usize),
}

/// A canned raw HTTP response.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
    pub ending: Ending,
}

impl Canned {
    /// Reads `tests/fixtures/<path>`.
    pub fn fixture(path: &str) -> Canned {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"));
        Canned::parse(&raw)
    }

    /// Parses a raw response: head lines end in LF (or CRLF), the body is kept byte for byte.
    pub fn parse(raw: &[u8]) -> Canned {
        let (head, body) = split_head(raw);
        let head = String::from_utf8(head.to_vec()).expect("fixture head is UTF-8");
        let mut lines = head.lines();
        let status_line = lines.next().expect("status line");
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        let mut chunked = false;
        for line in lines {
            let (k, v) = line.split_once(':').expect("header line");
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
                continue;
            }
            // The server frames the body itself and closes the connection after each response.
            if k == "content-length" || k == "connection" {
                continue;
            }
            headers.push((k, v));
        }
        Canned {
            status,
            reason,
            headers,
            body: body.to_vec(),
            chunked,
            ending: Ending::Complete,
        }
    }

    /// The same response, ended as `ending` says.
    pub fn ending(mut self, ending: Ending) -> Canned {
        self.ending = ending;
        self
    }

    /// The body's text (fixtures that are UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    /// The offset just past the first occurrence of `marker` in the body.
    pub fn offset_after(&self, marker: &str) -> usize {
        let m = marker.as_bytes();
        self.body
            .windows(m.len())
            .position(|w| w == m)
            .unwrap_or_else(|| panic!("`{marker}` is not in the body"))
            + m.len()
    }

    /// A JSON response.
    pub fn json(status: u16, body: &str) -> Canned {
        Canned {
            status,
            reason: "X".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            chunked: false,
            ending: Ending::Complete,
        }
    }

    /// An event-stream response with this exact body.
    pub fn sse(body: &str) -> Canned {
        Canned {
            status: 200,
            reason: "OK".into(),
            headers: vec![(
                "content-type".into(),
                "text/event-stream; charset=utf-8".into(),
            )],
            body: body.as_bytes().to_vec(),
            chunked: true,
            ending: Ending::Complete,
        }
    }
}

fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(i) = raw.windows(len).position(|w| w == sep) {
            return (&raw[..i], &raw[i + len..]);
        }
    }
    (raw, &[])
}

/// A request the mock server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The mock server. It stops when dropped.
pub struct MockServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// Answers requests with `responses`, in order (one connection per response).
    pub async fn start(responses: Vec<Canned>) -> MockServer {
        Self::start_with_seed(responses, 0x5eed).await
    }

    pub async fn start_with_seed(responses: Vec<Canned>, seed: u64) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let queue = Arc::new(Mutex::new(VecDeque::from(responses)));
        let rec = received.clone();
        let task = tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            while let Ok((sock, _)) = listener.accept().await {
                let (rec, queue) = (rec.clone(), queue.clone());
                let seed = rng.u64(..);
                tokio::spawn(async move {
                    let _ = serve(sock, rec, queue, seed).await;
                });
            }
        });
        MockServer {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Received {
        self.received().pop().expect("a request was received")
    }
}

async fn serve(
    mut sock: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    queue: Arc<Mutex<VecDeque<Canned>>>,
    seed: u64,
) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    // One response per connection (`connection: close`).
    let Some(req) = read_request(&mut sock).await? else {
        return Ok(());
    };
    received.lock().unwrap().push(req);
    let Some(canned) = queue.lock().unwrap().pop_front() else {
        sock.write_all(b"HTTP/1.1 599 No Fixture\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    if canned.ending == Ending::StallBeforeHead {
        std::future::pending::<()>().await;
    }
    let limit = match canned.ending {
        Ending::StallAfter(n) | Ending::CutAfter(n) => n.min(canned.body.len()),
        _ => canned.body.len(),
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", canned.status, canned.reason);
    for (k, v) in &canned.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if canned.chunked {
        head.push_str("transfer-encoding: chunked\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n", canned.body.len()));
    }
    head.push_str("connection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await?;
    let mut rest = &canned.body[..limit];
    while !rest.is_empty() {
        let n = rng.usize(1..=7).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        if canned.chunked {
            let mut framed = format!("{n:x}\r\n").into_bytes();
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
            sock.write_all(&framed).await?;
        } else {
            sock.write_all(piece).await?;
        }
        sock.flush().await?;
        tokio::task::yield_now().await;
        rest = tail;
    }
    match canned.ending {
        Ending::StallAfter(_) => std::future::pending::<()>().await,
        Ending::CutAfter(_) => return Ok(()),
        _ => {}
    }
    if canned.chunked {
        sock.write_all(b"0\r\n\r\n").await?;
    }
    sock.flush().await?;
    Ok(())
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Received>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Some(Received {
        method,
        path,
        headers,
        body,
    }))
}

/// Reads a stream to its end: the deltas, then the error that ended it (if any). Checks that
/// nothing follows an error.
pub async fn drain(
    mut stream: modelgate::ChatStream,
) -> (Vec<modelgate::Delta>, Option<modelgate::Error>) {
    use futures::StreamExt;
    let mut deltas = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(d) => deltas.push(d),
            Err(e) => {
                assert!(stream.next().await.is_none(), "nothing may follow an error");
                return (deltas, Some(e));
            }
        }
    }
    (deltas, None)
}

/// A text delta.
pub fn text(t: &str) -> modelgate::Delta {
    modelgate::Delta::Text(t.into())
}
