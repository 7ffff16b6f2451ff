//! What a wire module hands back: a status, headers and either a whole body or a list of
//! stream events. Faults are applied later, by `body.rs`, so the renderers stay pure.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value;

/// A request the simulator refuses on its own, before any scenario is consulted, or a failure
/// a scenario asks for. Each wire renders it in its provider's native error shape.
#[derive(Debug)]
pub(super) enum Problem {
    /// Unknown path or method: 404.
    NotFound(String),
    /// The body is not JSON or lacks a required field: 400.
    Invalid(String),
    /// A required credential header is missing: 401 (Gemini: 403).
    Unauthenticated(String),
    /// 429 with a retry delay.
    RateLimited(Duration),
    /// The wire's overload answer (503 or 529).
    Overloaded,
}

/// A rendered response, before timing and framing faults.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: ReplyBody,
}

/// The body of a [`Reply`].
#[derive(Debug)]
pub(super) enum ReplyBody {
    /// A body sent in one go with a `content-length`.
    Whole {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
    /// A stream of server-sent events.
    Stream(EventStream),
}

/// A streamed answer as a list of events, plus what fault injection needs to know about it.
#[derive(Debug)]
pub(super) struct EventStream {
    pub(super) content_type: &'static str,
    pub(super) events: Vec<Event>,
    /// How many trailing events make up the terminal marker that truncation must withhold.
    pub(super) terminal: usize,
    /// The wire's native mid-stream error, sent by `with_error_event_at`.
    pub(super) error_event: Event,
}

/// One event of a stream, kept unencoded so a fault can corrupt its JSON but not its framing.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Event {
    /// The SSE `event:` field, if the wire uses one.
    pub(super) name: Option<&'static str>,
    /// The `data:` payload, or the whole text of a raw event.
    pub(super) data: String,
    pub(super) framing: Framing,
}

/// How an [`Event`] is written on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Framing {
    /// SSE lines ending in LF (OpenAI, DeepSeek, Anthropic).
    SseLf,
    /// SSE lines ending in CRLF (Gemini).
    SseCrLf,
    /// The text as is, outside SSE framing (Gemini's mid-stream error object).
    Raw,
}

impl Event {
    /// An event with only a `data:` field.
    pub(super) fn plain(data: &Value, framing: Framing) -> Self {
        Event {
            name: None,
            data: data.to_string(),
            framing,
        }
    }

    /// An event with an `event:` name and a `data:` field.
    pub(super) fn named(name: &'static str, data: &Value, framing: Framing) -> Self {
        Event {
            name: Some(name),
            data: data.to_string(),
            framing,
        }
    }

    /// The event's bytes on the wire.
    pub(super) fn encode(&self) -> Vec<u8> {
        let eol = match self.framing {
            Framing::SseLf => "\n",
            Framing::SseCrLf => "\r\n",
            Framing::Raw => return format!("{}\n", self.data).into_bytes(),
        };
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(name) = self.name {
            out.push_str("event: ");
            out.push_str(name);
            out.push_str(eol);
        }
        out.push_str("data: ");
        out.push_str(&self.data);
        out.push_str(eol);
        out.push_str(eol);
        out.into_bytes()
    }

    /// Cuts the payload in half, which makes any JSON object invalid while the framing around
    /// it stays intact, so a client sees a decode error rather than a framing error.
    pub(super) fn corrupt(&mut self) {
        let mut cut = self.data.len() / 2;
        while !self.data.is_char_boundary(cut) {
            cut -= 1;
        }
        self.data.truncate(cut);
    }
}

impl Reply {
    /// A whole JSON body with this status.
    pub(super) fn json(status: StatusCode, body: &Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Whole {
                content_type: "application/json",
                bytes: body.to_string().into_bytes(),
            },
        }
    }

    /// Adds a header.
    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds the retry headers every wire sends with a rate limit: `retry-after-ms`, read first
    /// by the official SDKs, and `retry-after` in whole seconds rounded up, so a client that
    /// only reads the coarse header still waits at least as long as asked.
    pub(super) fn retry_headers(self, delay: Duration) -> Self {
        let seconds = delay.as_millis().div_ceil(1000);
        self.header("retry-after-ms", delay.as_millis().to_string())
            .header("retry-after", seconds.to_string())
    }
}

/// Splits `s` into pieces of at most `n` characters (never splitting a character). An empty
/// string gives no pieces.
pub(super) fn chunks(s: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    for (count, (i, _)) in s.char_indices().enumerate() {
        if count > 0 && count % n == 0 {
            pieces.push(&s[start..i]);
            start = i;
        }
    }
    if start < s.len() {
        pieces.push(&s[start..]);
    }
    pieces
}

/// Splits tool-call arguments the way providers stream them: in `n`-character pieces, but
/// always at least two so clients must join fragments (one piece, possibly empty, is split
/// at its middle).
pub(super) fn argument_pieces(arguments: &str, n: usize) -> Vec<&str> {
    let pieces = chunks(arguments, n);
    if pieces.len() >= 2 {
        return pieces;
    }
    let mut mid = arguments.len() / 2;
    while !arguments.is_char_boundary(mid) {
        mid -= 1;
    }
    vec![&arguments[..mid], &arguments[mid..]]
}

/// The request id a simulated provider reports for request number `serial`.
pub(super) fn request_id(serial: u64) -> String {
    format!("req_sim{serial:012x}")
}

/// The current Unix time in seconds, for `created` fields.
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chunks_split_by_characters() {
        assert_eq!(chunks("héllo wörld", 4), ["héll", "o wö", "rld"]);
        assert_eq!(chunks("abcd", 4), ["abcd"]);
        assert!(chunks("", 4).is_empty());
        assert_eq!(chunks("ab", 0), ["a", "b"]);
    }

    #[test]
    fn arguments_always_come_in_at_least_two_pieces() {
        assert_eq!(argument_pieces("{}", 4), ["{", "}"]);
        assert_eq!(argument_pieces("", 4), ["", ""]);
        assert_eq!(argument_pieces(r#"{"a":1}"#, 4), [r#"{"a""#, ":1}"]);
    }

    #[test]
    fn events_encode_with_their_framing() {
        let v = json!({"a": 1});
        assert_eq!(
            Event::plain(&v, Framing::SseLf).encode(),
            b"data: {\"a\":1}\n\n"
        );
        assert_eq!(
            Event::named("ping", &v, Framing::SseLf).encode(),
            b"event: ping\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            Event::plain(&v, Framing::SseCrLf).encode(),
            b"data: {\"a\":1}\r\n\r\n"
        );
        let raw = Event {
            name: None,
            data: "{\n  \"error\": 1\n}".into(),
            framing: Framing::Raw,
        };
        assert_eq!(raw.encode(), b"{\n  \"error\": 1\n}\n");
    }

    #[test]
    fn corrupt_leaves_invalid_json() {
        let mut e = Event::plain(&json!({"text": "ééééé"}), Framing::SseLf);
        e.corrupt();
        assert!(serde_json::from_str::<Value>(&e.data).is_err());
        assert!(e.encode().ends_with(b"\n\n"));
    }

    #[test]
    fn retry_after_rounds_up() {
        let r = Reply::json(StatusCode::TOO_MANY_REQUESTS, &json!({}))
            .retry_headers(Duration::from_millis(1500));
        assert_eq!(
            r.headers,
            [
                ("retry-after-ms", "1500".to_owned()),
                ("retry-after", "2".to_owned())
            ]
        );
    }
}
