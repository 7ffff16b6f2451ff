//! Turning a rendered body and a scenario's faults into what is actually written.
//!
//! The plan is a flat list of [`Step`]s computed up front (pure, unit-tested below), then played
//! by a body stream. All waiting happens inside that stream on tokio's clock, so tests under a
//! paused clock stay deterministic, and hyper dropping the body when the peer disconnects ends
//! any wait or stall at once.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use super::reply::EventStream;
use super::scenario::Faults;

/// The response body type the server sends.
pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One thing the body does, in order.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Sleep on tokio's clock.
    Wait(Duration),
    /// Hand bytes to hyper as one frame.
    Send(Bytes),
    /// Yield once, so hyper writes out what it has buffered before the next frame.
    Flush,
    /// Never produce anything again; the body lives until hyper drops it with the connection.
    Stall,
}

/// Plans a stream: applies malformed-event, error-event, truncation and stall faults to the
/// events, then adds chunk delays and piece splitting.
pub(super) fn stream_steps(stream: EventStream, faults: &Faults) -> Vec<Step> {
    let EventStream {
        mut events,
        terminal,
        error_event,
        ..
    } = stream;
    if let Some(event) = faults.malformed_at.and_then(|i| events.get_mut(i)) {
        event.corrupt();
    }
    // Events before the terminal marker: the most a truncated stream may send.
    let before_terminal = events.len().saturating_sub(terminal);
    let mut ends_in_error = false;
    if let Some(at) = faults.error_event_at {
        events.truncate(at.min(before_terminal));
        events.push(error_event);
        ends_in_error = true;
    }
    if let Some(n) = faults.truncate_after {
        // After an error event there is no terminal marker left to withhold.
        events.truncate(if ends_in_error {
            n
        } else {
            n.min(before_terminal)
        });
    }

    let stall_at = faults.stall_after.map(|n| n.min(events.len()));
    let mut steps = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if stall_at == Some(index) {
            break;
        }
        if !faults.chunk_delay.is_zero() {
            steps.push(Step::Wait(faults.chunk_delay));
        }
        push_pieces(&mut steps, Bytes::from(event.encode()), faults.piece_size);
    }
    if stall_at.is_some() {
        steps.push(Step::Stall);
    }
    steps
}

/// Plans a whole (non-streamed) body: only piece splitting applies.
pub(super) fn whole_steps(bytes: Vec<u8>, faults: &Faults) -> Vec<Step> {
    let mut steps = Vec::new();
    push_pieces(&mut steps, Bytes::from(bytes), faults.piece_size);
    steps
}

fn push_pieces(steps: &mut Vec<Step>, bytes: Bytes, piece_size: Option<usize>) {
    let Some(size) = piece_size else {
        steps.push(Step::Send(bytes));
        return;
    };
    for start in (0..bytes.len()).step_by(size.max(1)) {
        let end = (start + size).min(bytes.len());
        steps.push(Step::Send(bytes.slice(start..end)));
        steps.push(Step::Flush);
    }
}

/// Builds the hyper body that plays `steps`.
pub(super) fn body(mut steps: Vec<Step>) -> Body {
    // A single frame needs no stream: a full body lets hyper send a content-length.
    if let [Step::Send(_)] = steps.as_slice() {
        if let Some(Step::Send(bytes)) = steps.pop() {
            return Full::new(bytes).boxed_unsync();
        }
    }
    if steps.is_empty() {
        return Full::new(Bytes::new()).boxed_unsync();
    }
    let frames = futures::stream::unfold(VecDeque::from(steps), |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Wait(d) => tokio::time::sleep(d).await,
                Step::Send(bytes) => return Some((Ok(Frame::data(bytes)), steps)),
                Step::Flush => tokio::task::yield_now().await,
                Step::Stall => std::future::pending::<()>().await,
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::reply::{Event, Framing};
    use serde_json::json;

    fn event(n: u32) -> Event {
        Event::plain(&json!({ "n": n }), Framing::SseLf)
    }

    /// Four events, the last being the terminal marker.
    fn stream() -> EventStream {
        EventStream {
            content_type: "text/event-stream",
            events: (0..4).map(event).collect(),
            terminal: 1,
            error_event: Event::plain(&json!({"error": {}}), Framing::SseLf),
        }
    }

    fn sent(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn faults() -> Faults {
        Faults::default()
    }

    #[test]
    fn no_faults_sends_every_event_whole() {
        let steps = stream_steps(stream(), &faults());
        assert_eq!(
            sent(&steps),
            [
                "data: {\"n\":0}\n\n",
                "data: {\"n\":1}\n\n",
                "data: {\"n\":2}\n\n",
                "data: {\"n\":3}\n\n"
            ]
        );
        assert_eq!(steps.len(), 4);
    }

    #[test]
    fn truncation_never_sends_the_terminal_marker() {
        let steps = stream_steps(
            stream(),
            &Faults {
                truncate_after: Some(2),
                ..faults()
            },
        );
        assert_eq!(sent(&steps).len(), 2);
        let steps = stream_steps(
            stream(),
            &Faults {
                truncate_after: Some(99),
                ..faults()
            },
        );
        assert_eq!(sent(&steps).len(), 3);
        assert!(!steps.contains(&Step::Stall));
    }

    #[test]
    fn stall_comes_after_n_events() {
        let steps = stream_steps(
            stream(),
            &Faults {
                stall_after: Some(1),
                ..faults()
            },
        );
        assert_eq!(sent(&steps).len(), 1);
        assert_eq!(steps.last(), Some(&Step::Stall));
        let steps = stream_steps(
            stream(),
            &Faults {
                stall_after: Some(9),
                ..faults()
            },
        );
        assert_eq!(sent(&steps).len(), 4);
        assert_eq!(steps.last(), Some(&Step::Stall));
    }

    #[test]
    fn error_event_replaces_the_rest() {
        let steps = stream_steps(
            stream(),
            &Faults {
                error_event_at: Some(1),
                ..faults()
            },
        );
        assert_eq!(
            sent(&steps),
            ["data: {\"n\":0}\n\n", "data: {\"error\":{}}\n\n"]
        );
        let steps = stream_steps(
            stream(),
            &Faults {
                error_event_at: Some(10),
                ..faults()
            },
        );
        assert_eq!(sent(&steps).len(), 4);
        assert_eq!(sent(&steps)[3], "data: {\"error\":{}}\n\n");
    }

    #[test]
    fn malformed_event_keeps_its_framing() {
        let steps = stream_steps(
            stream(),
            &Faults {
                malformed_at: Some(2),
                ..faults()
            },
        );
        assert_eq!(sent(&steps)[2], "data: {\"n\n\n");
    }

    #[test]
    fn delays_and_pieces() {
        let d = Duration::from_millis(5);
        let steps = stream_steps(
            stream(),
            &Faults {
                chunk_delay: d,
                piece_size: Some(5),
                ..faults()
            },
        );
        assert_eq!(steps[0], Step::Wait(d));
        assert_eq!(steps[1], Step::Send(Bytes::from_static(b"data:")));
        assert_eq!(steps[2], Step::Flush);
        assert_eq!(sent(&steps).concat().len(), 4 * "data: {\"n\":0}\n\n".len());
        let whole = whole_steps(
            b"abcdefg".to_vec(),
            &Faults {
                piece_size: Some(3),
                ..faults()
            },
        );
        assert_eq!(sent(&whole), ["abc", "def", "g"]);
    }
}
