//! HTTP for every provider, written once: sending, timeouts, reading bodies with a size cap,
//! mapping status + headers + body to a typed [`Error`], and turning an event-stream body into a
//! [`ChatStream`]. Provider modules only translate (see [`Dialect`]).

mod error_map;
pub(crate) mod rate_limit;
// Only Gemini needs image bytes inline for now; other providers pass image URLs on.
#[cfg(feature = "gemini")]
pub(crate) mod images;
pub(crate) mod retry_after;
pub(crate) mod sse;
mod stream;

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::credentials::CredentialSource;
use crate::error::Error;
use crate::pricing::{ModelPrice, PriceTable};
use crate::provider::CallOptions;
use crate::providers::common::Auth;
use crate::types::stream::StreamMeta;
use crate::types::{ChatRequest, ChatResponse, ChatStream, Delta, RateLimitStatus};

pub(crate) use error_map::{ErrorDetail, kind_for_status};
pub(crate) use sse::SseEvent;

/// How long each stage of a provider call may take.
///
/// # Defaults
/// `connect` 10 s, `first_byte` 300 s (a non-streamed answer sends its head only when the whole
/// answer is ready), `idle` 90 s between two reads of a stream, `total` 600 s for the whole call.
/// A request's own [`ChatRequest::timeout`] replaces `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection. Applies to clients the library builds; a client
    /// passed in with `http_client` keeps its own setting.
    pub connect: Duration,
    /// From sending the request to receiving the response head.
    pub first_byte: Duration,
    /// The longest silence between two reads of a streamed body.
    pub idle: Duration,
    /// The whole call, body included; `None` for no limit.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(90),
            total: Some(Duration::from_secs(600)),
        }
    }
}

impl Timeouts {
    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect(mut self, connect: Duration) -> Self {
        self.connect = connect;
        self
    }

    /// Sets the longest wait for the response head.
    #[must_use]
    pub fn with_first_byte(mut self, first_byte: Duration) -> Self {
        self.first_byte = first_byte;
        self
    }

    /// Sets the longest silence between two reads of a stream.
    #[must_use]
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Sets the whole-call limit (`None` for none).
    #[must_use]
    pub fn with_total(mut self, total: Option<Duration>) -> Self {
        self.total = total;
        self
    }
}

/// The default cap on a non-streamed response body: 32 MiB.
pub(crate) const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

/// The process-wide client every provider shares unless given its own, so that a router over many
/// providers keeps one connection pool.
pub(crate) fn shared_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            build_client(Timeouts::default().connect).unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}

pub(crate) fn build_client(connect: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| Error::config("cannot build the HTTP client").with_source(e.without_url()))
}

/// The body and path of one provider call, built by a [`Dialect`].
#[derive(Debug)]
pub(crate) struct WireRequest {
    /// Appended to the endpoint's base URL (`/chat/completions`).
    pub(crate) path: String,
    /// The JSON body.
    pub(crate) body: Vec<u8>,
}

/// One provider call as a [`Dialect`] encodes it: the borrowed request and what this one call
/// changes of it (model, overrides, extra fields, deadline).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) req: &'a ChatRequest,
    pub(crate) opts: &'a CallOptions<'a>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(req: &'a ChatRequest, opts: &'a CallOptions<'a>) -> Self {
        Call { req, opts }
    }

    /// The model to ask for.
    pub(crate) fn model(&self) -> &'a str {
        self.opts.model.unwrap_or(&self.req.model)
    }

    pub(crate) fn temperature(&self) -> Option<f32> {
        self.opts.temperature.or(self.req.temperature)
    }

    pub(crate) fn max_tokens(&self) -> Option<u32> {
        self.opts.max_tokens.or(self.req.max_tokens)
    }

    pub(crate) fn has_extra(&self) -> bool {
        !self.req.extra.is_empty() || !self.opts.extra.is_empty()
    }

    /// The extra fields to merge, the request's first and the call's after (so they win).
    pub(crate) fn extra(&self) -> impl Iterator<Item = (&'a str, &'a serde_json::Value)> {
        self.req
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .chain(self.opts.extra.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// When the whole call must end: the earliest of the call's deadline, the request's own
    /// timeout and the provider's `total`, counted from `now`.
    fn deadline(&self, total: Option<Duration>, now: Instant) -> Option<Instant> {
        let own = self.req.timeout.or(total).map(|d| now + d);
        match (own, self.opts.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Incremental translation of one provider's event stream into deltas.
pub(crate) trait StreamDecoder: Send {
    /// Handles one SSE event, pushing any deltas it yields.
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut StreamOut<'_>) -> Result<(), Error>;

    /// Handles text that was not part of an SSE field (Gemini sends bare error objects so).
    fn on_stray(&mut self, text: &str, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let _ = (text, out);
        Ok(())
    }

    /// Whether the provider's terminal marker has arrived.
    fn is_done(&self) -> bool;
}

/// Where a [`StreamDecoder`] puts what it decodes.
#[derive(Debug)]
pub(crate) struct StreamOut<'a> {
    pub(crate) deltas: &'a mut VecDeque<Delta>,
    pub(crate) meta: &'a mut StreamMeta,
}

impl StreamOut<'_> {
    pub(crate) fn push(&mut self, delta: Delta) {
        self.deltas.push_back(delta);
    }
}

/// One provider's wire format: pure translation, no I/O.
pub(crate) trait Dialect: Send + Sync {
    /// The provider's name as it appears on responses and errors.
    fn provider(&self) -> &str;
    /// The path and JSON body for one call.
    fn encode(&self, call: &Call<'_>, stream: bool) -> Result<WireRequest, Error>;
    /// A complete (non-streamed) answer.
    fn decode(&self, body: &[u8]) -> Result<ChatResponse, Error>;
    /// A decoder for a streamed answer to `req`.
    fn stream_decoder(&self, req: &ChatRequest) -> Box<dyn StreamDecoder>;
    /// What an error body says (message, code, a more precise kind, a retry hint).
    fn error_detail(&self, status: u16, body: &[u8]) -> ErrorDetail;
    /// Adds what the provider's own response headers say to an error already built from a
    /// non-success answer (Anthropic's `anthropic-ratelimit-*` windows). The default adds nothing.
    fn annotate_error(&self, err: Error, headers: &HeaderMap) -> Error {
        let _ = headers;
        err
    }
}

/// Where a provider's key comes from.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A fixed key, whose header the endpoint's headers already carry: nothing to do per request.
    Static(SecretString),
    /// Asked for at each request; its header is built for that request.
    Source(Arc<dyn CredentialSource>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Static(_) => f.write_str("[REDACTED]"),
            // Sources promise a `Debug` without the key.
            Credential::Source(source) => source.fmt(f),
        }
    }
}

/// The key one request is sent with, kept to scrub it from that request's errors.
enum CallKey<'a> {
    None,
    /// The endpoint's fixed key (its header is among the endpoint's headers).
    Static(&'a SecretString),
    /// A key from a source, and the header carrying it.
    Fetched(SecretString, HeaderValue),
}

impl CallKey<'_> {
    fn secret(&self) -> Option<&str> {
        match self {
            CallKey::None => None,
            CallKey::Static(key) => Some(key.expose_secret()),
            CallKey::Fetched(key, _) => Some(key.expose_secret()),
        }
    }

    fn header(&self) -> Option<&HeaderValue> {
        match self {
            CallKey::Fetched(_, value) => Some(value),
            _ => None,
        }
    }

    fn into_owned(self) -> Option<SecretString> {
        match self {
            CallKey::None => None,
            CallKey::Static(key) => Some(key.clone()),
            CallKey::Fetched(key, _) => Some(key),
        }
    }
}

/// Where and how to reach one provider: the shared client, base URL, headers and timeouts.
pub(crate) struct Endpoint {
    pub(crate) client: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) credential: Option<Credential>,
    /// How the key is sent.
    pub(crate) auth: Auth,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_body: usize,
    /// The provider's own prices (its builder's `prices`); the built-in table when `None`.
    pub(crate) prices: Option<std::sync::Arc<PriceTable>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("credential", &self.credential)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl Endpoint {
    /// The key for one request: the fixed one at no cost, or a source's, asked for now (within
    /// the call's deadline).
    async fn call_key(
        &self,
        dialect: &dyn Dialect,
        deadline: Option<Instant>,
    ) -> Result<CallKey<'_>, Error> {
        let source = match &self.credential {
            None => return Ok(CallKey::None),
            Some(Credential::Static(key)) => return Ok(CallKey::Static(key)),
            Some(Credential::Source(source)) => source,
        };
        let key = match deadline {
            Some(at) => tokio::time::timeout_at(at, source.key())
                .await
                .unwrap_or_else(|_| {
                    Err(Error::timeout(
                        "the API key was not ready before the deadline",
                    ))
                }),
            None => source.key().await,
        };
        let key = key.map_err(|e| self.finish_error(dialect, e, None))?;
        let Some(value) = self.auth.header_value(key.expose_secret()) else {
            let err = Error::config("the API key has characters a header cannot carry");
            return Err(self.finish_error(dialect, err, Some(key.expose_secret())));
        };
        Ok(CallKey::Fetched(key, value))
    }

    /// Sends a request and waits for the whole answer.
    pub(crate) async fn chat(
        &self,
        dialect: &dyn Dialect,
        call: &Call<'_>,
    ) -> Result<ChatResponse, Error> {
        let started = Instant::now();
        let deadline = call.deadline(self.timeouts.total, started);
        let key = self.call_key(dialect, deadline).await?;
        let run = async {
            let wire = dialect.encode(call, false)?;
            let mut resp = self.send(wire, key.header()).await?;
            let status = resp.status().as_u16();
            // Moved out, not cloned: the body reader needs only the body.
            let headers = std::mem::take(resp.headers_mut());
            let body = read_body(resp, self.max_body).await?;
            if !(200..300).contains(&status) {
                return Err(self.status_error(dialect, status, &headers, &body, key.secret()));
            }
            let mut answer = dialect.decode(&body).map_err(|err| {
                // A 2xx whose body is the provider's error object is mapped like any error
                // answer: it keeps its status, body and request id, and loses the key.
                let detail = dialect.error_detail(status, &body);
                if detail.recognized {
                    error_map::from_status(status, &headers, &body, detail, key.secret())
                } else {
                    err
                }
            })?;
            answer.rate_limit = rate_limit::from_headers(&headers);
            Ok(answer)
        };
        let result = match deadline {
            Some(at) => tokio::time::timeout_at(at, run).await.unwrap_or_else(|_| {
                let limit = at.saturating_duration_since(started);
                Err(Error::timeout(format!("no answer within {limit:?}")))
            }),
            None => run.await,
        };
        let mut response = result.map_err(|e| self.finish_error(dialect, e, key.secret()))?;
        // A cost the provider reported wins; else the price table's.
        if response.cost.is_none()
            && let Some(usage) = &response.usage
        {
            let prices = self.prices_for(call);
            response.cost = prices
                .lookup(dialect.provider(), &response.model)
                .or_else(|| prices.lookup(dialect.provider(), call.model()))
                .map(|price| price.cost(usage));
        }
        Ok(response)
    }

    /// The table a call is priced from: the call's, the provider's, or the built-in one.
    fn prices_for<'a>(&'a self, call: &Call<'a>) -> &'a PriceTable {
        call.opts
            .prices
            .or(self.prices.as_deref())
            .unwrap_or_else(|| PriceTable::builtin())
    }

    /// The price of the model a stream was asked for, handed to the stream.
    fn stream_price(&self, dialect: &dyn Dialect, call: &Call<'_>) -> Option<Arc<ModelPrice>> {
        self.prices_for(call)
            .lookup(dialect.provider(), call.model())
            .cloned()
    }

    /// Sends a streaming request and returns the stream once the provider accepted it.
    pub(crate) async fn chat_stream(
        &self,
        dialect: &dyn Dialect,
        call: &Call<'_>,
    ) -> Result<ChatStream, Error> {
        let req = call.req;
        let deadline = call.deadline(self.timeouts.total, Instant::now());
        let key = self.call_key(dialect, deadline).await?;
        let open = async {
            let wire = dialect.encode(call, true)?;
            let resp = self.send(wire, key.header()).await?;
            let status = resp.status().as_u16();
            let is_json = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !(200..300).contains(&status) || is_json {
                let headers = resp.headers().clone();
                let body = read_body(resp, self.max_body).await?;
                let detail = dialect.error_detail(status, &body);
                if !(200..300).contains(&status) || detail.recognized {
                    return Err(self.status_error(dialect, status, &headers, &body, key.secret()));
                }
                // A 2xx JSON answer to a stream request: a server that ignored `stream: true`,
                // or Gemini without `alt=sse` (a JSON array of the stream's chunks).
                return Ok(Opened::Whole(body, rate_limit::from_headers(&headers)));
            }
            let status = rate_limit::from_headers(resp.headers());
            Ok(Opened::Stream(resp, status))
        };
        let resp = match deadline {
            Some(at) => tokio::time::timeout_at(at, open).await.unwrap_or_else(|_| {
                Err(Error::timeout(
                    "the stream did not start before the deadline",
                ))
            }),
            None => open.await,
        }
        .map_err(|e| self.finish_error(dialect, e, key.secret()))?;
        let (resp, rate_limit) = match resp {
            Opened::Stream(resp, rate_limit) => (resp, rate_limit),
            Opened::Whole(body, rate_limit) => {
                let deltas = whole_answer_deltas(dialect, req, &body)
                    .map_err(|e| self.finish_error(dialect, e, key.secret()))?;
                let secret = key.secret();
                let deltas: Vec<_> = deltas
                    .into_iter()
                    .map(|d| d.map_err(|e| e.scrubbed(secret).with_provider(dialect.provider())))
                    .collect();
                let mut stream = ChatStream::new(
                    dialect.provider().to_owned(),
                    call.model().to_owned(),
                    futures::stream::iter(deltas),
                );
                stream.set_rate_limit(rate_limit);
                stream.set_price(self.stream_price(dialect, call));
                return Ok(stream);
            }
        };
        let source = stream::WireStream::new(
            dialect.provider().to_owned(),
            Box::pin(resp.bytes_stream()),
            dialect.stream_decoder(req),
            self.timeouts.idle,
            deadline,
        )
        .with_secret(key.into_owned());
        let mut stream = ChatStream::from_source(
            dialect.provider().to_owned(),
            call.model().to_owned(),
            Box::pin(source),
        );
        stream.set_rate_limit(rate_limit);
        stream.set_price(self.stream_price(dialect, call));
        Ok(stream)
    }

    /// Sends one request; `auth` is the header of a key from a source (a fixed key's header is
    /// among the endpoint's headers).
    async fn send(
        &self,
        wire: WireRequest,
        auth: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, Error> {
        let mut url = String::with_capacity(self.base_url.len() + wire.path.len());
        url.push_str(&self.base_url);
        url.push_str(&wire.path);
        let mut headers = self.headers.clone();
        if let Some(value) = auth {
            headers.insert(self.auth.header_name(), value.clone());
        }
        let request = self
            .client
            .post(url)
            .headers(headers)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(wire.body)
            .send();
        let limit = self.timeouts.first_byte;
        match tokio::time::timeout(limit, request).await {
            Ok(result) => result.map_err(error_map::from_reqwest),
            Err(_) => Err(Error::timeout(format!("no response head within {limit:?}"))),
        }
    }

    fn status_error(
        &self,
        dialect: &dyn Dialect,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        secret: Option<&str>,
    ) -> Error {
        let detail = dialect.error_detail(status, body);
        let err = error_map::from_status(status, headers, body, detail, secret);
        dialect.annotate_error(err, headers)
    }

    /// Labels an error with the provider and scrubs the request's key (`secret`) from it.
    fn finish_error(&self, dialect: &dyn Dialect, err: Error, secret: Option<&str>) -> Error {
        let err = if err.provider().is_none() {
            err.with_provider(dialect.provider())
        } else {
            err
        }
        .scrubbed(secret);
        tracing::debug!(
            provider = dialect.provider(),
            kind = %err.kind(),
            status = err.status(),
            "provider call failed"
        );
        err
    }
}

/// How a stream request was answered.
enum Opened {
    /// An event stream, to decode as it arrives, with the quota its headers announced.
    Stream(reqwest::Response, Option<RateLimitStatus>),
    /// One JSON body with a success status, with the quota its headers announced.
    Whole(Bytes, Option<RateLimitStatus>),
}

/// The deltas of a stream request that was answered with one JSON body: a JSON array is the
/// stream's chunks, each decoded as if it had been an SSE event (Gemini without `alt=sse`, some
/// proxies); anything else is a complete answer (a server that ignored `stream: true`), folded
/// into the deltas a stream of it would have carried. Without its terminal marker, a chunk
/// array ends with `StreamTruncated`, as a cut stream does.
fn whole_answer_deltas(
    dialect: &dyn Dialect,
    req: &ChatRequest,
    body: &[u8],
) -> Result<Vec<Result<Delta, Error>>, Error> {
    let text = body.trim_ascii_start();
    if text.first() == Some(&b'[') {
        let chunks: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(text).map_err(|e| {
                Error::decode("the JSON array of stream chunks is malformed").with_source(e)
            })?;
        let mut decoder = dialect.stream_decoder(req);
        let mut deltas = VecDeque::new();
        let mut meta = StreamMeta::default();
        let mut out: Vec<Result<Delta, Error>> = Vec::new();
        for chunk in chunks {
            let event = SseEvent {
                event: "",
                data: chunk.get(),
            };
            let result = decoder.on_event(
                event,
                &mut StreamOut {
                    deltas: &mut deltas,
                    meta: &mut meta,
                },
            );
            out.extend(deltas.drain(..).map(Ok));
            if let Err(e) = result {
                out.push(Err(e));
                return Ok(out);
            }
        }
        if !decoder.is_done() {
            out.push(Err(Error::truncated(
                "the array of stream chunks ended without the final chunk",
            )));
        }
        return Ok(out);
    }
    let answer = dialect.decode(body)?;
    Ok(answer_deltas(answer).into_iter().map(Ok).collect())
}

/// The deltas a stream of `answer` carries: reasoning (with signatures), text, tool calls,
/// usage, finish.
fn answer_deltas(answer: ChatResponse) -> Vec<Delta> {
    let mut out = Vec::new();
    let message = answer.message;
    if message.reasoning_blocks.is_empty() {
        if let Some(reasoning) = answer.reasoning.filter(|r| !r.is_empty()) {
            out.push(Delta::Reasoning(reasoning));
        }
        if let Some(signature) = message.reasoning_signature {
            out.push(Delta::ReasoningSignature(signature));
        }
    } else {
        for block in message.reasoning_blocks {
            out.push(Delta::Reasoning(block.text));
            if let Some(signature) = block.signature {
                out.push(Delta::ReasoningSignature(signature));
            }
        }
    }
    for part in message.content {
        if let crate::types::ContentPart::Text(text) = part
            && !text.is_empty()
        {
            out.push(Delta::Text(text));
        }
    }
    for (index, call) in message.tool_calls.into_iter().enumerate() {
        out.push(Delta::ToolCall {
            index,
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        });
        if let Some(signature) = call.signature {
            out.push(Delta::ToolCallSignature { index, signature });
        }
    }
    if let Some(usage) = answer.usage {
        out.push(Delta::Usage(usage));
    }
    out.push(Delta::Finish(answer.finish_reason));
    out
}

/// Reads a whole body, refusing more than `max` bytes. A body that arrives in one piece is
/// returned without copying.
pub(crate) async fn read_body(resp: reqwest::Response, max: usize) -> Result<Bytes, Error> {
    read_body_capped(resp, max)
        .await?
        .ok_or_else(|| Error::decode(format!("response body exceeds {max} bytes")))
}

/// Reads a whole body of at most `max` bytes; `None` when it is larger (reading stops as soon
/// as that is known). Callers choose the error an oversized body means.
pub(crate) async fn read_body_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Option<Bytes>, Error> {
    if resp.content_length().is_some_and(|len| len > max as u64) {
        return Ok(None);
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(error_map::from_reqwest)? {
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            prev => {
                if let Some(prev) = prev {
                    buf.reserve(prev.len() + chunk.len());
                    buf.extend_from_slice(&prev);
                }
                buf.extend_from_slice(&chunk);
            }
        }
        if first.as_ref().map_or(buf.len(), Bytes::len) > max {
            return Ok(None);
        }
    }
    Ok(Some(first.unwrap_or_else(|| Bytes::from(buf))))
}
