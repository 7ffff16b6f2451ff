//! The one error type of the crate and its classification.
//!
//! Every failure, whether it comes from a provider's HTTP answer, a broken stream, a local policy or a
//! misconfiguration, is an [`Error`] with an [`ErrorKind`]. Retry, fallback and circuit-breaking logic
//! all ask the same three questions of it: [`Error::is_retryable`], [`Error::should_fallback`] and
//! [`Error::is_provider_health_failure`].

use std::fmt;
use std::time::{Duration, SystemTime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider throttled the request (HTTP 429); it may succeed after [`Error::retry_after`].
    RateLimited,
    /// The account's quota, credit or balance is exhausted (OpenAI `insufficient_quota`, HTTP 402).
    QuotaExceeded,
    /// The provider is overloaded (HTTP 503, Anthropic 529 `overloaded_error`).
    Overloaded,
    /// A timeout: connecting, waiting for the first byte, an idle stream, or the overall deadline.
    Timeout,
    /// The credentials were missing, invalid or not allowed (HTTP 401/403).
    Auth,
    /// The provider rejected the request as malformed (HTTP 400/422 and similar).
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// The provider refused the prompt or the answer for safety reasons.
    ContentFilter,
    /// The model or endpoint does not exist (HTTP 404).
    NotFound,
    /// The provider failed internally (HTTP 5xx other than overload).
    Server,
    /// The connection failed or broke before a response was complete.
    Network,
    /// The provider's answer could not be understood (malformed JSON, invalid UTF-8, oversized body).
    Decode,
    /// A stream ended without the provider's terminal marker.
    StreamTruncated,
    /// A budget would be exceeded by this request.
    BudgetExceeded,
    /// The target's circuit breaker is open.
    CircuitOpen,
    /// Every target of a route failed; [`Error::attempts`] holds each failure.
    AllTargetsFailed,
    /// The shared state store (Redis) could not be reached in time and is configured to refuse
    /// what it cannot check (`on_error = "fail-closed"`): a request a budget covers is refused.
    StateUnavailable,
    /// The library was misconfigured (missing API key, bad base URL, a route with no targets…).
    Config,
}

impl ErrorKind {
    /// The kind an HTTP status means when nothing more precise is known: 401/403 `Auth`, 402
    /// `QuotaExceeded`, 404 `NotFound`, 408/504 `Timeout`, 413 `ContextLength`, 429
    /// `RateLimited`, 503/529 `Overloaded`, 409 and other 5xx `Server`, a 2xx (a success whose
    /// body was not what was asked) `Decode`, anything else `InvalidRequest`.
    pub fn for_status(status: u16) -> ErrorKind {
        crate::transport::kind_for_status(status)
    }

    /// A short lower-case name, stable enough for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::ContentFilter => "content_filter",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Server => "server",
            ErrorKind::Network => "network",
            ErrorKind::Decode => "decode",
            ErrorKind::StreamTruncated => "stream_truncated",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::AllTargetsFailed => "all_targets_failed",
            ErrorKind::StateUnavailable => "state_unavailable",
            ErrorKind::Config => "config",
        }
    }

    /// Whether the same request, sent again to the same target, may succeed.
    ///
    /// True for rate limits, overload, server errors, timeouts, connection errors and truncated
    /// streams; never for bad requests, auth failures, missing models or undecodable answers.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Timeout
                | ErrorKind::Server
                | ErrorKind::Network
                | ErrorKind::StreamTruncated
        )
    }

    /// Whether another target (another provider or model) may serve the request instead.
    ///
    /// True for everything retryable plus exhausted quotas, missing models, undecodable answers, open
    /// circuits, per-target budgets and a nested router whose targets all failed (which is never
    /// retried itself, so nested routers cannot multiply retries). `InvalidRequest`, `Auth` and `ContentFilter` are the caller's
    /// to fix and surface at once; `ContextLength` only moves to a target with a larger window, which
    /// the router decides.
    pub fn should_fallback(self) -> bool {
        self.is_retryable()
            || matches!(
                self,
                ErrorKind::QuotaExceeded
                    | ErrorKind::NotFound
                    | ErrorKind::Decode
                    | ErrorKind::CircuitOpen
                    | ErrorKind::BudgetExceeded
                    | ErrorKind::AllTargetsFailed
            )
    }

    /// Whether the failure says the provider is unhealthy (what a circuit breaker counts).
    ///
    /// A caller's bad request, a rate limit or a quota never counts.
    pub fn is_provider_health_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::Overloaded
                | ErrorKind::Timeout
                | ErrorKind::Server
                | ErrorKind::Network
                | ErrorKind::StreamTruncated
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every modelgate operation.
///
/// It keeps what the provider said (status, message, request id, raw body) and what the library
/// parsed from it (kind, retry-after). API keys never appear in it: bodies are scrubbed of the key
/// that was sent before they are stored.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    provider: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    body: Option<String>,
    should_retry: Option<bool>,
    rate_limit: Option<RateLimitHint>,
    attempts: Vec<Error>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a short human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                provider: None,
                status: None,
                code: None,
                retry_after: None,
                request_id: None,
                body: None,
                should_retry: None,
                rate_limit: None,
                attempts: Vec::new(),
                source: None,
            }),
        }
    }

    /// An error for an HTTP answer with a non-success `status`: its kind is
    /// [`ErrorKind::for_status`] and its [`status`](Error::status) is set. This is the usual
    /// start for a custom [`ChatProvider`](crate::ChatProvider) built on its own HTTP client;
    /// add what the answer said with the `with_*` setters:
    ///
    /// ```
    /// use std::time::Duration;
    /// use modelgate::{Error, ErrorKind};
    /// let err = Error::http(429, "slow down")
    ///     .with_provider("my-llm")
    ///     .with_retry_after(Some(Duration::from_secs(2)))
    ///     .with_request_id(Some("req_1".into()));
    /// assert_eq!(err.kind(), ErrorKind::RateLimited);
    /// assert!(err.is_retryable());
    /// ```
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::for_status(status), message).with_status(status)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }

    pub(crate) fn truncated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::StreamTruncated, message)
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// An `AllTargetsFailed` error carrying each attempt's error, in order.
    pub fn all_targets_failed(attempts: Vec<Error>) -> Self {
        let mut err = Self::new(
            ErrorKind::AllTargetsFailed,
            format!("all {} attempts failed", attempts.len()),
        );
        // The last attempt's retry hint is the most useful one for a caller deciding when to retry.
        err.inner.retry_after = attempts.iter().filter_map(Error::retry_after).min();
        err.inner.attempts = attempts;
        err
    }

    /// Sets the errors of the attempts this error sums up (see [`Error::attempts`]).
    pub fn with_attempts(mut self, attempts: Vec<Error>) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// Sets the provider that failed ([`Error::provider`]); a router names the target's
    /// provider in its records and stats by it.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.inner.provider = Some(provider.into());
        self
    }

    /// Sets the HTTP status of the provider's answer ([`Error::status`]). It does not change
    /// the kind: pick that with [`ErrorKind::for_status`] or use [`Error::http`].
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Sets (or, with `None`, clears) the provider's own error code ([`Error::code`]).
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.inner.code = code;
        self
    }

    /// Sets (or clears) how long the provider asked to wait ([`Error::retry_after`]), capped at
    /// a day: the one place every hint (headers, body, rate-limit resets) is capped, after its
    /// unit was converted. A router honours it: a `RateLimited` error with a wait rests its
    /// target until then (capped by the router's `max_rest`), and a retry waits at least this
    /// long.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.inner.retry_after =
            retry_after.map(|d| d.min(crate::transport::retry_after::MAX_HINT));
        self
    }

    /// Sets (or clears) the provider's request id ([`Error::request_id`]).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.inner.request_id = request_id;
        self
    }

    /// Sets (or clears) the raw body kept for the user ([`Error::body`]). Scrub secrets from it
    /// first: the library stores it as given.
    pub fn with_body(mut self, body: Option<String>) -> Self {
        self.inner.body = body;
        self
    }

    /// Records the provider's explicit retry advice (`x-should-retry`): `Some(false)` makes the
    /// error not retryable whatever its kind, `Some(true)` makes it retryable, `None` leaves the
    /// kind to decide (see [`Error::is_retryable`]).
    pub fn with_should_retry(mut self, should_retry: Option<bool>) -> Self {
        self.inner.should_retry = should_retry;
        self
    }

    /// Records the provider's request rate-limit window (remaining requests, reset time).
    /// The window is what [`Error::rate_limit_remaining`] and [`Error::rate_limit_reset`] report;
    /// both `None` clears it.
    pub fn with_rate_limit(mut self, remaining: Option<u64>, reset: Option<SystemTime>) -> Self {
        self.inner.rate_limit =
            (remaining.is_some() || reset.is_some()).then_some(RateLimitHint { remaining, reset });
        self
    }

    /// Removes every occurrence of `secret` (the API key that was sent) from the provider's
    /// text this error carries: message, code, body, and the errors of its attempts.
    pub(crate) fn scrubbed(mut self, secret: Option<&str>) -> Self {
        let Some(key) = secret.filter(|k| k.len() >= 4) else {
            return self;
        };
        let clean = |text: &mut String| {
            if text.contains(key) {
                *text = text.replace(key, "[REDACTED]");
            }
        };
        let inner = &mut *self.inner;
        clean(&mut inner.message);
        if let Some(code) = &mut inner.code {
            clean(code);
        }
        if let Some(body) = &mut inner.body {
            clean(body);
        }
        inner.attempts = std::mem::take(&mut inner.attempts)
            .into_iter()
            .map(|e| e.scrubbed(secret))
            .collect();
        self
    }

    /// Sets the underlying error ([`std::error::Error::source`]), such as an I/O or HTTP
    /// client error. Keep secrets out of it: its `Display` may be logged.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The provider's message, or the library's description of the failure.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The provider that failed (`"openai"`, `"deepseek"`, …), when one did.
    pub fn provider(&self) -> Option<&str> {
        self.inner.provider.as_deref()
    }

    /// The HTTP status of the provider's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The provider's own error code or type (`"insufficient_quota"`, `"overloaded_error"`, …).
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// How long the provider asked us to wait before trying again (`retry-after-ms`, `retry-after`,
    /// a rate-limit window's reset, or a retry delay in the body), when it said; at most a day, a
    /// longer hint being read as a day.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The provider's request id (`x-request-id`, `request-id`), for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// The raw response body the provider sent with the error, scrubbed of the API key.
    pub fn body(&self) -> Option<&str> {
        self.inner.body.as_deref()
    }

    /// How many requests the provider said were left in its current rate-limit window when it
    /// answered with this error (Anthropic `anthropic-ratelimit-requests-remaining`), when it said.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        self.inner.rate_limit.as_ref()?.remaining
    }

    /// When the provider said its request rate-limit window resets (Anthropic
    /// `anthropic-ratelimit-requests-reset`), when it said. [`Error::retry_after`] is the hint to
    /// wait on; this is the wall-clock time of the window, for dashboards and schedulers.
    pub fn rate_limit_reset(&self) -> Option<SystemTime> {
        self.inner.rate_limit.as_ref()?.reset
    }

    /// For [`ErrorKind::AllTargetsFailed`] (and a router's deadline `Timeout`): every attempt's
    /// error, in the order they were made.
    pub fn attempts(&self) -> &[Error] {
        &self.inner.attempts
    }

    /// Whether the same request, sent again to the same target, may succeed.
    ///
    /// Follows [`ErrorKind::is_retryable`], except that a provider's explicit `x-should-retry`
    /// header wins, as in the official OpenAI and Anthropic SDKs: `true` makes any failure
    /// retryable (a 409 or 400 the provider knows to be transient), `false` none.
    pub fn is_retryable(&self) -> bool {
        match self.inner.should_retry {
            Some(should_retry) => should_retry,
            None => self.inner.kind.is_retryable(),
        }
    }

    /// Whether another target may serve the request instead (see [`ErrorKind::should_fallback`]).
    pub fn should_fallback(&self) -> bool {
        self.inner.kind.should_fallback()
    }

    /// Whether the failure says the provider is unhealthy (see
    /// [`ErrorKind::is_provider_health_failure`]).
    pub fn is_provider_health_failure(&self) -> bool {
        self.inner.kind.is_provider_health_failure()
    }
}

/// A provider's request rate-limit window, read from its response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RateLimitHint {
    remaining: Option<u64>,
    reset: Option<SystemTime>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(p) = &self.inner.provider {
            d.field("provider", p);
        }
        if let Some(s) = self.inner.status {
            d.field("status", &s);
        }
        if let Some(c) = &self.inner.code {
            d.field("code", c);
        }
        if let Some(r) = self.inner.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(r) = &self.inner.request_id {
            d.field("request_id", r);
        }
        if let Some(r) = &self.inner.rate_limit {
            d.field("rate_limit", r);
        }
        if !self.inner.attempts.is_empty() {
            d.field("attempts", &self.inner.attempts);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.inner.provider {
            write!(f, "{p}: ")?;
        }
        f.write_str(self.inner.kind.as_str())?;
        if let Some(s) = self.inner.status {
            write!(f, " ({s})")?;
        }
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn caller_errors_are_neither_retried_nor_failed_over() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::Auth,
            ErrorKind::ContentFilter,
            ErrorKind::ContextLength,
            ErrorKind::Config,
        ] {
            assert!(!kind.is_retryable(), "{kind}");
            assert!(!kind.should_fallback(), "{kind}");
            assert!(!kind.is_provider_health_failure(), "{kind}");
        }
    }

    #[test]
    fn rate_limits_retry_but_do_not_trip_circuits() {
        assert!(ErrorKind::RateLimited.is_retryable());
        assert!(ErrorKind::RateLimited.should_fallback());
        assert!(!ErrorKind::RateLimited.is_provider_health_failure());
        assert!(!ErrorKind::QuotaExceeded.is_retryable());
        assert!(ErrorKind::QuotaExceeded.should_fallback());
        assert!(!ErrorKind::Decode.is_retryable());
        assert!(ErrorKind::Decode.should_fallback());
    }

    #[test]
    fn explicit_should_retry_false_wins() {
        let e = Error::new(ErrorKind::Server, "boom").with_should_retry(Some(false));
        assert!(!e.is_retryable());
    }

    #[test]
    fn explicit_should_retry_true_makes_any_status_retryable() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::Server,
            ErrorKind::Auth,
        ] {
            let e = Error::new(kind, "again").with_should_retry(Some(true));
            assert!(e.is_retryable(), "{kind}");
            // It changes the retry only: fallback and health stay the kind's.
            assert_eq!(e.should_fallback(), kind.should_fallback());
            assert_eq!(
                e.is_provider_health_failure(),
                kind.is_provider_health_failure()
            );
        }
    }

    #[test]
    fn display_is_short() {
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_provider("openai")
            .with_status(429);
        assert_eq!(e.to_string(), "openai: rate_limited (429): slow down");
    }
}
