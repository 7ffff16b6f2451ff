//! When to send a failed request again to the same target, and how long to wait first.
//!
//! Retries are the most dangerous thing a client library does. When a provider starts failing
//! because it is overloaded, every client that retries at once multiplies the load that made it fail,
//! and a brief hiccup becomes an outage (a *retry storm*). This policy keeps retries bounded and spread
//! out:
//!
//! - only failures that can succeed on retry are retried (rate limits, overload, 5xx, timeouts,
//!   connection errors, truncated streams; see [`Error::is_retryable`]); a bad request, a failed
//!   login, a missing model or an undecodable answer is never sent again, unless the provider
//!   says otherwise with `x-should-retry: true` (and `x-should-retry: false` forbids any retry);
//! - retries are capped per target **and** across the whole request, so a router nested inside
//!   another router, or a route with many targets, cannot multiply them;
//! - without a server hint, waits grow exponentially with *full jitter*, so clients that failed
//!   together do not come back together;
//! - a server's `Retry-After` is honoured exactly, but a wait longer than
//!   [`RetryPolicy::max_retry_after`] is not waited for: the target counts as failed and the router
//!   falls back to the next one;
//! - no retry is started that could not begin before the request's deadline.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`max_retries`](RetryPolicy::with_max_retries) per target | 2 (so up to 3 attempts) |
//! | [`max_total_retries`](RetryPolicy::with_max_total_retries) per request | 4 |
//! | [`base_delay`](RetryPolicy::with_base_delay) | 500 ms |
//! | [`max_delay`](RetryPolicy::with_max_delay) | 8 s |
//! | [`max_retry_after`](RetryPolicy::with_max_retry_after) | 60 s |

use tokio::time::{Duration, Instant};

use super::backoff::backoff_delay;
use super::clock::saturating_add;
use crate::Error;

/// How a router retries a failed attempt on the same target.
///
/// Retries are bounded per target and per request, so that clients hammering a struggling provider
/// cannot turn its hiccup into an outage (a retry storm). Only failures that can succeed on retry are
/// retried ([`Error::is_retryable`]); a server's `Retry-After` is honoured exactly up to
/// [`max_retry_after`](Self::max_retry_after), beyond which the target counts as failed and the
/// request falls back; otherwise waits grow exponentially with full jitter; and no retry is started
/// that could not begin before the request's deadline.
///
/// Built from [`RetryPolicy::default()`] (or [`RetryPolicy::none()`]) and adjusted with the `with_*`
/// methods, which never fail; [`RetryPolicy::validate`] reports settings that cannot work, and the
/// router's `build()` calls it.
///
/// # Defaults
///
/// Two retries per target (three attempts), four retries per request, backoff from 500 ms up to
/// 8 s, server-requested waits honoured up to 60 s.
///
/// ```
/// use std::time::Duration;
/// use modelgate::router::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_retries(3)
///     .with_base_delay(Duration::from_millis(200));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    max_total_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Two retries per target, four per request, 500 ms base delay, 8 s cap, 60 s longest
    /// `Retry-After` honoured.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            max_total_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries: every failure goes straight to fallback (or to the caller).
    ///
    /// The delay settings keep their defaults, so raising the retry counts later gives a working
    /// policy.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            max_total_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// How many times one target may be retried after its first attempt failed (default 2).
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// How many retries one request may make in total, over all its targets (default 4).
    ///
    /// This bounds the work one request can cause however many targets a route has, and however
    /// routers are nested.
    #[must_use]
    pub fn with_max_total_retries(mut self, max_total_retries: u32) -> Self {
        self.max_total_retries = max_total_retries;
        self
    }

    /// The ceiling of the first backoff wait, doubled for each further retry (default 500 ms).
    ///
    /// Zero retries at once, which only makes sense in tests.
    #[must_use]
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// The largest backoff wait, whatever the retry number (default 8 s).
    ///
    /// It does not limit a server-requested `Retry-After`; see
    /// [`with_max_retry_after`](Self::with_max_retry_after) for that.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The longest server-requested wait (`Retry-After`) the router will sit through (default 60 s).
    ///
    /// When a provider asks for a longer wait, the target is not retried: it counts as failed, so the
    /// request falls back to the next target at once, and the target rests until the requested time
    /// (at most the router's `max_rest`).
    #[must_use]
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Retries allowed per target after its first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Retries allowed per request, over all targets.
    pub fn max_total_retries(&self) -> u32 {
        self.max_total_retries
    }

    /// The ceiling of the first backoff wait.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The largest backoff wait.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The longest server-requested wait that is honoured.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Checks that the policy can work.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Config`](crate::ErrorKind::Config) error when `base_delay` is longer than
    /// `max_delay` (the exponential growth could never start).
    pub fn validate(&self) -> Result<(), Error> {
        if self.base_delay > self.max_delay {
            return Err(Error::config(format!(
                "retry policy: base_delay ({:?}) is longer than max_delay ({:?})",
                self.base_delay, self.max_delay
            )));
        }
        Ok(())
    }

    /// Whether to retry the attempt that failed with `err`, and after how long.
    ///
    /// `retries_of_target` counts the retries already made on this target (0 after its first
    /// attempt failed) and `retries_total` those made by the whole request. The wait is the error's
    /// `Retry-After` when it has one, exactly, otherwise a jittered exponential backoff. A retry is
    /// only granted if it would start strictly before `deadline`.
    pub(crate) fn decide(
        &self,
        err: &Error,
        retries_of_target: u32,
        retries_total: u32,
        now: Instant,
        deadline: Option<Instant>,
        rng: &mut fastrand::Rng,
    ) -> RetryDecision {
        if !err.is_retryable() {
            return RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        }
        if retries_of_target >= self.max_retries {
            return RetryDecision::GiveUp(GiveUpReason::TargetRetriesExhausted);
        }
        if retries_total >= self.max_total_retries {
            return RetryDecision::GiveUp(GiveUpReason::TotalRetriesExhausted);
        }
        let wait = match err.retry_after() {
            Some(requested) if requested > self.max_retry_after => {
                return RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong(requested));
            }
            Some(requested) => requested,
            None => backoff_delay(retries_of_target, self.base_delay, self.max_delay, rng),
        };
        if let Some(deadline) = deadline {
            // An overflowing sum is past any deadline.
            let starts_in_time = now.checked_add(wait).is_some_and(|at| at < deadline);
            if !starts_in_time {
                return RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose);
            }
        }
        RetryDecision::RetryAfter(wait)
    }

    /// The latest instant worth waiting for a resting target: the request's `deadline`, or, when the
    /// request has none, `now` plus [`max_retry_after`](Self::max_retry_after).
    ///
    /// This is the bound to pass to the rest chooser, so that a target resting for an hour is never
    /// waited for.
    pub(crate) fn wait_limit(&self, now: Instant, deadline: Option<Instant>) -> Instant {
        let limit = saturating_add(now, self.max_retry_after);
        deadline.map_or(limit, |d| d.min(limit))
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Send the request to the same target again after this wait.
    RetryAfter(Duration),
    /// Do not retry this target; fall back or fail, as [`Error::should_fallback`] says.
    GiveUp(GiveUpReason),
}

/// Why a retry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    /// The error cannot succeed on retry (bad request, auth, not found, decode, `x-should-retry:
    /// false`…).
    NotRetryable,
    /// This target used up its retries.
    TargetRetriesExhausted,
    /// The request used up its retries over all targets.
    TotalRetriesExhausted,
    /// The server asked for a longer wait than `max_retry_after`; the target should rest until then.
    RetryAfterTooLong(Duration),
    /// The wait would end at or after the request's deadline.
    DeadlineTooClose,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;

    fn err(kind: ErrorKind, status: u16) -> Error {
        Error::new(kind, "test").with_status(status)
    }

    fn rng() -> fastrand::Rng {
        fastrand::Rng::with_seed(42)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries(), 2);
        assert_eq!(p.max_total_retries(), 4);
        assert_eq!(p.base_delay(), ms(500));
        assert_eq!(p.max_delay(), Duration::from_secs(8));
        assert_eq!(p.max_retry_after(), Duration::from_secs(60));
        assert!(p.validate().is_ok());
        assert!(RetryPolicy::none().validate().is_ok());
    }

    #[test]
    fn caller_errors_are_never_retried() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        for e in [
            err(ErrorKind::InvalidRequest, 400),
            err(ErrorKind::Auth, 401),
            err(ErrorKind::Auth, 403),
            err(ErrorKind::NotFound, 404),
            err(ErrorKind::ContextLength, 400),
            Error::new(ErrorKind::Decode, "bad json"),
            err(ErrorKind::QuotaExceeded, 429),
        ] {
            assert_eq!(
                p.decide(&e, 0, 0, now, None, &mut rng()),
                RetryDecision::GiveUp(GiveUpReason::NotRetryable),
                "{e}"
            );
        }
    }

    #[test]
    fn transient_errors_are_retried_with_bounded_backoff() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        for e in [
            err(ErrorKind::RateLimited, 429),
            err(ErrorKind::Overloaded, 529),
            err(ErrorKind::Server, 500),
            Error::new(ErrorKind::Timeout, "slow"),
            Error::new(ErrorKind::Network, "reset"),
            Error::new(ErrorKind::StreamTruncated, "cut"),
        ] {
            match p.decide(&e, 1, 1, now, None, &mut rng()) {
                RetryDecision::RetryAfter(wait) => assert!(wait <= ms(1000), "{e}: {wait:?}"),
                other => panic!("{e}: {other:?}"),
            }
        }
    }

    #[test]
    fn provider_saying_do_not_retry_wins() {
        let e = err(ErrorKind::Server, 500).with_should_retry(Some(false));
        let d = RetryPolicy::default().decide(&e, 0, 0, Instant::now(), None, &mut rng());
        assert_eq!(d, RetryDecision::GiveUp(GiveUpReason::NotRetryable));
    }

    #[test]
    fn retry_after_is_honoured_to_the_millisecond() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        for wait in [ms(0), ms(1), ms(1234), ms(59_999), Duration::from_secs(60)] {
            let e = err(ErrorKind::RateLimited, 429).with_retry_after(Some(wait));
            assert_eq!(
                p.decide(&e, 0, 0, now, None, &mut rng()),
                RetryDecision::RetryAfter(wait)
            );
        }
    }

    #[test]
    fn retry_after_beyond_the_limit_gives_up() {
        let p = RetryPolicy::default().with_max_retry_after(Duration::from_secs(10));
        let e = err(ErrorKind::RateLimited, 429).with_retry_after(Some(ms(10_001)));
        assert_eq!(
            p.decide(&e, 0, 0, Instant::now(), None, &mut rng()),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong(ms(10_001)))
        );
    }

    #[test]
    fn retry_after_past_the_deadline_gives_up() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        let e = err(ErrorKind::RateLimited, 429).with_retry_after(Some(ms(2_000)));
        let decide = |deadline| p.decide(&e, 0, 0, now, Some(deadline), &mut rng());
        assert_eq!(
            decide(now + ms(1_999)),
            RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
        );
        // A retry that would start exactly at the deadline could do nothing.
        assert_eq!(
            decide(now + ms(2_000)),
            RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
        );
        assert_eq!(
            decide(now + ms(2_001)),
            RetryDecision::RetryAfter(ms(2_000))
        );
    }

    #[test]
    fn per_target_cap() {
        let p = RetryPolicy::default().with_max_retries(2);
        let e = err(ErrorKind::Server, 500);
        let now = Instant::now();
        assert!(matches!(
            p.decide(&e, 1, 1, now, None, &mut rng()),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            p.decide(&e, 2, 2, now, None, &mut rng()),
            RetryDecision::GiveUp(GiveUpReason::TargetRetriesExhausted)
        );
    }

    #[test]
    fn total_cap_across_targets() {
        let p = RetryPolicy::default()
            .with_max_retries(2)
            .with_max_total_retries(3);
        let e = err(ErrorKind::Overloaded, 503);
        let now = Instant::now();
        // A fresh target, but the request already retried three times elsewhere.
        assert_eq!(
            p.decide(&e, 0, 3, now, None, &mut rng()),
            RetryDecision::GiveUp(GiveUpReason::TotalRetriesExhausted)
        );
        assert!(matches!(
            p.decide(&e, 0, 2, now, None, &mut rng()),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn none_never_retries() {
        let e = err(ErrorKind::Server, 500);
        assert_eq!(
            RetryPolicy::none().decide(&e, 0, 0, Instant::now(), None, &mut rng()),
            RetryDecision::GiveUp(GiveUpReason::TargetRetriesExhausted)
        );
    }

    #[test]
    fn backoff_grows_with_the_target_retry_count() {
        let p = RetryPolicy::default()
            .with_max_retries(10)
            .with_max_total_retries(10);
        let e = err(ErrorKind::Server, 500);
        let now = Instant::now();
        let mut rng = rng();
        let mut max_seen = [Duration::ZERO; 6];
        for _ in 0..200 {
            for (n, seen) in max_seen.iter_mut().enumerate() {
                let RetryDecision::RetryAfter(wait) =
                    p.decide(&e, n as u32, 0, now, None, &mut rng)
                else {
                    panic!("should retry");
                };
                assert!(wait <= (ms(500) * (1 << n)).min(Duration::from_secs(8)));
                *seen = (*seen).max(wait);
            }
        }
        assert!(max_seen[0] > ms(400) && max_seen[3] > Duration::from_secs(3));
        assert!(max_seen[5] > Duration::from_secs(7));
    }

    #[test]
    fn validate_rejects_base_above_max() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_secs(10))
            .with_max_delay(Duration::from_secs(1));
        assert_eq!(p.validate().unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn wait_limit_is_the_earlier_of_deadline_and_max_retry_after() {
        let p = RetryPolicy::default();
        let now = Instant::now();
        assert_eq!(p.wait_limit(now, None), now + Duration::from_secs(60));
        assert_eq!(p.wait_limit(now, Some(now + ms(5))), now + ms(5));
        let late = now + Duration::from_secs(3600);
        assert_eq!(p.wait_limit(now, Some(late)), now + Duration::from_secs(60));
    }

    proptest! {
        #[test]
        fn a_granted_retry_always_starts_before_the_deadline(
            seed in any::<u64>(),
            retries in 0u32..2,
            remaining_ms in 0u64..20_000,
            retry_after_ms in proptest::option::of(0u64..120_000),
        ) {
            let p = RetryPolicy::default();
            let now = Instant::now();
            let deadline = now + ms(remaining_ms);
            let e = err(ErrorKind::RateLimited, 429).with_retry_after(retry_after_ms.map(ms));
            let mut rng = fastrand::Rng::with_seed(seed);
            match p.decide(&e, retries, retries, now, Some(deadline), &mut rng) {
                RetryDecision::RetryAfter(wait) => {
                    prop_assert!(now + wait < deadline);
                    if let Some(ra) = retry_after_ms {
                        prop_assert_eq!(wait, ms(ra));
                    }
                }
                RetryDecision::GiveUp(reason) => prop_assert!(matches!(
                    reason,
                    GiveUpReason::DeadlineTooClose | GiveUpReason::RetryAfterTooLong(_)
                )),
            }
        }
    }
}
