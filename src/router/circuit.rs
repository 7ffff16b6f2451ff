//! Circuit breaking: stop sending requests to a target that keeps failing.
//!
//! When a provider is down, every request sent to it waits for a timeout or an error before falling
//! back, and adds load to a service that is trying to recover. A circuit breaker watches the outcomes
//! of recent requests to each target and, once too many of them failed, *opens*: the target is
//! skipped at once for a cool-down. After the cool-down one *probe* request is let through
//! (*half-open*); if it succeeds the circuit closes, if it fails the circuit opens again.
//!
//! Only failures that say the provider is unhealthy count ([`Error::is_provider_health_failure`]:
//! overload, 5xx, timeouts, connection errors, truncated streams). A caller's bad request, an auth
//! failure, a rate limit or an exhausted quota says nothing about the provider's health and counts
//! neither as a failure nor as a success.
//!
//! Outcomes are kept in a rolling window of [`BUCKETS`] time buckets, so old outcomes age out: an
//! outcome stops counting between `window·(BUCKETS-1)/BUCKETS` and `window` after it was recorded.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`failure_rate_threshold`](CircuitBreaker::with_failure_rate_threshold) | 0.5 |
//! | [`min_requests`](CircuitBreaker::with_min_requests) in the window | 10 |
//! | [`window`](CircuitBreaker::with_window) | 30 s |
//! | [`cool_down`](CircuitBreaker::with_cool_down) | 15 s |

use tokio::time::{Duration, Instant};

use super::clock::saturating_add;
use crate::Error;

/// How many time buckets the rolling window is cut into.
pub(crate) const BUCKETS: usize = 10;

/// When a target's circuit opens, and for how long.
///
/// Every target of a router gets its own circuit with these settings. The circuit opens when, over
/// the last [`window`](Self::window), at least [`min_requests`](Self::min_requests) requests were
/// counted and the share of provider-health failures among them (overload, 5xx, timeouts, connection
/// errors, truncated streams) reached
/// [`failure_rate_threshold`](Self::failure_rate_threshold). An open circuit rejects requests for
/// [`cool_down`](Self::cool_down), then lets one probe through: its success closes the circuit, its
/// failure opens it again. Caller errors (400, 401, 404…), rate limits and quotas never count.
///
/// The `with_*` methods never fail; [`CircuitBreaker::validate`] reports impossible settings, and the
/// router's `build()` calls it.
///
/// # Defaults
///
/// Opens at a 50 % failure rate over at least 10 requests in a 30 s window; cools down for 15 s.
///
/// ```
/// use std::time::Duration;
/// use modelgate::router::CircuitBreaker;
///
/// let breaker = CircuitBreaker::default()
///     .with_failure_rate_threshold(0.25)
///     .with_cool_down(Duration::from_secs(30));
/// assert!(breaker.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreaker {
    failure_rate_threshold: f64,
    min_requests: u32,
    window: Duration,
    cool_down: Duration,
}

impl Default for CircuitBreaker {
    /// A 50 % failure rate over at least 10 requests in 30 s opens the circuit for 15 s.
    fn default() -> Self {
        CircuitBreaker {
            failure_rate_threshold: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            cool_down: Duration::from_secs(15),
        }
    }
}

impl CircuitBreaker {
    /// The share of failed requests, in `(0, 1]`, at which the circuit opens (default 0.5).
    ///
    /// The circuit opens when `failures / (failures + successes) >= threshold`.
    #[must_use]
    pub fn with_failure_rate_threshold(mut self, threshold: f64) -> Self {
        self.failure_rate_threshold = threshold;
        self
    }

    /// How many counted requests the window must hold before the circuit may open (default 10, at
    /// least 1), so that two failures out of three requests do not cut off a target.
    #[must_use]
    pub fn with_min_requests(mut self, min_requests: u32) -> Self {
        self.min_requests = min_requests;
        self
    }

    /// How far back outcomes are remembered (default 30 s, must not be zero).
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long an open circuit rejects requests before letting a probe through (default 15 s, must
    /// not be zero).
    #[must_use]
    pub fn with_cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// The failure rate at which the circuit opens.
    pub fn failure_rate_threshold(&self) -> f64 {
        self.failure_rate_threshold
    }

    /// The number of counted requests needed before the circuit may open.
    pub fn min_requests(&self) -> u32 {
        self.min_requests
    }

    /// The span of the rolling window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long an open circuit rejects requests.
    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    /// Checks that the settings can work.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Config`](crate::ErrorKind::Config) error when the threshold is not in
    /// `(0, 1]` (or is NaN), `min_requests` is 0, or the window or cool-down is zero.
    pub fn validate(&self) -> Result<(), Error> {
        let t = self.failure_rate_threshold;
        if !(t > 0.0 && t <= 1.0) {
            return Err(Error::config(format!(
                "circuit breaker: failure_rate_threshold must be in (0, 1], got {t}"
            )));
        }
        if self.min_requests == 0 {
            return Err(Error::config(
                "circuit breaker: min_requests must be at least 1",
            ));
        }
        if self.window.is_zero() {
            return Err(Error::config("circuit breaker: window must not be zero"));
        }
        if self.cool_down.is_zero() {
            return Err(Error::config("circuit breaker: cool_down must not be zero"));
        }
        Ok(())
    }
}

/// The state of one target's circuit, as reported to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitStatus {
    /// Requests flow normally.
    Closed,
    /// Too many recent failures: requests are rejected until the cool-down ends.
    Open,
    /// The cool-down ended: one probe request is (or may be) in flight to test the target.
    HalfOpen,
}

/// How one finished attempt counts for the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The target answered.
    Success,
    /// The target failed in a way that says it is unhealthy.
    HealthFailure,
    /// Anything else: caller errors, rate limits, quotas, a cancelled attempt. Counts as nothing.
    Other,
}

impl Outcome {
    /// How a failed attempt's error counts: [`Outcome::HealthFailure`] if
    /// [`Error::is_provider_health_failure`], [`Outcome::Other`] otherwise.
    pub(crate) fn of_error(err: &Error) -> Outcome {
        if err.is_provider_health_failure() {
            Outcome::HealthFailure
        } else {
            Outcome::Other
        }
    }
}

/// How a recorded outcome changed a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// It opened, cooling down until then.
    Opened(Instant),
    /// Its probe succeeded: it closed.
    Closed,
    /// Its probe ended without deciding.
    ProbeAbandoned,
}

/// Names the state a request was admitted in, so that its outcome only counts for that state.
///
/// A call admitted while the circuit was closed may end long after it opened and half-opened (a
/// stream, a slow answer); only the probe's outcome may decide a half-open circuit, and outcomes
/// from before the circuit opened must not count in the window that follows its closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    epoch: u64,
}

/// The circuit's answer to "may I send a request to this target now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// The circuit is closed: send it, and record its outcome with this ticket.
    Allowed(Ticket),
    /// The circuit is half-open and this request is its one probe: send it, and record its outcome
    /// with this ticket (record [`Outcome::Other`] if it is cancelled, so that another probe may
    /// go).
    Probe(Ticket),
    /// Do not send it; the target may be tried again at `retry_at`.
    Rejected {
        /// When the cool-down ends, or when the probe in flight will be presumed lost.
        retry_at: Instant,
    },
}

#[cfg(test)]
impl Permit {
    /// Whether the request may be sent.
    pub(crate) fn is_allowed(self) -> bool {
        !matches!(self, Permit::Rejected { .. })
    }
}

/// One target's circuit: its mode and the rolling window of recent outcomes.
#[derive(Debug, Clone)]
pub(crate) struct CircuitState {
    config: CircuitBreaker,
    mode: Mode,
    window: Window,
    /// Bumped when the circuit opens, when a probe is let through and on a reset: a [`Ticket`] of
    /// an older epoch is stale and its outcome is ignored.
    epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Closed,
    Open {
        until: Instant,
    },
    /// `probe` is when the probe in flight was let through, if one is.
    HalfOpen {
        probe: Option<Instant>,
    },
}

impl CircuitState {
    /// A closed circuit with an empty window.
    pub(crate) fn new(config: CircuitBreaker) -> Self {
        let window = Window::new(config.window);
        CircuitState {
            config,
            mode: Mode::Closed,
            window,
            epoch: 0,
        }
    }

    fn ticket(&self) -> Ticket {
        Ticket { epoch: self.epoch }
    }

    /// Lets the next caller through as the probe, under a new epoch so that only its outcome
    /// decides.
    fn grant_probe(&mut self, now: Instant) -> Permit {
        self.epoch += 1;
        self.mode = Mode::HalfOpen { probe: Some(now) };
        Permit::Probe(self.ticket())
    }

    /// Closes the circuit and forgets its window, as an operator's reset; outcomes of calls in
    /// flight are stale from now on.
    pub(crate) fn reset(&mut self) {
        self.epoch += 1;
        self.mode = Mode::Closed;
        self.window.clear();
    }

    /// May a request be sent to this target at `now`?
    ///
    /// Closed: yes. Open before the cool-down ends: no, until then. Once the cool-down has ended the
    /// circuit is half-open and exactly one caller gets [`Permit::Probe`]; the others are rejected
    /// while that probe is in flight. A probe that never reports back (its outcome never recorded)
    /// is presumed lost after one cool-down, and the next caller becomes the new probe.
    pub(crate) fn permit(&mut self, now: Instant) -> Permit {
        match self.mode {
            Mode::Closed => Permit::Allowed(self.ticket()),
            Mode::Open { until } if now < until => Permit::Rejected { retry_at: until },
            Mode::HalfOpen {
                probe: Some(started),
            } => {
                let presumed_lost = saturating_add(started, self.config.cool_down);
                if now < presumed_lost {
                    Permit::Rejected {
                        retry_at: presumed_lost,
                    }
                } else {
                    self.grant_probe(now)
                }
            }
            Mode::Open { .. } | Mode::HalfOpen { probe: None } => self.grant_probe(now),
        }
    }

    /// Records how an attempt sent to this target with `ticket` ended.
    ///
    /// An outcome whose ticket is stale (admitted before the circuit last opened, before the
    /// current probe was let through, or before a reset) is ignored. Otherwise: closed, the
    /// outcome enters the window, and a health failure that brings the failure rate to the
    /// threshold (with at least `min_requests` counted) opens the circuit. Half-open (the ticket is
    /// then the probe's): the probe's first outcome decides — success closes the circuit and clears
    /// the window, a health failure opens it for another cool-down, [`Outcome::Other`] frees the
    /// probe slot for another caller. Open: outcomes are ignored.
    pub(crate) fn record(&mut self, now: Instant, ticket: Ticket, outcome: Outcome) {
        if ticket != self.ticket() {
            return;
        }
        match self.mode {
            Mode::Closed => {
                self.window.add(now, outcome);
                if outcome == Outcome::HealthFailure && self.should_open(now) {
                    self.open(now);
                }
            }
            Mode::Open { .. } => {}
            Mode::HalfOpen { .. } => match outcome {
                Outcome::Success => {
                    self.mode = Mode::Closed;
                    self.window.clear();
                }
                Outcome::HealthFailure => self.open(now),
                Outcome::Other => self.mode = Mode::HalfOpen { probe: None },
            },
        }
    }

    /// Records an outcome like [`record`](Self::record) and says how the circuit changed, for a
    /// fleet to hear.
    pub(crate) fn record_change(
        &mut self,
        now: Instant,
        ticket: Ticket,
        outcome: Outcome,
    ) -> Option<Change> {
        let before = self.mode;
        self.record(now, ticket, outcome);
        match (before, self.mode) {
            (Mode::Open { .. }, _) => None,
            (_, Mode::Open { until }) => Some(Change::Opened(until)),
            (Mode::HalfOpen { .. }, Mode::Closed) => Some(Change::Closed),
            (Mode::HalfOpen { probe: Some(_) }, Mode::HalfOpen { probe: None }) => {
                Some(Change::ProbeAbandoned)
            }
            _ => None,
        }
    }

    /// Another process opened the circuit until `until`: it opens here too (a later opening
    /// already in force stays); calls in flight no longer count.
    pub(crate) fn force_open(&mut self, until: Instant) {
        if let Mode::Open { until: current } = self.mode
            && current >= until
        {
            return;
        }
        self.epoch += 1;
        self.mode = Mode::Open { until };
        self.window.clear();
    }

    /// Another process's probe closed the circuit.
    pub(crate) fn force_close(&mut self) {
        if self.mode != Mode::Closed {
            self.epoch += 1;
            self.mode = Mode::Closed;
            self.window.clear();
        }
    }

    /// Another process holds the fleet's probe: wait for its news as if a probe of ours were in
    /// flight (presumed lost after a cool-down). Our own ticket no longer counts.
    pub(crate) fn probe_elsewhere(&mut self, now: Instant) {
        self.epoch += 1;
        self.mode = Mode::HalfOpen { probe: Some(now) };
    }

    /// Another process's probe ended undecided: the next caller may probe.
    pub(crate) fn probe_freed(&mut self) {
        if let Mode::HalfOpen { probe: Some(_) } = self.mode {
            self.mode = Mode::HalfOpen { probe: None };
        }
    }

    /// The cool-down of an open circuit.
    pub(crate) fn cool_down(&self) -> Duration {
        self.config.cool_down
    }

    /// The settings.
    pub(crate) fn config(&self) -> &CircuitBreaker {
        &self.config
    }

    /// The circuit's state at `now`; an open circuit whose cool-down has ended reports half-open.
    pub(crate) fn state(&self, now: Instant) -> CircuitStatus {
        match self.mode {
            Mode::Closed => CircuitStatus::Closed,
            Mode::Open { until } if now < until => CircuitStatus::Open,
            Mode::Open { .. } | Mode::HalfOpen { .. } => CircuitStatus::HalfOpen,
        }
    }

    fn should_open(&self, now: Instant) -> bool {
        let (successes, failures) = self.window.totals(now);
        let counted = successes + failures;
        counted >= u64::from(self.config.min_requests)
            && failures as f64 >= self.config.failure_rate_threshold * counted as f64
    }

    fn open(&mut self, now: Instant) {
        self.epoch += 1;
        self.mode = Mode::Open {
            until: saturating_add(now, self.config.cool_down),
        };
        self.window.clear();
    }
}

/// Success and failure counts over a rolling window of [`BUCKETS`] time buckets.
#[derive(Debug, Clone)]
struct Window {
    /// The span of one bucket, in nanoseconds (at least 1).
    bucket_nanos: u128,
    /// The instant bucket 0 starts at, fixed by the first outcome recorded.
    origin: Option<Instant>,
    /// The latest bucket number seen; time never goes back for the window, so outcomes reported
    /// with a slightly older `now` land in the current bucket.
    latest: u64,
    buckets: [Bucket; BUCKETS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The bucket number (time since origin / bucket span) these counts belong to.
    number: u64,
    successes: u32,
    failures: u32,
}

impl Window {
    fn new(span: Duration) -> Self {
        Window {
            bucket_nanos: (span.as_nanos() / BUCKETS as u128).max(1),
            origin: None,
            latest: 0,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// The bucket number of `now`, never below the latest one seen.
    fn bucket_number(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return self.latest;
        };
        let n = now.saturating_duration_since(origin).as_nanos() / self.bucket_nanos;
        u64::try_from(n).unwrap_or(u64::MAX).max(self.latest)
    }

    fn add(&mut self, now: Instant, outcome: Outcome) {
        if outcome == Outcome::Other {
            return;
        }
        if self.origin.is_none() {
            self.origin = Some(now);
        }
        let number = self.bucket_number(now);
        self.latest = number;
        let bucket = &mut self.buckets[(number % BUCKETS as u64) as usize];
        if bucket.number != number {
            *bucket = Bucket {
                number,
                ..Bucket::default()
            };
        }
        match outcome {
            Outcome::Success => bucket.successes = bucket.successes.saturating_add(1),
            Outcome::HealthFailure => bucket.failures = bucket.failures.saturating_add(1),
            Outcome::Other => {}
        }
    }

    /// (successes, failures) over the buckets still inside the window at `now`.
    fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.bucket_number(now);
        self.buckets
            .iter()
            // Bucket numbers never exceed the latest one, which `current` is at least.
            .filter(|b| current.saturating_sub(b.number) < BUCKETS as u64)
            .fold((0, 0), |(s, f), b| {
                (s + u64::from(b.successes), f + u64::from(b.failures))
            })
    }

    fn clear(&mut self) {
        for b in &mut self.buckets {
            b.successes = 0;
            b.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn state() -> CircuitState {
        CircuitState::new(CircuitBreaker::default())
    }

    fn record_n(c: &mut CircuitState, now: Instant, outcome: Outcome, n: usize) {
        for _ in 0..n {
            c.record(now, c.ticket(), outcome);
        }
    }

    /// Opens a default circuit at `t0` with ten failures.
    fn opened(t0: Instant) -> CircuitState {
        let mut c = state();
        record_n(&mut c, t0, Outcome::HealthFailure, 10);
        assert_eq!(c.state(t0), CircuitStatus::Open);
        c
    }

    #[test]
    fn defaults_validate() {
        let b = CircuitBreaker::default();
        assert_eq!(b.failure_rate_threshold(), 0.5);
        assert_eq!(b.min_requests(), 10);
        assert_eq!(b.window(), secs(30));
        assert_eq!(b.cool_down(), secs(15));
        assert!(b.validate().is_ok());
        assert!(b.with_failure_rate_threshold(1.0).validate().is_ok());
    }

    #[test]
    fn validate_rejects_impossible_settings() {
        let d = CircuitBreaker::default;
        for bad in [
            d().with_failure_rate_threshold(0.0),
            d().with_failure_rate_threshold(-0.5),
            d().with_failure_rate_threshold(1.01),
            d().with_failure_rate_threshold(f64::NAN),
            d().with_min_requests(0),
            d().with_window(Duration::ZERO),
            d().with_cool_down(Duration::ZERO),
        ] {
            let err = bad.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn does_not_open_before_min_requests() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0, Outcome::HealthFailure, 9);
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        assert!(matches!(c.permit(t0), Permit::Allowed(_)));
        c.record(t0, c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0), CircuitStatus::Open);
    }

    #[test]
    fn opens_exactly_at_the_threshold() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0, Outcome::Success, 6);
        record_n(&mut c, t0, Outcome::HealthFailure, 5);
        // 5 of 11 is below one half.
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        let mut c = state();
        record_n(&mut c, t0, Outcome::Success, 5);
        record_n(&mut c, t0, Outcome::HealthFailure, 4);
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        c.record(t0, c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0), CircuitStatus::Open);
    }

    #[test]
    fn successes_never_open_it() {
        let t0 = Instant::now();
        let mut c = CircuitState::new(CircuitBreaker::default().with_min_requests(1));
        record_n(&mut c, t0, Outcome::Success, 1000);
        assert_eq!(c.state(t0), CircuitStatus::Closed);
    }

    #[test]
    fn rejects_while_open() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let retry_at = t0 + secs(15);
        for dt in [ms(0), secs(1), secs(14), ms(14_999)] {
            assert_eq!(c.permit(t0 + dt), Permit::Rejected { retry_at });
            assert_eq!(c.state(t0 + dt), CircuitStatus::Open);
        }
        assert!(!c.permit(t0).is_allowed());
    }

    #[test]
    fn half_opens_after_cool_down_with_exactly_one_probe() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(15);
        assert_eq!(c.state(t1), CircuitStatus::HalfOpen);
        assert!(matches!(c.permit(t1), Permit::Probe(_)));
        assert!(Permit::Probe(c.ticket()).is_allowed());
        for dt in [ms(0), ms(1), secs(5)] {
            assert_eq!(
                c.permit(t1 + dt),
                Permit::Rejected {
                    retry_at: t1 + secs(15)
                }
            );
        }
        assert_eq!(c.state(t1 + secs(5)), CircuitStatus::HalfOpen);
    }

    #[test]
    fn successful_probe_closes_and_clears_the_window() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(20);
        assert!(matches!(c.permit(t1), Permit::Probe(_)));
        c.record(t1 + secs(2), c.ticket(), Outcome::Success);
        assert_eq!(c.state(t1 + secs(2)), CircuitStatus::Closed);
        assert!(matches!(c.permit(t1 + secs(2)), Permit::Allowed(_)));
        // The ten failures that opened it are forgotten: nine new ones do not reopen it.
        record_n(&mut c, t1 + secs(3), Outcome::HealthFailure, 9);
        assert_eq!(c.state(t1 + secs(3)), CircuitStatus::Closed);
    }

    #[test]
    fn failed_probe_reopens_for_another_cool_down() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(15);
        assert!(matches!(c.permit(t1), Permit::Probe(_)));
        let t2 = t1 + secs(3);
        c.record(t2, c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t2), CircuitStatus::Open);
        assert_eq!(
            c.permit(t2 + secs(14)),
            Permit::Rejected {
                retry_at: t2 + secs(15)
            }
        );
        assert!(matches!(c.permit(t2 + secs(15)), Permit::Probe(_)));
    }

    #[test]
    fn a_probe_that_neither_succeeds_nor_fails_frees_the_slot() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(15);
        assert!(matches!(c.permit(t1), Permit::Probe(_)));
        // Cancelled, or answered with a 429: says nothing about health.
        c.record(t1 + ms(10), c.ticket(), Outcome::Other);
        assert_eq!(c.state(t1 + ms(10)), CircuitStatus::HalfOpen);
        assert!(matches!(c.permit(t1 + ms(20)), Permit::Probe(_)));
        assert!(!c.permit(t1 + ms(30)).is_allowed());
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cool_down() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(15);
        assert!(matches!(c.permit(t1), Permit::Probe(_)));
        assert!(!c.permit(t1 + ms(14_999)).is_allowed());
        assert!(matches!(c.permit(t1 + secs(15)), Permit::Probe(_)));
    }

    #[test]
    fn outcomes_while_open_are_ignored() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        record_n(&mut c, t0 + secs(1), Outcome::Success, 5);
        assert_eq!(c.state(t0 + secs(1)), CircuitStatus::Open);
        assert_eq!(
            c.permit(t0 + secs(1)),
            Permit::Rejected {
                retry_at: t0 + secs(15)
            }
        );
    }

    #[test]
    fn old_failures_age_out_of_the_window() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0, Outcome::HealthFailure, 9);
        // 31 s later the nine failures are gone: one more does not reach min_requests.
        c.record(t0 + secs(31), c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0 + secs(31)), CircuitStatus::Closed);
        record_n(&mut c, t0 + secs(32), Outcome::HealthFailure, 8);
        assert_eq!(c.state(t0 + secs(32)), CircuitStatus::Closed);
        c.record(t0 + secs(33), c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0 + secs(33)), CircuitStatus::Open);
    }

    #[test]
    fn failures_spread_inside_the_window_add_up() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0, Outcome::HealthFailure, 3);
        record_n(&mut c, t0 + secs(12), Outcome::Success, 6);
        record_n(&mut c, t0 + secs(25), Outcome::HealthFailure, 2);
        // 5 failures of 11.
        assert_eq!(c.state(t0 + secs(25)), CircuitStatus::Closed);
        // 6 of 12, counting the three from 26 s ago.
        c.record(t0 + secs(26), c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0 + secs(26)), CircuitStatus::Open);
    }

    #[test]
    fn old_successes_age_out_too() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0, Outcome::Success, 100);
        record_n(&mut c, t0 + secs(40), Outcome::HealthFailure, 10);
        assert_eq!(c.state(t0 + secs(40)), CircuitStatus::Open);
    }

    #[test]
    fn caller_errors_and_rate_limits_never_trip_it() {
        let t0 = Instant::now();
        let mut c = CircuitState::new(CircuitBreaker::default().with_min_requests(1));
        let errors = [
            Error::new(ErrorKind::InvalidRequest, "bad").with_status(400),
            Error::new(ErrorKind::Auth, "who").with_status(401),
            Error::new(ErrorKind::Auth, "no").with_status(403),
            Error::new(ErrorKind::NotFound, "gone").with_status(404),
            Error::new(ErrorKind::ContextLength, "long").with_status(400),
            Error::new(ErrorKind::RateLimited, "slow").with_status(429),
            Error::new(ErrorKind::QuotaExceeded, "broke").with_status(429),
            Error::new(ErrorKind::ContentFilter, "no"),
        ];
        for _ in 0..100 {
            for e in &errors {
                assert_eq!(Outcome::of_error(e), Outcome::Other, "{e}");
                c.record(t0, c.ticket(), Outcome::of_error(e));
            }
        }
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        // Nor do they dilute real failures.
        c.record(t0, c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0), CircuitStatus::Open);
    }

    #[test]
    fn health_failures_are_classified_from_the_error() {
        for kind in [
            ErrorKind::Overloaded,
            ErrorKind::Server,
            ErrorKind::Timeout,
            ErrorKind::Network,
            ErrorKind::StreamTruncated,
        ] {
            assert_eq!(
                Outcome::of_error(&Error::new(kind, "x")),
                Outcome::HealthFailure
            );
        }
    }

    #[test]
    fn outcomes_reported_out_of_order_do_not_panic() {
        let t0 = Instant::now();
        let mut c = state();
        record_n(&mut c, t0 + secs(10), Outcome::Success, 10);
        record_n(&mut c, t0, Outcome::HealthFailure, 9);
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        c.record(t0 + secs(5), c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0 + secs(10)), CircuitStatus::Open);
    }

    #[test]
    fn huge_cool_down_does_not_overflow() {
        let t0 = Instant::now();
        let mut c = CircuitState::new(
            CircuitBreaker::default()
                .with_cool_down(Duration::MAX)
                .with_window(Duration::MAX)
                .with_min_requests(1),
        );
        c.record(t0, c.ticket(), Outcome::HealthFailure);
        assert_eq!(c.state(t0 + secs(86_400)), CircuitStatus::Open);
    }

    #[test]
    fn only_the_probe_decides_a_half_open_circuit() {
        let t0 = Instant::now();
        let mut c = state();
        // Two calls admitted while closed, still in flight when the circuit opens.
        let Permit::Allowed(early) = c.permit(t0) else {
            panic!("closed")
        };
        let Permit::Allowed(early_too) = c.permit(t0) else {
            panic!("closed")
        };
        record_n(&mut c, t0, Outcome::HealthFailure, 10);
        let t1 = t0 + secs(15);
        let Permit::Probe(probe) = c.permit(t1) else {
            panic!("half-open")
        };
        // Their outcomes arrive while the probe is in flight: neither closes nor reopens it, nor
        // frees the probe's slot.
        c.record(t1 + ms(1), early, Outcome::HealthFailure);
        assert_eq!(c.state(t1 + ms(1)), CircuitStatus::HalfOpen);
        c.record(t1 + ms(2), early_too, Outcome::Success);
        assert_eq!(c.state(t1 + ms(2)), CircuitStatus::HalfOpen);
        c.record(t1 + ms(3), early, Outcome::Other);
        assert!(!c.permit(t1 + ms(3)).is_allowed());
        // The probe's own outcome does.
        c.record(t1 + ms(4), probe, Outcome::Success);
        assert_eq!(c.state(t1 + ms(4)), CircuitStatus::Closed);
        // And the old calls never count in the new window.
        let mut c2 = CircuitState::new(CircuitBreaker::default().with_min_requests(1));
        let Permit::Allowed(old) = c2.permit(t0) else {
            panic!("closed")
        };
        c2.record(t0, c2.ticket(), Outcome::HealthFailure);
        let Permit::Probe(probe) = c2.permit(t1) else {
            panic!("half-open")
        };
        c2.record(t1, probe, Outcome::Success);
        c2.record(t1, old, Outcome::HealthFailure);
        assert_eq!(c2.state(t1), CircuitStatus::Closed);
    }

    #[test]
    fn a_probe_presumed_lost_no_longer_decides() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        let t1 = t0 + secs(15);
        let Permit::Probe(lost) = c.permit(t1) else {
            panic!("half-open")
        };
        let t2 = t1 + secs(15);
        let Permit::Probe(second) = c.permit(t2) else {
            panic!("a new probe")
        };
        c.record(t2, lost, Outcome::HealthFailure);
        assert_eq!(c.state(t2), CircuitStatus::HalfOpen);
        c.record(t2, second, Outcome::HealthFailure);
        assert_eq!(c.state(t2), CircuitStatus::Open);
    }

    #[test]
    fn a_reset_closes_and_forgets() {
        let t0 = Instant::now();
        let mut c = opened(t0);
        c.reset();
        assert_eq!(c.state(t0), CircuitStatus::Closed);
        assert!(matches!(c.permit(t0), Permit::Allowed(_)));
        // Nine failures after the reset do not reopen it: the old ten are forgotten.
        record_n(&mut c, t0, Outcome::HealthFailure, 9);
        assert_eq!(c.state(t0), CircuitStatus::Closed);
    }
}
