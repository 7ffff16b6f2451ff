//! The quota a provider announces on every successful answer, read once per response:
//! OpenAI-style `x-ratelimit-remaining-{requests,tokens}` and `x-ratelimit-reset-{requests,tokens}`
//! (Go durations: `1s`, `6m0s`, `120ms`), as OpenAI, DeepSeek, Groq and other compatible
//! services send them, and Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,
//! output-tokens}-{remaining,reset}` (RFC 3339 times).
//!
//! It runs on every call, so it walks the header map once without allocating, and an answer
//! without such headers costs one comparison per header.

use std::time::{Duration, SystemTime};

use reqwest::header::{DATE, HeaderMap};

use crate::transport::retry_after::{self, MAX_HINT};
use crate::types::RateLimitStatus;

/// The status announced by `headers`, or `None` when they hold no rate-limit header (or only
/// malformed ones). Absolute reset times are read against the `date` header, or the system
/// clock without one.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<RateLimitStatus> {
    from_headers_at(headers, SystemTime::now)
}

/// [`from_headers`] with the clock used when the answer has no `date` header (read only when
/// an absolute reset time needs it).
pub(crate) fn from_headers_at(
    headers: &HeaderMap,
    now: impl FnOnce() -> SystemTime,
) -> Option<RateLimitStatus> {
    let mut status = RateLimitStatus::default();
    // Anthropic's windows, as they are met: the general token window wins over the input and
    // output ones, whose smaller value stands in for it.
    let mut tokens_general = false;
    let mut requests_at: Option<&str> = None;
    let mut tokens_at: Option<&str> = None;
    let mut tokens_at_general = false;
    for (name, value) in headers {
        let name = name.as_str();
        if let Some(rest) = name.strip_prefix("x-ratelimit-") {
            let Ok(value) = value.to_str() else { continue };
            match rest {
                "remaining-requests" => status.remaining_requests = parse_count(value),
                "remaining-tokens" => status.remaining_tokens = parse_count(value),
                "reset-requests" => status.requests_reset = parse_go(value),
                "reset-tokens" => status.tokens_reset = parse_go(value),
                _ => {}
            }
        } else if let Some(rest) = name.strip_prefix("anthropic-ratelimit-") {
            let Ok(value) = value.to_str() else { continue };
            match rest {
                "requests-remaining" => status.remaining_requests = parse_count(value),
                "requests-reset" => requests_at = Some(value),
                "tokens-remaining" => {
                    if let Some(n) = parse_count(value) {
                        status.remaining_tokens = Some(n);
                        tokens_general = true;
                    }
                }
                "tokens-reset" => {
                    tokens_at = Some(value);
                    tokens_at_general = true;
                }
                "input-tokens-remaining" | "output-tokens-remaining" if !tokens_general => {
                    if let Some(n) = parse_count(value) {
                        status.remaining_tokens =
                            Some(status.remaining_tokens.map_or(n, |m| m.min(n)));
                    }
                }
                "input-tokens-reset" | "output-tokens-reset" if !tokens_at_general => {
                    // The later of the two: when both windows are full again.
                    tokens_at = match tokens_at {
                        Some(prev) if later(prev, value) => Some(prev),
                        _ => Some(value),
                    };
                }
                _ => {}
            }
        }
    }
    if requests_at.is_some() || tokens_at.is_some() {
        let now = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after::parse_http_date)
            .unwrap_or_else(now);
        let until = |at: &str| {
            let at = retry_after::parse_rfc3339(at)?;
            Some(
                at.duration_since(now)
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_HINT),
            )
        };
        if let Some(at) = requests_at {
            status.requests_reset = until(at);
        }
        if let Some(at) = tokens_at {
            status.tokens_reset = until(at);
        }
    }
    (!status.is_empty()).then_some(status)
}

/// A count of requests or tokens: decimal digits only.
fn parse_count(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A Go duration (`6m0s`), capped at a day.
fn parse_go(value: &str) -> Option<Duration> {
    retry_after::parse_go_duration(value).map(|d| d.min(MAX_HINT))
}

/// Whether RFC 3339 time `a` is later than `b`; an unreadable one is never later.
fn later(a: &str, b: &str) -> bool {
    match (retry_after::parse_rfc3339(a), retry_after::parse_rfc3339(b)) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use std::time::UNIX_EPOCH;

    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: u64 = 1_767_225_600;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn at_new_year() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NEW_YEAR)
    }

    fn parse(pairs: &[(&str, &str)]) -> Option<RateLimitStatus> {
        from_headers_at(&headers(pairs), at_new_year)
    }

    #[test]
    fn openai_headers() {
        let status = parse(&[
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-remaining-requests", "4999"),
            ("x-ratelimit-remaining-tokens", "159976"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ])
        .unwrap();
        assert_eq!(status.remaining_requests, Some(4999));
        assert_eq!(status.remaining_tokens, Some(159_976));
        assert_eq!(status.requests_reset, Some(Duration::from_millis(12)));
        assert_eq!(status.tokens_reset, Some(Duration::from_secs(360)));
    }

    #[test]
    fn go_durations_of_every_shape() {
        for (value, expected) in [
            ("1s", Duration::from_secs(1)),
            ("120ms", Duration::from_millis(120)),
            ("1h2m3.5s", Duration::from_millis(3_723_500)),
            ("0s", Duration::ZERO),
            ("9999h", MAX_HINT),
        ] {
            let status = parse(&[("x-ratelimit-reset-tokens", value)]).unwrap();
            assert_eq!(status.tokens_reset, Some(expected), "{value}");
        }
    }

    #[test]
    fn anthropic_headers_read_against_the_date_header() {
        let status = from_headers_at(
            &headers(&[
                ("date", "Thu, 01 Jan 2026 00:00:10 GMT"),
                ("anthropic-ratelimit-requests-limit", "1000"),
                ("anthropic-ratelimit-requests-remaining", "999"),
                ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:12Z"),
                ("anthropic-ratelimit-tokens-remaining", "96000"),
                ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:01:10Z"),
                ("anthropic-ratelimit-input-tokens-remaining", "80000"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2026-01-01T00:05:00Z",
                ),
            ]),
            // The system clock is far off; the answer's own date is used.
            || UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(status.remaining_requests, Some(999));
        assert_eq!(status.remaining_tokens, Some(96_000));
        assert_eq!(status.requests_reset, Some(Duration::from_secs(2)));
        assert_eq!(status.tokens_reset, Some(Duration::from_secs(60)));
    }

    #[test]
    fn anthropic_input_and_output_windows_stand_in_for_tokens() {
        let status = parse(&[
            ("anthropic-ratelimit-input-tokens-remaining", "80000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-01-01T00:00:05Z",
            ),
            ("anthropic-ratelimit-output-tokens-remaining", "1500"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-01-01T00:00:30Z",
            ),
        ])
        .unwrap();
        assert_eq!(status.remaining_tokens, Some(1500));
        assert_eq!(status.tokens_reset, Some(Duration::from_secs(30)));
        assert_eq!(status.remaining_requests, None);
        // Without a date header, the given clock (the system's in production) is used.
        assert_eq!(status.requests_reset, None);
    }

    #[test]
    fn anthropic_resets_are_clamped_and_capped() {
        let status = parse(&[
            ("anthropic-ratelimit-requests-reset", "2025-12-31T23:00:00Z"),
            ("anthropic-ratelimit-tokens-reset", "2030-01-01T00:00:00Z"),
        ])
        .unwrap();
        assert_eq!(status.requests_reset, Some(Duration::ZERO));
        assert_eq!(status.tokens_reset, Some(MAX_HINT));
    }

    #[test]
    fn malformed_values_are_ignored() {
        assert_eq!(
            parse(&[
                ("x-ratelimit-remaining-requests", "-1"),
                ("x-ratelimit-remaining-tokens", "lots"),
                ("x-ratelimit-reset-requests", "soon"),
                ("x-ratelimit-reset-tokens", "6q"),
                ("anthropic-ratelimit-requests-remaining", "1e3"),
                ("anthropic-ratelimit-requests-reset", "tomorrow"),
                ("anthropic-ratelimit-tokens-remaining", ""),
                ("anthropic-ratelimit-tokens-reset", "2026-13-01T00:00:00Z"),
                (
                    "anthropic-ratelimit-input-tokens-remaining",
                    "99999999999999999999999"
                ),
            ]),
            None
        );
        let mut map = headers(&[("x-ratelimit-remaining-tokens", "10")]);
        map.append(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let status = from_headers_at(&map, at_new_year).unwrap();
        assert_eq!(status.remaining_tokens, Some(10));
        assert_eq!(status.remaining_requests, None);
    }

    #[test]
    fn answers_without_rate_limit_headers_have_none() {
        assert_eq!(parse(&[]), None);
        assert_eq!(
            parse(&[
                ("content-type", "application/json"),
                ("x-request-id", "req_1"),
                ("retry-after", "3"),
                ("x-ratelimit", "5"),
            ]),
            None
        );
    }
}
