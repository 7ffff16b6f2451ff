//! The gateway's HTTP endpoints over a [`Router`]: a thin adapter from OpenAI's HTTP API to the
//! router, with gateway keys and the server's own limits.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::openai::{self, ChunkWriter, CompletionRequest};
use crate::error::{Error, ErrorKind};
use crate::provider::ChatProvider;
use crate::router::Router;
use crate::types::{ChatStream, Delta, RouteInfo, Usage};

pub use crate::config::KEY_TAG;

/// How long a stream may be silent before the server sends an SSE comment, so that proxies keep
/// the connection and a client that went away is noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The default largest request body: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// The default most requests served at once.
pub const DEFAULT_MAX_CONCURRENT: usize = 512;

/// A gateway key: a bearer token clients send, and the routes it may use.
#[derive(Clone)]
pub struct GatewayKey {
    name: String,
    key: SecretString,
    routes: Option<Vec<String>>,
}

impl std::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayKey")
            .field("name", &self.name)
            .field("key", &"[REDACTED]")
            .field("routes", &self.routes)
            .finish()
    }
}

impl GatewayKey {
    /// A key called `name` (for logs, budgets and metrics) whose token is `key`, allowed on
    /// every route.
    pub fn new(name: impl Into<String>, key: SecretString) -> Self {
        GatewayKey {
            name: name.into(),
            key,
            routes: None,
        }
    }

    /// Allows the key only on these routes (and target models).
    pub fn routes(mut self, routes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.routes = Some(routes.into_iter().map(Into::into).collect());
        self
    }
}

/// The gateway: a router served in OpenAI's format, behind gateway keys and limits.
#[derive(Debug)]
#[must_use]
pub struct Gateway {
    router: Router,
    keys: Vec<GatewayKey>,
    max_body: usize,
    max_concurrent: usize,
    timeout: Option<Duration>,
    metrics: Option<PrometheusHandle>,
}

struct Shared {
    router: Router,
    keys: Vec<GatewayKey>,
    permits: Arc<Semaphore>,
    timeout: Option<Duration>,
    metrics: Option<PrometheusHandle>,
    /// The routes and target models the router serves: the only `route` label values of the
    /// gateway's own counter (a client's made-up model name is `-`, so labels stay bounded).
    served: std::collections::HashSet<String>,
}

impl Gateway {
    /// A gateway over `router`, without keys (so for loopback only), with the default limits.
    pub fn new(router: Router) -> Self {
        Gateway {
            router,
            keys: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            timeout: None,
            metrics: None,
        }
    }

    /// Serves `GET /metrics` in Prometheus' text format from `handle`: the router's measurements
    /// (see [`router::metrics`](crate::router)), the gateway's own request counter, and, set at
    /// each scrape, gauges of every target's circuit and calls in flight and of every budget.
    ///
    /// The handle's recorder must be the one the `metrics` facade records to: installed
    /// globally (as `modelgate serve` does with
    /// [`PrometheusBuilder::install_recorder`](metrics_exporter_prometheus::PrometheusBuilder::install_recorder)),
    /// or a local recorder around the server's tasks. Whoever installs it also runs
    /// [`PrometheusHandle::run_upkeep`] now and then. Without a handle, `/metrics` is 404.
    ///
    /// `/metrics` needs no gateway key (scrapers seldom send one); it names keys, routes,
    /// providers, models and budgets, never a key's token.
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Requires one of these keys (as `Authorization: Bearer …`) on every API request.
    pub fn keys(mut self, keys: impl IntoIterator<Item = GatewayKey>) -> Self {
        self.keys = keys.into_iter().collect();
        self
    }

    /// The largest request body; larger ones get 413 (default [`DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The most requests served at once (streams until they end); more get 503 (default
    /// [`DEFAULT_MAX_CONCURRENT`]).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// The deadline of each request, everything included; past it, 504.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether the gateway checks keys (without any, it must only listen on loopback).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The HTTP application: `POST /v1/chat/completions`, `GET /v1/models`, `GET /healthz`,
    /// and `GET /metrics` when [`Gateway::metrics`] gave it a handle.
    pub fn into_app(self) -> axum::Router {
        let served = self.router.served_names().into_iter().collect();
        let shared = Arc::new(Shared {
            router: self.router,
            keys: self.keys,
            permits: Arc::new(Semaphore::new(self.max_concurrent.max(1))),
            timeout: self.timeout,
            metrics: self.metrics,
            served,
        });
        axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(prometheus))
            .layer(DefaultBodyLimit::max(self.max_body))
            .with_state(shared)
    }
}

/// A Prometheus recorder builder with buckets that suit the router's histograms, so they render
/// as Prometheus histograms (aggregatable across gateways) rather than summaries: seconds for
/// `gen_ai.client.operation.*` (duration, time to first chunk), tokens for
/// `gen_ai.client.token.usage`.
///
/// Build the recorder with it, install it (or set it as a local recorder), and give its handle to
/// [`Gateway::metrics`]:
///
/// ```no_run
/// # fn gateway(router: modelgate::router::Router) -> modelgate::server::Gateway {
/// let handle = modelgate::server::prometheus_builder()
///     .install_recorder()
///     .expect("no other recorder installed");
/// modelgate::server::Gateway::new(router).metrics(handle)
/// # }
/// ```
pub fn prometheus_builder() -> metrics_exporter_prometheus::PrometheusBuilder {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    const SECONDS: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
    const TOKENS: &[f64] = &[
        16.0,
        64.0,
        256.0,
        1024.0,
        4096.0,
        16384.0,
        65536.0,
        262_144.0,
        1_048_576.0,
    ];
    // Neither list is empty, the one error these return.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("gen_ai_client_operation".to_owned()),
            SECONDS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("gen_ai_client_token_usage".to_owned()),
                TOKENS,
            )
        })
        .expect("non-empty buckets")
}

/// An OpenAI-format error response.
fn error(status: u16, kind: &str, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": kind, "param": Value::Null, "code": code}});
    json_response(status, &body)
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The key a request came with (`Err`: the 401 to send), compared in constant time against every key (no early exit, so
/// timing tells nothing of which or how much matched). `Ok(None)` when the gateway has no keys.
// The error is the response itself, built once on a path that ends the request.
#[allow(clippy::result_large_err)]
fn authenticate<'k>(
    keys: &'k [GatewayKey],
    headers: &HeaderMap,
) -> Result<Option<&'k GatewayKey>, Response> {
    if keys.is_empty() {
        return Ok(None);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let mut found = None;
    for key in keys {
        let equal: bool = keys_equal(key.key.expose_secret().as_bytes(), token.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(key);
        }
    }
    found.map(Some).ok_or_else(|| {
        error(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "missing or wrong gateway key",
        )
    })
}

/// A key against a token, in time that depends on their lengths only ([`subtle`]: no early exit
/// at the first differing byte).
fn keys_equal(key: &[u8], token: &[u8]) -> subtle::Choice {
    #[cfg(test)]
    tests::COMPARISONS.with(|n| n.set(n.get() + 1));
    key.ct_eq(token)
}

/// Tags from `x-modelgate-tags: k=v,k2=v2`.
fn header_tags(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers
        .get_all("x-modelgate-tags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
        })
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `x-modelgate-*` headers naming what served the request.
fn route_headers(headers: &mut HeaderMap, provider: &str, model: &str, route: Option<&RouteInfo>) {
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("x-modelgate-provider", provider);
    put("x-modelgate-model", model);
    if let Some(route) = route {
        put("x-modelgate-route", &route.route);
        let calls = route
            .attempts
            .iter()
            .filter(|a| !matches!(a.outcome, crate::types::AttemptOutcome::Skipped(_)))
            .count();
        put("x-modelgate-attempts", &calls.to_string());
    }
}

/// A router error as the gateway's contract says: its status, `Retry-After` when the router
/// knows when to come back, `x-should-retry: false` for a spent budget without a window.
fn router_error(err: &Error) -> Response {
    let (status, body) = openai::error_response(err);
    let mut r = json_response(status, &body);
    if status == 429 {
        match err.retry_after() {
            Some(after) => {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            None if err.kind() == ErrorKind::BudgetExceeded => {
                r.headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
            }
            None => {}
        }
    }
    r
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let key = match authenticate(&shared.keys, &headers) {
        Ok(key) => key,
        Err(r) => return r,
    };
    let data: Vec<Value> = shared
        .router
        .served_names()
        .into_iter()
        .filter(|name| {
            key.and_then(|k| k.routes.as_ref())
                .is_none_or(|r| r.contains(name))
        })
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "modelgate"}))
        .collect();
    json_response(200, &json!({"object": "list", "data": data}))
}

/// `GET /metrics`: the gauges of the targets and budgets set from the router, then everything
/// the recorder holds, in Prometheus' text format.
async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    let Some(handle) = &shared.metrics else {
        return error(
            404,
            "invalid_request_error",
            "not_found",
            "metrics are not enabled on this gateway",
        );
    };
    record_gauges(&shared.router).await;
    let mut r = Response::new(Body::from(handle.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Sets, through the `metrics` facade, each target's circuit state (0 closed, 1 half-open,
/// 2 open) and calls in flight, and each budget's limit, spend and reservations.
async fn record_gauges(router: &Router) {
    use crate::router::CircuitStatus;
    for t in router.stats().targets {
        let labels = [
            ("gen_ai.provider.name", t.provider),
            ("gen_ai.request.model", t.model),
        ];
        metrics::gauge!("modelgate.target.in_flight", &labels).set(f64::from(t.in_flight));
        if let Some(circuit) = t.circuit {
            let state = match circuit {
                CircuitStatus::Closed => 0.0,
                CircuitStatus::HalfOpen => 1.0,
                _ => 2.0,
            };
            metrics::gauge!("modelgate.target.circuit_state", &labels).set(state);
        }
    }
    match router.budgets().await {
        Ok(budgets) => {
            for b in budgets {
                let labels = [("modelgate.budget", b.name)];
                metrics::gauge!("modelgate.budget.limit_usd", &labels).set(b.limit_usd);
                metrics::gauge!("modelgate.budget.spent_usd", &labels).set(b.spent_usd);
                metrics::gauge!("modelgate.budget.reserved_usd", &labels).set(b.reserved_usd);
            }
        }
        Err(e) => tracing::warn!(
            target: "modelgate::gateway",
            error = %e,
            "cannot read the budgets for /metrics"
        ),
    }
}

/// What the request counter is labelled with, filled in as the request is understood.
struct Served {
    key: Option<String>,
    route: Option<String>,
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut served = Served {
        key: None,
        route: None,
    };
    let response = handle_chat(&shared, &headers, &body, &mut served).await;
    if shared.metrics.is_some() {
        let route = served
            .route
            .filter(|r| shared.served.contains(r))
            .unwrap_or_else(|| "-".to_owned());
        let labels = [
            (
                "modelgate.key",
                served.key.unwrap_or_else(|| "-".to_owned()),
            ),
            ("modelgate.route", route),
            (
                "http.response.status_code",
                response.status().as_u16().to_string(),
            ),
        ];
        metrics::counter!("modelgate.gateway.requests", &labels).increment(1);
    }
    response
}

async fn handle_chat(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    served: &mut Served,
) -> Response {
    let key = match authenticate(&shared.keys, headers) {
        Ok(key) => key,
        Err(r) => return r,
    };
    served.key = key.map(|k| k.name.clone());
    let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() else {
        return error(
            503,
            "server_error",
            "overloaded",
            "too many requests in flight; try again",
        );
    };
    let CompletionRequest {
        request: mut req,
        stream,
        include_usage,
        ..
    } = match openai::parse_request(body) {
        Ok(parsed) => parsed,
        Err(e) => return json_response(400, &e.to_json()),
    };
    served.route = Some(req.model.clone());
    if let Some(key) = key {
        if let Some(routes) = &key.routes
            && !routes.contains(&req.model)
        {
            return error(
                403,
                "invalid_request_error",
                "route_not_allowed",
                format!("gateway key `{}` may not use `{}`", key.name, req.model),
            );
        }
        req.metadata.insert(KEY_TAG.to_owned(), key.name.clone());
    }
    req.metadata.extend(header_tags(headers));
    if let Some(t) = shared.timeout {
        req.timeout = Some(req.timeout.map_or(t, |own| own.min(t)));
    }
    let key_name = key.map_or("-", |k| k.name.as_str());
    let started = tokio::time::Instant::now();
    if !stream {
        let result = shared.router.chat(&req).await;
        drop(permit);
        log_request(key_name, &req.model, &result, started);
        return match result {
            Ok(r) => {
                let mut resp = json_response(200, &openai::response_json(&r, now_unix()));
                route_headers(resp.headers_mut(), &r.provider, &r.model, r.route.as_ref());
                if let Some(cost) = r.cost
                    && let Ok(v) = HeaderValue::from_str(&format!("{cost:.9}"))
                {
                    resp.headers_mut().insert("x-modelgate-cost-usd", v);
                }
                resp
            }
            Err(e) => router_error(&e),
        };
    }
    match shared.router.chat_stream(&req).await {
        Ok(s) => {
            let mut headers = HeaderMap::new();
            route_headers(&mut headers, s.provider(), s.model(), s.route());
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let log = StreamLog {
                key: key_name.to_owned(),
                route: req.model.clone(),
                provider: s.provider().to_owned(),
                model: s.model().to_owned(),
                started,
                ttft_ms: started.elapsed().as_millis() as u64,
                outcome: "cancelled",
            };
            let events = sse_events(s, include_usage, permit, log);
            (headers, Body::from_stream(events)).into_response()
        }
        Err(e) => {
            let response = router_error(&e);
            tracing::info!(
                target: "modelgate::gateway",
                key = key_name,
                route = %req.model,
                status = response.status().as_u16(),
                error = e.kind().as_str(),
                stream = true,
                latency_ms = started.elapsed().as_millis() as u64,
                "request failed"
            );
            response
        }
    }
}

/// One log line per request: key name, route, provider, model, status, tokens, cost, latency;
/// never the prompt or a key.
fn log_request(
    key: &str,
    route: &str,
    result: &Result<crate::types::ChatResponse, Error>,
    started: tokio::time::Instant,
) {
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(r) => tracing::info!(
            target: "modelgate::gateway",
            key,
            route,
            provider = %r.provider,
            model = %r.model,
            status = 200,
            input_tokens = r.usage.map(|u| u.input_tokens),
            output_tokens = r.usage.map(|u| u.output_tokens),
            cost_usd = r.cost,
            latency_ms,
            "request served"
        ),
        Err(e) => tracing::info!(
            target: "modelgate::gateway",
            key,
            route,
            status = openai::error_response(e).0,
            error = e.kind().as_str(),
            latency_ms,
            "request failed"
        ),
    }
}

/// A stream's log line, written when it ends: what [`log_request`] says of a chat, with the
/// time to its first chunk and how it ended (`done`, an error kind, or `cancelled` when the
/// client went away first).
struct StreamLog {
    key: String,
    route: String,
    provider: String,
    model: String,
    started: tokio::time::Instant,
    ttft_ms: u64,
    outcome: &'static str,
}

impl StreamLog {
    fn emit(&self, usage: Option<&Usage>, cost: Option<f64>) {
        tracing::info!(
            target: "modelgate::gateway",
            key = %self.key,
            route = %self.route,
            provider = %self.provider,
            model = %self.model,
            status = 200,
            stream = true,
            outcome = self.outcome,
            input_tokens = usage.map(|u| u.input_tokens),
            output_tokens = usage.map(|u| u.output_tokens),
            cost_usd = cost,
            ttft_ms = self.ttft_ms,
            latency_ms = self.started.elapsed().as_millis() as u64,
            "stream served"
        );
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets the
/// requests in flight (streams included) finish for up to `grace`.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    use axum::serve::ListenerExt;
    // Stream chunks are small writes: without TCP_NODELAY, Nagle's algorithm and the client's
    // delayed ACKs hold each one back for about 40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut stop = stop_rx;
    tokio::select! {
        result = server => result,
        () = async {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(target: "modelgate::gateway", "grace period over; closing the streams still open");
            Ok(())
        }
    }
}

/// The stream's SSE events: a chunk per delta, an SSE comment after every [`KEEP_ALIVE`] of
/// silence, the usage chunk (with its cost) when asked for, and `[DONE]` only when the upstream
/// stream really ended; a failure after the first chunk is an OpenAI-style error event, and the
/// stream closes without `[DONE]`. Dropping the body (a client gone) drops the upstream stream,
/// which cancels its request.
fn sse_events(
    stream: ChatStream,
    include_usage: bool,
    permit: tokio::sync::OwnedSemaphorePermit,
    log: StreamLog,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    struct St {
        stream: ChatStream,
        writer: ChunkWriter,
        usage: Option<Usage>,
        include_usage: bool,
        done: bool,
        log: StreamLog,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
    // The stream's log line, once it ended, failed or its client went away.
    impl Drop for St {
        fn drop(&mut self) {
            self.log.emit(self.usage.as_ref(), self.stream.cost());
        }
    }
    let writer = ChunkWriter::new(stream.id().unwrap_or(""), stream.model(), now_unix());
    let state = St {
        stream,
        writer,
        usage: None,
        include_usage,
        done: false,
        log,
        _permit: permit,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match tokio::time::timeout(KEEP_ALIVE, st.stream.next()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st)),
                Ok(Some(Ok(delta))) => {
                    if let Delta::Usage(u) = &delta {
                        st.usage = Some(*u);
                    }
                    if let Some(chunk) = st.writer.delta(&delta) {
                        return Some((Ok(event(&chunk)), st));
                    }
                }
                Ok(Some(Err(err))) => {
                    st.done = true;
                    st.log.outcome = err.kind().as_str();
                    let (_, body) = openai::error_response(&err);
                    return Some((Ok(event(&body)), st));
                }
                Ok(None) => {
                    st.done = true;
                    st.log.outcome = "done";
                    let mut out = Vec::new();
                    if st.include_usage
                        && let Some(u) = &st.usage
                    {
                        out.extend_from_slice(&event(&st.writer.usage(u, st.stream.cost())));
                    }
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    return Some((Ok(Bytes::from(out)), st));
                }
            }
        }
    })
}

fn event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// How many key comparisons this thread made.
        pub(super) static COMPARISONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    fn comparisons(keys: &[GatewayKey], token: &str) -> (Option<String>, usize) {
        COMPARISONS.with(|n| n.set(0));
        let found = authenticate(keys, &bearer(token))
            .ok()
            .flatten()
            .map(|k| k.name.clone());
        (found, COMPARISONS.with(std::cell::Cell::get))
    }

    #[test]
    fn authenticate_compares_with_subtle_against_every_key_without_early_exit() {
        // The comparison is subtle's: its result is a `Choice`, not a `bool` from `==`.
        let _: fn(&[u8], &[u8]) -> subtle::Choice = keys_equal;
        let keys: Vec<GatewayKey> = ["mg-alpha-0001", "mg-beta-00002", "mg-gamma-0003"]
            .iter()
            .enumerate()
            .map(|(i, k)| GatewayKey::new(format!("k{i}"), (*k).to_owned().into()))
            .collect();
        // Whichever key matches, first, last or none, every key is compared.
        assert_eq!(
            comparisons(&keys, "mg-alpha-0001"),
            (Some("k0".to_owned()), 3)
        );
        assert_eq!(
            comparisons(&keys, "mg-gamma-0003"),
            (Some("k2".to_owned()), 3)
        );
        assert_eq!(comparisons(&keys, "mg-gamma-0004"), (None, 3));
        assert_eq!(comparisons(&keys, "mg-gamma-000"), (None, 3));
        assert_eq!(comparisons(&keys, ""), (None, 3));
        // Without keys, nothing to compare and nothing refused.
        assert_eq!(comparisons(&[], "anything"), (None, 0));
        assert!(authenticate(&[], &HeaderMap::new()).is_ok());
        assert_eq!(
            authenticate(&keys, &HeaderMap::new()).unwrap_err().status(),
            401
        );
    }
}
