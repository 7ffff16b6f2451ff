//! Hedging: when a request is slow, race a second target instead of waiting.
//!
//! Most slow LLM requests are slow because of the one replica or queue they landed on, not because
//! of the request. Sending a copy to the next target once the first has taken longer than almost all
//! requests do (say its 95th percentile latency) cuts the tail without much extra load: only the
//! slowest few percent are ever sent twice, and the loser is cancelled.
//!
//! Hedging doubles the cost of the requests it hedges, and if a provider slows down for everyone, a
//! policy of "hedge whatever is slow" would double the load exactly when the provider can least
//! take it. So hedges are paid from a budget that earns a fraction of a hedge per request (10 % by
//! default), and an adaptive policy does not hedge at all until it has seen enough requests to know
//! what slow means.
//!
//! # Defaults
//!
//! | setting | default |
//! |---|---|
//! | [`percentile`](HedgePolicy::adaptive) (adaptive) | 0.95 |
//! | [`min_data_points`](HedgePolicy::with_min_data_points) (adaptive) | 20 |
//! | [`min_delay`](HedgePolicy::with_min_delay) (adaptive) | 50 ms |
//! | [`max_hedged_fraction`](HedgePolicy::with_max_hedged_fraction) | 0.10 |
//! | [`max_hedges`](HedgePolicy::with_max_hedges) per request | 1 |

use tokio::time::{Duration, Instant};

use super::stats::LatencyStats;
use crate::Error;

/// When a router sends a hedge (a copy of a slow request to its next target).
///
/// [`HedgePolicy::fixed`] hedges after a set delay; [`HedgePolicy::adaptive`] hedges after the
/// target's observed latency percentile, and not at all until it has seen
/// [`min_data_points`](Self::min_data_points) requests. Hedges happen only before the first delta
/// of a stream, are limited per request by [`max_hedges`](Self::max_hedges), and overall by
/// [`max_hedged_fraction`](Self::max_hedged_fraction) of requests, so that a slow provider does not
/// get twice the load when it can least take it. The losing attempt is cancelled.
///
/// The `with_*` methods never fail; [`HedgePolicy::validate`] reports impossible settings, and the
/// router's `build()` calls it.
///
/// # Defaults
///
/// [`HedgePolicy::default()`] is `adaptive(0.95)`: hedge after the 95th percentile latency, floored
/// at 50 ms, once 20 requests were seen; at most 10 % of requests hedged, one hedge per request.
///
/// ```
/// use std::time::Duration;
/// use modelgate::router::HedgePolicy;
///
/// let adaptive = HedgePolicy::adaptive(0.9).with_min_delay(Duration::from_millis(200));
/// let fixed = HedgePolicy::fixed(Duration::from_secs(2)).with_max_hedged_fraction(0.05);
/// assert!(adaptive.validate().is_ok() && fixed.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HedgePolicy {
    delay: Delay,
    min_data_points: u32,
    min_delay: Duration,
    max_hedged_fraction: f64,
    max_hedges: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Delay {
    Fixed(Duration),
    Adaptive { percentile: f64 },
}

impl Default for HedgePolicy {
    /// `HedgePolicy::adaptive(0.95)`.
    fn default() -> Self {
        HedgePolicy::adaptive(0.95)
    }
}

impl HedgePolicy {
    fn with_delay(delay: Delay) -> Self {
        HedgePolicy {
            delay,
            min_data_points: 20,
            min_delay: Duration::from_millis(50),
            max_hedged_fraction: 0.10,
            max_hedges: 1,
        }
    }

    /// Hedges every request still unanswered after `delay` (within the hedging budget).
    ///
    /// A zero delay races two targets from the start for the budgeted share of requests.
    pub fn fixed(delay: Duration) -> Self {
        Self::with_delay(Delay::Fixed(delay))
    }

    /// Hedges a request once it has waited longer than the `percentile` (in `(0, 1]`, usually 0.95)
    /// of the target's recent latencies: time to first delta for streams, total latency otherwise.
    ///
    /// Never hedges before [`min_data_points`](Self::min_data_points) latencies were observed, and
    /// never sooner than [`min_delay`](Self::min_delay).
    pub fn adaptive(percentile: f64) -> Self {
        Self::with_delay(Delay::Adaptive { percentile })
    }

    /// For an adaptive policy, how many recent latencies a target needs before it is hedged
    /// (default 20, at least 1). Ignored by a fixed policy.
    #[must_use]
    pub fn with_min_data_points(mut self, min_data_points: u32) -> Self {
        self.min_data_points = min_data_points;
        self
    }

    /// For an adaptive policy, the shortest hedge delay, whatever the percentile says (default
    /// 50 ms). Ignored by a fixed policy.
    #[must_use]
    pub fn with_min_delay(mut self, min_delay: Duration) -> Self {
        self.min_delay = min_delay;
        self
    }

    /// The largest share of requests that may be hedged, in `(0, 1]` (default 0.10).
    ///
    /// Enforced by a budget that earns this fraction of a hedge per request and holds at most 10
    /// hedges, so short bursts are allowed but the long-run share never exceeds it.
    #[must_use]
    pub fn with_max_hedged_fraction(mut self, fraction: f64) -> Self {
        self.max_hedged_fraction = fraction;
        self
    }

    /// How many hedges one request may send, each to the next target (default 1, at least 1).
    #[must_use]
    pub fn with_max_hedges(mut self, max_hedges: u32) -> Self {
        self.max_hedges = max_hedges;
        self
    }

    /// The fixed delay, for a policy made by [`HedgePolicy::fixed`].
    pub fn fixed_delay(&self) -> Option<Duration> {
        match self.delay {
            Delay::Fixed(d) => Some(d),
            Delay::Adaptive { .. } => None,
        }
    }

    /// The latency percentile, for a policy made by [`HedgePolicy::adaptive`].
    pub fn percentile(&self) -> Option<f64> {
        match self.delay {
            Delay::Fixed(_) => None,
            Delay::Adaptive { percentile } => Some(percentile),
        }
    }

    /// Latencies needed before an adaptive policy hedges.
    pub fn min_data_points(&self) -> u32 {
        self.min_data_points
    }

    /// The shortest delay of an adaptive policy.
    pub fn min_delay(&self) -> Duration {
        self.min_delay
    }

    /// The largest share of requests hedged.
    pub fn max_hedged_fraction(&self) -> f64 {
        self.max_hedged_fraction
    }

    /// The most hedges one request may send.
    pub fn max_hedges(&self) -> u32 {
        self.max_hedges
    }

    /// Checks that the settings can work.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Config`](crate::ErrorKind::Config) error when the percentile is not in
    /// `(0, 1]`, `max_hedged_fraction` is not in `(0, 1]` (NaN included), or `min_data_points` or
    /// `max_hedges` is 0.
    pub fn validate(&self) -> Result<(), Error> {
        let in_unit = |x: f64| x > 0.0 && x <= 1.0;
        if let Delay::Adaptive { percentile } = self.delay {
            if !in_unit(percentile) {
                return Err(Error::config(format!(
                    "hedge policy: percentile must be in (0, 1], got {percentile}"
                )));
            }
        }
        if !in_unit(self.max_hedged_fraction) {
            return Err(Error::config(format!(
                "hedge policy: max_hedged_fraction must be in (0, 1], got {}",
                self.max_hedged_fraction
            )));
        }
        if self.min_data_points == 0 {
            return Err(Error::config(
                "hedge policy: min_data_points must be at least 1",
            ));
        }
        if self.max_hedges == 0 {
            return Err(Error::config("hedge policy: max_hedges must be at least 1"));
        }
        Ok(())
    }

    /// How long to wait for the target before hedging, or `None` for no hedging now.
    ///
    /// Fixed: the delay. Adaptive: the configured percentile of `stats` at `now`, at least
    /// `min_delay`; `None` while `stats` holds fewer than `min_data_points` latencies. The caller
    /// passes the target's time-to-first-delta statistics for a stream, its total latency otherwise,
    /// and still needs [`HedgeBudget::try_spend`] when the delay runs out.
    pub(crate) fn hedge_delay(&self, stats: &LatencyStats, now: Instant) -> Option<Duration> {
        match self.delay {
            Delay::Fixed(delay) => Some(delay),
            Delay::Adaptive { percentile } => {
                if stats.count(now) < u64::from(self.min_data_points) {
                    return None;
                }
                stats
                    .percentile_cached(now, percentile)
                    .map(|d| d.max(self.min_delay))
            }
        }
    }
}

/// Budget units per hedge: balances are kept in millionths of a hedge so that they stay exact.
const UNITS_PER_HEDGE: u64 = 1_000_000;
/// The most hedges the budget saves up for a burst.
const MAX_SAVED_HEDGES: u64 = 10;

/// The shared allowance that keeps hedges under `max_hedged_fraction` of requests.
///
/// A token bucket: every request earns `max_hedged_fraction` of a hedge, every hedge spends one, at
/// most 10 are saved up. It starts with one hedge in hand, so over `n` requests at most
/// `1 + n·fraction` are hedged.
#[derive(Debug, Clone)]
pub(crate) struct HedgeBudget {
    balance: u64,
    earned_per_request: u64,
}

impl HedgeBudget {
    /// A budget for `policy`, holding one hedge.
    pub(crate) fn new(policy: &HedgePolicy) -> Self {
        let fraction = policy.max_hedged_fraction.clamp(0.0, 1.0);
        // The cast turns a NaN fraction (an unvalidated policy) into 0: it never earns a hedge.
        let earned = (fraction * UNITS_PER_HEDGE as f64).round() as u64;
        HedgeBudget {
            balance: UNITS_PER_HEDGE,
            earned_per_request: earned,
        }
    }

    /// Counts one request (hedged or not), earning its share of a hedge.
    pub(crate) fn on_request(&mut self) {
        self.balance =
            (self.balance + self.earned_per_request).min(MAX_SAVED_HEDGES * UNITS_PER_HEDGE);
    }

    /// Spends one hedge if the budget holds one; `false` means do not hedge.
    pub(crate) fn try_spend(&mut self) -> bool {
        match self.balance.checked_sub(UNITS_PER_HEDGE) {
            Some(rest) => {
                self.balance = rest;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stats_with(now: Instant, latencies: impl IntoIterator<Item = Duration>) -> LatencyStats {
        let mut s = LatencyStats::default();
        for d in latencies {
            s.record(now, d);
        }
        s
    }

    #[test]
    fn defaults() {
        let p = HedgePolicy::default();
        assert_eq!(p.percentile(), Some(0.95));
        assert_eq!(p.fixed_delay(), None);
        assert_eq!(p.min_data_points(), 20);
        assert_eq!(p.min_delay(), ms(50));
        assert_eq!(p.max_hedged_fraction(), 0.10);
        assert_eq!(p.max_hedges(), 1);
        assert!(p.validate().is_ok());
        let f = HedgePolicy::fixed(ms(700));
        assert_eq!(f.fixed_delay(), Some(ms(700)));
        assert_eq!(f.percentile(), None);
        assert!(f.validate().is_ok());
        assert!(HedgePolicy::fixed(Duration::ZERO).validate().is_ok());
    }

    #[test]
    fn validate_rejects_impossible_settings() {
        for bad in [
            HedgePolicy::adaptive(0.0),
            HedgePolicy::adaptive(1.5),
            HedgePolicy::adaptive(f64::NAN),
            HedgePolicy::default().with_max_hedged_fraction(0.0),
            HedgePolicy::default().with_max_hedged_fraction(1.1),
            HedgePolicy::fixed(ms(1)).with_max_hedged_fraction(f64::NAN),
            HedgePolicy::default().with_min_data_points(0),
            HedgePolicy::fixed(ms(1)).with_max_hedges(0),
        ] {
            assert_eq!(
                bad.validate().unwrap_err().kind(),
                ErrorKind::Config,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fixed_delay_needs_no_data() {
        let now = Instant::now();
        let p = HedgePolicy::fixed(ms(1500));
        assert_eq!(p.hedge_delay(&LatencyStats::default(), now), Some(ms(1500)));
        let busy = stats_with(now, (0..100).map(|_| ms(10)));
        // Neither the data nor the floor changes a fixed delay.
        assert_eq!(p.hedge_delay(&busy, now), Some(ms(1500)));
        let p = HedgePolicy::fixed(ms(5));
        assert_eq!(p.hedge_delay(&busy, now), Some(ms(5)));
    }

    #[test]
    fn adaptive_waits_for_min_data_points_then_uses_the_percentile() {
        let now = Instant::now();
        let p = HedgePolicy::adaptive(0.95);
        let mut stats = LatencyStats::default();
        for n in 1..=19 {
            stats.record(now, ms(n * 100));
            assert_eq!(p.hedge_delay(&stats, now), None);
        }
        stats.record(now, ms(2000));
        // p95 of 100, 200, …, 2000 ms is 1900 ms.
        let delay = p.hedge_delay(&stats, now).unwrap();
        assert!(delay.abs_diff(ms(1900)) <= ms(1900) / 50, "{delay:?}");
    }

    #[test]
    fn adaptive_follows_its_own_min_data_points() {
        let now = Instant::now();
        let p = HedgePolicy::adaptive(0.5).with_min_data_points(5);
        let stats = stats_with(now, (0..4).map(|_| ms(400)));
        assert_eq!(p.hedge_delay(&stats, now), None);
        let stats = stats_with(now, (0..5).map(|_| ms(400)));
        let delay = p.hedge_delay(&stats, now).unwrap();
        assert!(delay.abs_diff(ms(400)) <= ms(8), "{delay:?}");
    }

    #[test]
    fn adaptive_delay_is_floored_at_min_delay() {
        let now = Instant::now();
        let stats = stats_with(now, (0..50).map(|_| ms(5)));
        assert_eq!(
            HedgePolicy::adaptive(0.95).hedge_delay(&stats, now),
            Some(ms(50))
        );
        let p = HedgePolicy::adaptive(0.95).with_min_delay(ms(300));
        assert_eq!(p.hedge_delay(&stats, now), Some(ms(300)));
    }

    #[test]
    fn adaptive_stops_hedging_when_data_ages_out() {
        let now = Instant::now();
        let stats = stats_with(now, (0..50).map(|_| ms(800)));
        let p = HedgePolicy::default();
        assert!(p.hedge_delay(&stats, now).is_some());
        assert_eq!(p.hedge_delay(&stats, now + Duration::from_secs(600)), None);
    }

    #[test]
    fn budget_caps_hedges_at_the_fraction() {
        let mut budget = HedgeBudget::new(&HedgePolicy::default());
        let mut hedged = 0;
        for _ in 0..1000 {
            budget.on_request();
            // Every request is slow and wants a hedge.
            if budget.try_spend() {
                hedged += 1;
            }
        }
        assert!((99..=101).contains(&hedged), "{hedged}");
    }

    #[test]
    fn budget_follows_the_configured_fraction() {
        let mut budget = HedgeBudget::new(&HedgePolicy::default().with_max_hedged_fraction(0.02));
        let hedged = (0..10_000)
            .filter(|_| {
                budget.on_request();
                budget.try_spend()
            })
            .count();
        assert!((199..=201).contains(&hedged), "{hedged}");
    }

    #[test]
    fn budget_saves_at_most_ten_hedges_for_a_burst() {
        let mut budget = HedgeBudget::new(&HedgePolicy::default());
        for _ in 0..1000 {
            budget.on_request();
        }
        let burst = (0..50).filter(|_| budget.try_spend()).count();
        assert_eq!(burst, 10);
        assert!(!budget.try_spend());
    }

    #[test]
    fn a_fresh_budget_allows_one_hedge() {
        let mut budget = HedgeBudget::new(&HedgePolicy::fixed(ms(100)));
        assert!(budget.try_spend());
        assert!(!budget.try_spend());
    }
}
