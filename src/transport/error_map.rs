//! Status + headers + body → [`Error`], once for every provider.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::error::{Error, ErrorKind};
use crate::transport::retry_after;

/// What a provider's error body says, as its dialect reads it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorDetail {
    /// Whether the body was recognized as the provider's error object.
    pub(crate) recognized: bool,
    /// The provider's message.
    pub(crate) message: Option<String>,
    /// The provider's error code or type.
    pub(crate) code: Option<String>,
    /// A more precise kind than the status alone gives (quota vs rate limit, context length…).
    pub(crate) kind: Option<ErrorKind>,
    /// A retry hint carried in the body (Gemini's `RetryInfo`).
    pub(crate) retry_after: Option<Duration>,
}

impl ErrorDetail {
    /// An error for a failure reported inside a stream (no status, no headers).
    pub(crate) fn into_stream_error(self, default: ErrorKind) -> Error {
        Error::new(
            self.kind.unwrap_or(default),
            self.message
                .unwrap_or_else(|| "error event in stream".into()),
        )
        .with_code(self.code)
        .with_retry_after(self.retry_after)
    }
}

/// The kind an HTTP status means when the body says nothing more precise.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExceeded,
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        413 => ErrorKind::ContextLength,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        409 | 500..=599 => ErrorKind::Server,
        // A 2xx here is a success status whose body is an error object or not what was asked.
        200..=299 => ErrorKind::Decode,
        _ => ErrorKind::InvalidRequest,
    }
}

/// Builds the error for a non-success answer (or a 2xx whose body is an error object).
pub(crate) fn from_status(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    detail: ErrorDetail,
    secret: Option<&str>,
) -> Error {
    let text = scrub(&String::from_utf8_lossy(body), secret);
    let kind = match (detail.kind, (200..300).contains(&status), detail.recognized) {
        (Some(kind), _, _) => kind,
        // A 2xx carrying a recognized error object is a server-side failure.
        (None, true, true) => ErrorKind::Server,
        (None, _, _) => kind_for_status(status),
    };
    let message = match detail.message {
        Some(m) => scrub(&m, secret),
        None if (200..300).contains(&status) => "unexpected response body".to_owned(),
        None => {
            let snippet: String = text.trim().chars().take(200).collect();
            if snippet.is_empty() {
                format!("HTTP {status}")
            } else {
                snippet
            }
        }
    };
    // DeepSeek sends no `x-request-id`, only `x-ds-trace-id`.
    let request_id = [
        "x-request-id",
        "request-id",
        "x-goog-request-id",
        "x-ds-trace-id",
    ]
    .iter()
    .find_map(|name| headers.get(*name)?.to_str().ok())
    .map(str::to_owned);
    let should_retry = match headers.get("x-should-retry").map(|v| v.as_bytes()) {
        Some(b"true") => Some(true),
        Some(b"false") => Some(false),
        _ => None,
    };
    Error::new(kind, message)
        .with_status(status)
        .with_code(detail.code)
        .with_retry_after(
            detail
                .retry_after
                .or_else(|| retry_after::from_headers(headers, SystemTime::now()))
                .or_else(|| (status == 429).then(|| rate_limit_reset(headers)).flatten()),
        )
        .with_request_id(request_id)
        .with_should_retry(should_retry)
        .with_body(Some(text))
}

/// For a 429 without Retry-After: when the exhausted window resets, from OpenAI-style
/// `x-ratelimit-remaining-*: 0` + `x-ratelimit-reset-*: 6m0s` headers.
fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    ["requests", "tokens"]
        .iter()
        .filter(|which| {
            headers
                .get(format!("x-ratelimit-remaining-{which}"))
                .is_some_and(|v| v.as_bytes() == b"0")
        })
        .filter_map(|which| {
            let v = headers
                .get(format!("x-ratelimit-reset-{which}"))?
                .to_str()
                .ok()?;
            retry_after::parse_go_duration(v)
        })
        .max()
}

/// A transport failure from reqwest, without the URL (which may hold a key).
pub(crate) fn from_reqwest(err: reqwest::Error) -> Error {
    // reqwest reports a body that breaks off while `chunk()` or `bytes_stream()` reads it as a
    // "decode" error; the library never asks reqwest to decode anything (JSON is parsed here), so
    // every such failure is the connection's, and may succeed on retry.
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    let message = if err.is_connect() {
        "cannot connect"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "the response body broke off"
    } else {
        "the request failed"
    };
    Error::new(kind, message).with_source(err.without_url())
}

/// Removes every occurrence of the API key from provider text.
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(key) if key.len() >= 4 && text.contains(key) => text.replace(key, "[REDACTED]"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_for_status(400), ErrorKind::InvalidRequest);
        assert_eq!(kind_for_status(401), ErrorKind::Auth);
        assert_eq!(kind_for_status(402), ErrorKind::QuotaExceeded);
        assert_eq!(kind_for_status(404), ErrorKind::NotFound);
        assert_eq!(kind_for_status(422), ErrorKind::InvalidRequest);
        assert_eq!(kind_for_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_for_status(500), ErrorKind::Server);
        assert_eq!(kind_for_status(503), ErrorKind::Overloaded);
        assert_eq!(kind_for_status(529), ErrorKind::Overloaded);
        assert_eq!(kind_for_status(504), ErrorKind::Timeout);
    }

    #[test]
    fn the_key_is_scrubbed_from_message_and_body() {
        let key = "sk-secret-1234567890";
        let body = format!("{{\"error\":{{\"message\":\"bad key {key}\"}}}}");
        let detail = ErrorDetail {
            recognized: true,
            message: Some(format!("bad key {key}")),
            ..ErrorDetail::default()
        };
        let err = from_status(401, &HeaderMap::new(), body.as_bytes(), detail, Some(key));
        assert!(!err.message().contains(key));
        assert!(!err.body().unwrap().contains(key));
        assert!(!format!("{err:?} {err}").contains(key));
    }

    #[test]
    fn headers_give_request_id_retry_after_and_should_retry() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("req_1"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        let err = from_status(503, &h, b"", ErrorDetail::default(), None);
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.request_id(), Some("req_1"));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert!(!err.is_retryable());
        assert_eq!(err.message(), "HTTP 503");
    }

    #[test]
    fn every_retry_hint_is_capped_after_conversion() {
        let day = Duration::from_secs(24 * 60 * 60);
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Fri, 01 Jan 2100 00:00:00 GMT"),
        );
        let err = from_status(503, &h, b"", ErrorDetail::default(), None);
        assert_eq!(err.retry_after(), Some(day), "HTTP date");

        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("0"),
        );
        h.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("100h"),
        );
        let err = from_status(429, &h, b"", ErrorDetail::default(), None);
        assert_eq!(err.retry_after(), Some(day), "x-ratelimit-reset");

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("999999999"));
        let err = from_status(429, &h, b"", ErrorDetail::default(), None);
        assert_eq!(err.retry_after(), Some(day), "seconds");

        let detail = ErrorDetail {
            retry_after: Some(day * 3),
            ..ErrorDetail::default()
        };
        let err = from_status(429, &HeaderMap::new(), b"", detail, None);
        assert_eq!(err.retry_after(), Some(day), "a body's hint");
    }

    #[test]
    fn x_should_retry_true_makes_a_status_retryable() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        for status in [400, 409] {
            let err = from_status(status, &h, b"", ErrorDetail::default(), None);
            assert!(err.is_retryable(), "{status}");
        }
        let err = from_status(400, &HeaderMap::new(), b"", ErrorDetail::default(), None);
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_exhausted_window() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("0"),
        );
        h.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("1m30s"),
        );
        h.insert(
            "x-ratelimit-remaining-tokens",
            HeaderValue::from_static("1200"),
        );
        h.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("6m0s"));
        let err = from_status(429, &h, b"", ErrorDetail::default(), None);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(90)));
    }
}
