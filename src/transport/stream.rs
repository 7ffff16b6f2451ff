//! The [`DeltaSource`] over an event-stream body: SSE framing, the provider's decoder, idle and
//! overall timeouts, and the guard that turns a stream without its terminal marker into
//! `ErrorKind::StreamTruncated`. No task or channel: the stream is polled by its reader, and
//! dropping it drops the body, which closes the connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind};
use crate::transport::error_map;
use crate::transport::sse::{SseDecoder, SseItem};
use crate::transport::{StreamDecoder, StreamOut};
use crate::types::Delta;
use crate::types::stream::{DeltaSource, StreamMeta};

/// How long a finished stream waits for the end of its body, so its connection can be reused.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub(crate) struct WireStream {
    provider: String,
    body: Option<Body>,
    sse: SseDecoder,
    decoder: Box<dyn StreamDecoder>,
    pending: VecDeque<Delta>,
    ending: Option<Error>,
    draining: bool,
    idle_limit: Duration,
    /// Fires at the latest `last_read + idle_limit`; moved forward lazily, only when it fires,
    /// rather than on every read (each move takes the timer wheel's lock).
    idle: Pin<Box<Sleep>>,
    last_read: Instant,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The API key that was sent, scrubbed from every error the stream yields.
    secret: Option<SecretString>,
}

impl WireStream {
    pub(crate) fn new(
        provider: String,
        body: Body,
        decoder: Box<dyn StreamDecoder>,
        idle_limit: Duration,
        deadline: Option<Instant>,
    ) -> Self {
        WireStream {
            provider,
            body: Some(body),
            sse: SseDecoder::default(),
            decoder,
            pending: VecDeque::new(),
            ending: None,
            draining: false,
            idle_limit,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            last_read: Instant::now(),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            secret: None,
        }
    }

    /// Scrubs `secret` from every error the stream yields (an error event may echo the key).
    pub(crate) fn with_secret(mut self, secret: Option<SecretString>) -> Self {
        self.secret = secret;
        self
    }

    /// Stops reading; `err` is yielded once the deltas already decoded are delivered.
    fn end_with(&mut self, err: Error) {
        self.body = None;
        self.ending = Some(err);
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Delta, Error>>> {
        self.body = None;
        self.pending.clear();
        let err = if err.provider().is_none() {
            err.with_provider(self.provider.clone())
        } else {
            err
        };
        let secret = self.secret.as_ref().map(|s| s.expose_secret());
        Poll::Ready(Some(Err(err.scrubbed(secret))))
    }

    fn feed(&mut self, chunk: &[u8], meta: &mut StreamMeta, eof: bool) -> Result<(), Error> {
        let decoder = &mut self.decoder;
        let mut out = StreamOut {
            deltas: &mut self.pending,
            meta,
        };
        let mut on = |item: SseItem<'_>| {
            // Anything after the terminal marker is ignored.
            if decoder.is_done() {
                return Ok(());
            }
            match item {
                SseItem::Event(event) => decoder.on_event(event, &mut out),
                SseItem::Stray(text) => decoder.on_stray(text, &mut out),
            }
        };
        self.sse.feed(chunk, &mut on)?;
        if eof {
            self.sse.finish(&mut on)?;
        }
        Ok(())
    }
}

impl DeltaSource for WireStream {
    fn poll_delta(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        meta: &mut StreamMeta,
    ) -> Poll<Option<Result<Delta, Error>>> {
        let this = self.get_mut();
        loop {
            // Deltas decoded before a failure are delivered first, then the failure.
            if let Some(delta) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(delta)));
            }
            if let Some(err) = this.ending.take() {
                return this.fail(err);
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            if this.decoder.is_done() {
                // Read the end of the body so the connection goes back to the pool, but wait
                // for it only briefly: a server may keep the body open after its marker.
                if !this.draining {
                    this.draining = true;
                    let grace = Instant::now() + DRAIN_GRACE.min(this.idle_limit);
                    this.idle.as_mut().reset(grace);
                }
                match body.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Pending if this.idle.as_mut().poll(cx).is_pending() => {
                        return Poll::Pending;
                    }
                    _ => {
                        this.body = None;
                        return Poll::Ready(None);
                    }
                }
            }
            if let Some(deadline) = this.deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                return this.fail(Error::timeout("the stream passed its overall deadline"));
            }
            match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.last_read = Instant::now();
                    if let Err(err) = this.feed(&chunk, meta, false) {
                        this.end_with(err);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    // The body broke off before the terminal marker: the stream is truncated
                    // (a read timeout stays a timeout).
                    let err = error_map::from_reqwest(err);
                    let kind = match err.kind() {
                        ErrorKind::Timeout => ErrorKind::Timeout,
                        _ => ErrorKind::StreamTruncated,
                    };
                    this.end_with(Error::new(kind, "the stream broke off").with_source(err));
                }
                Poll::Ready(None) => {
                    this.body = None;
                    if let Err(err) = this.feed(&[], meta, true) {
                        this.end_with(err);
                    } else if !this.decoder.is_done() {
                        this.end_with(Error::truncated(
                            "the stream ended without its terminal marker",
                        ));
                    }
                }
                Poll::Pending => {
                    while this.idle.as_mut().poll(cx).is_ready() {
                        let due = this.last_read + this.idle_limit;
                        if due <= Instant::now() {
                            let limit = this.idle_limit;
                            return this.fail(Error::timeout(format!(
                                "the stream sent nothing for {limit:?}"
                            )));
                        }
                        // Data came since the timer was set: move it and wait again.
                        this.idle.as_mut().reset(due);
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
