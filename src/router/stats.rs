//! Per-target latency statistics over a recent period.
//!
//! Each target keeps two [`LatencyStats`]: one for total latency (request sent → response complete)
//! and one for time to first delta (request sent → first streamed delta), in [`TargetStats`]. The
//! hedging policy reads a percentile of them to decide how long to wait before racing a second
//! target.
//!
//! Latencies go into fixed log-linear histograms: exact below 32 µs, then 32 buckets per power of
//! two, so every bucket is at most 1/32 of its values wide and a reported percentile (the middle of
//! its bucket) is within about 1.6 % of the true value. Values from 0 to 10 minutes are told apart;
//! longer ones count as 10 minutes. Recording is a few integer operations and never allocates.
//!
//! Two histograms rotate: one fills during the current period while the other holds the period
//! before, and a reading covers both, so it always reflects between one and two periods of data and
//! older data drops out.
//!
//! # Defaults
//!
//! A 60 s period ([`DEFAULT_PERIOD`]); no percentile below 20 data points
//! ([`DEFAULT_MIN_DATA_POINTS`]).

use std::fmt;

use crate::error::ErrorKind;
use crate::state::{Nanos, usd_to_nanos};

use tokio::time::{Duration, Instant};

/// How long one histogram of the rotating pair collects data.
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// Below this many data points, no percentile is reported.
pub(crate) const DEFAULT_MIN_DATA_POINTS: u64 = 20;

/// log2 of the number of sub-buckets per power of two.
const SUB_BITS: u32 = 5;
/// Sub-buckets per power of two; values below it have a bucket each.
const SUB: u64 = 1 << SUB_BITS;
/// The largest latency told apart, in microseconds (10 minutes).
const MAX_MICROS: u64 = 10 * 60 * 1_000_000;
/// Number of buckets needed to reach [`MAX_MICROS`].
const BUCKET_COUNT: usize = bucket_index(MAX_MICROS) + 1;

// The last bucket reaches MAX_MICROS, and a histogram stays small (about 3 KiB).
const _: () = assert!(bucket_bounds(BUCKET_COUNT - 1).1 >= MAX_MICROS);
const _: () = assert!(BUCKET_COUNT < 1024);

/// The bucket holding `micros` (which must not exceed [`MAX_MICROS`]).
const fn bucket_index(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let magnitude = 63 - micros.leading_zeros();
    let shift = magnitude - SUB_BITS;
    let mantissa = micros >> shift;
    ((shift as u64 + 1) * SUB + (mantissa - SUB)) as usize
}

/// The smallest and largest microsecond values of bucket `index`, inclusive.
const fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, index);
    }
    let shift = index / SUB - 1;
    let mantissa = SUB + index % SUB;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// Counts of latencies per bucket, allocated once.
#[derive(Clone)]
struct Histogram {
    counts: Box<[u32; BUCKET_COUNT]>,
    total: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKET_COUNT]),
            total: 0,
        }
    }

    fn record(&mut self, micros: u64) {
        let slot = &mut self.counts[bucket_index(micros.min(MAX_MICROS))];
        *slot = slot.saturating_add(1);
        self.total += 1;
    }

    fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }
}

/// Latency distribution of one target over the last one to two periods.
#[derive(Clone)]
pub(crate) struct LatencyStats {
    period: Duration,
    min_data_points: u64,
    /// When `current` started collecting; `None` until the first record.
    current_start: Option<Instant>,
    current: Histogram,
    previous: Histogram,
    /// The last percentile read by [`percentile_cached`](Self::percentile_cached).
    cached: std::cell::Cell<Option<Cached>>,
}

/// A percentile and the state it was read in.
#[derive(Debug, Clone, Copy)]
struct Cached {
    p: f64,
    count: u64,
    current_start: Option<Instant>,
    live_both: bool,
    value: Option<Duration>,
}

/// Which histograms still hold live data at some instant.
enum Live {
    Both,
    CurrentOnly,
    None,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats::new(DEFAULT_PERIOD, DEFAULT_MIN_DATA_POINTS)
    }
}

impl LatencyStats {
    /// Empty statistics rotating every `period` (at least 1 ns), reporting percentiles once they
    /// hold `min_data_points`.
    pub(crate) fn new(period: Duration, min_data_points: u64) -> Self {
        LatencyStats {
            period: period.max(Duration::from_nanos(1)),
            min_data_points,
            current_start: None,
            current: Histogram::new(),
            previous: Histogram::new(),
            cached: std::cell::Cell::new(None),
        }
    }

    /// How many whole periods passed between the current histogram's start and `now`.
    fn periods_since_start(&self, now: Instant) -> Option<u128> {
        let start = self.current_start?;
        Some(now.saturating_duration_since(start).as_nanos() / self.period.as_nanos())
    }

    fn live(&self, now: Instant) -> Live {
        match self.periods_since_start(now) {
            Some(0) => Live::Both,
            // At a rotation the current histogram becomes the previous one, which drops the older.
            Some(1) => Live::CurrentOnly,
            _ => Live::None,
        }
    }

    /// Records one latency observed at `now`. Never allocates.
    pub(crate) fn record(&mut self, now: Instant, latency: Duration) {
        match self.periods_since_start(now) {
            None => self.current_start = Some(now),
            Some(0) => {}
            Some(1) => {
                std::mem::swap(&mut self.current, &mut self.previous);
                self.current.clear();
                self.current_start = self.current_start.map(|s| s + self.period);
            }
            Some(_) => {
                self.current.clear();
                self.previous.clear();
                self.current_start = Some(now);
            }
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.current.record(micros);
    }

    /// How many latencies the statistics hold at `now`.
    pub(crate) fn count(&self, now: Instant) -> u64 {
        match self.live(now) {
            Live::Both => self.current.total + self.previous.total,
            Live::CurrentOnly => self.current.total,
            Live::None => 0,
        }
    }

    #[cfg(test)]
    /// The `p`-quantile (`p` in `[0, 1]`: 0.5 for the median, 0.95 for p95) of the latencies held at
    /// `now`, within the bucket precision (about 1.6 %).
    ///
    /// `None` while fewer than the minimum number of data points are held, or if `p` is NaN; other
    /// values of `p` are clamped to `[0, 1]`.
    pub(crate) fn percentile(&self, now: Instant, p: f64) -> Option<Duration> {
        if self.count(now) < self.min_data_points {
            return None;
        }
        self.percentile_ignoring_min(now, p)
    }

    /// Like [`percentile`](Self::percentile), but reports as soon as one latency is held, for a
    /// caller that applies its own minimum (the hedging policy has its own `min_data_points`).
    /// As [`percentile_ignoring_min`](Self::percentile_ignoring_min), reusing the last reading
    /// while fewer than 1/16 of the data points are new (and the periods have not rotated): the
    /// hedging policy reads a percentile on every request, and a full scan of the histogram costs
    /// more than the rest of its decision.
    pub(crate) fn percentile_cached(&self, now: Instant, p: f64) -> Option<Duration> {
        let count = self.count(now);
        let live_both = matches!(self.live(now), Live::Both);
        if let Some(c) = self.cached.get()
            && c.p == p
            && c.current_start == self.current_start
            && c.live_both == live_both
            && count >= c.count
            && count - c.count < (count / 16).max(1)
        {
            return c.value;
        }
        let value = self.percentile_ignoring_min(now, p);
        self.cached.set(Some(Cached {
            p,
            count,
            current_start: self.current_start,
            live_both,
            value,
        }));
        value
    }

    pub(crate) fn percentile_ignoring_min(&self, now: Instant, p: f64) -> Option<Duration> {
        let count = self.count(now);
        if count == 0 || p.is_nan() {
            return None;
        }
        // The rank (1-based) of the value sought: the smallest one with at least p·count values at
        // or below it.
        let rank = ((p.clamp(0.0, 1.0) * count as f64).ceil() as u64).clamp(1, count);
        let both = matches!(self.live(now), Live::Both);
        let mut seen = 0u64;
        for index in 0..BUCKET_COUNT {
            seen += u64::from(self.current.counts[index]);
            if both {
                seen += u64::from(self.previous.counts[index]);
            }
            if seen >= rank {
                let (low, high) = bucket_bounds(index);
                return Some(Duration::from_micros(low + (high - low) / 2));
            }
        }
        // Unreachable while bucket counts add up to the totals; saturated counts could fall short.
        Some(Duration::from_micros(MAX_MICROS))
    }
}

impl fmt::Debug for LatencyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyStats")
            .field("period", &self.period)
            .field("min_data_points", &self.min_data_points)
            .field("current_start", &self.current_start)
            .field("current_count", &self.current.total)
            .field("previous_count", &self.previous.total)
            .finish_non_exhaustive()
    }
}

/// The latency statistics one target keeps.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetStats {
    /// From sending the request to the complete response (or the end of the stream).
    pub(crate) total: LatencyStats,
    /// From sending the request to the first streamed delta.
    pub(crate) first_delta: LatencyStats,
    /// Lifetime counts.
    pub(crate) tally: Tally,
}

/// Lifetime counts of one target. Errors are kept per kind in a short list that grows only when
/// a new kind is first seen, so counting allocates nothing per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) errors: Vec<(ErrorKind, u64)>,
    pub(crate) output_tokens: u64,
    /// Time spent producing the answers whose output tokens are counted.
    pub(crate) generation: Duration,
    pub(crate) spent: Nanos,
}

impl Tally {
    pub(crate) fn error(&mut self, kind: ErrorKind) {
        match self.errors.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((kind, 1)),
        }
    }

    /// A finished answer: its output tokens, how long it took, and its cost.
    pub(crate) fn answered(
        &mut self,
        output_tokens: Option<u64>,
        took: Duration,
        cost: Option<f64>,
    ) {
        if let Some(tokens) = output_tokens {
            self.output_tokens += tokens;
            self.generation += took;
        }
        if let Some(cost) = cost {
            self.spent = self.spent.saturating_add(usd_to_nanos(cost));
        }
    }
}

/// The 50th, 95th and 99th percentiles of a latency, over the last one to two minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Percentiles {
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    pub(crate) fn of(stats: &LatencyStats, now: Instant) -> Option<Self> {
        Some(Percentiles {
            p50: stats.percentile_ignoring_min(now, 0.50)?,
            p95: stats.percentile_ignoring_min(now, 0.95)?,
            p99: stats.percentile_ignoring_min(now, 0.99)?,
        })
    }
}

/// How one target of a router has performed, as [`Router::stats`](super::Router::stats) reports
/// it. Counts run from the router's start; percentiles cover the last one to two minutes
/// (within about 1.6 % of the exact values).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TargetReport {
    /// The provider's name.
    pub provider: String,
    /// The model the target asks for.
    pub model: String,
    /// Calls made.
    pub requests: u64,
    /// Failed calls, per kind of error.
    pub errors: Vec<(ErrorKind, u64)>,
    /// Whole-answer latency (chat calls, and streams from request to their end).
    pub latency: Option<Percentiles>,
    /// Time to first delta of streams.
    pub first_delta: Option<Percentiles>,
    /// Output tokens counted.
    pub output_tokens: u64,
    /// Output tokens per second of the answers that reported them.
    pub output_tokens_per_second: Option<f64>,
    /// What the target's answers cost, USD.
    pub spent_usd: f64,
    /// Calls in flight now (streams until they end).
    pub in_flight: u32,
    /// Its circuit, when the router has a circuit breaker.
    pub circuit: Option<super::CircuitStatus>,
    /// How long it still rests; `None` when it does not.
    pub rest_remaining: Option<Duration>,
}

impl TargetReport {
    /// Failed calls of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }
}

/// A snapshot of every target of a router, in the order they were first listed.
///
/// Its `Display` is an aligned table: requests, errors, p50/p95 latency, p50 time to first
/// delta, tokens per second and spend per target.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RouterStats {
    /// One report per target.
    pub targets: Vec<TargetReport>,
}

impl fmt::Display for RouterStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn ms(d: Option<Duration>) -> String {
            d.map_or_else(
                || "-".to_owned(),
                |d| format!("{:.0}ms", d.as_secs_f64() * 1e3),
            )
        }
        let rows: Vec<[String; 8]> = self
            .targets
            .iter()
            .map(|t| {
                [
                    format!("{}/{}", t.provider, t.model),
                    t.requests.to_string(),
                    t.error_count().to_string(),
                    ms(t.latency.map(|p| p.p50)),
                    ms(t.latency.map(|p| p.p95)),
                    ms(t.first_delta.map(|p| p.p50)),
                    t.output_tokens_per_second
                        .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}")),
                    format!("${:.6}", t.spent_usd),
                ]
            })
            .collect();
        let header = [
            "target", "requests", "errors", "p50", "p95", "ttft p50", "tokens/s", "spend",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    write!(f, "{cell:<w$}")?;
                } else {
                    write!(f, "  {cell:>w$}")?;
                }
            }
            writeln!(f)
        };
        line(f, &header)?;
        for row in &rows {
            line(f, &row.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Asserts `actual` is within 2 % of `expected`.
    #[test]
    fn a_cached_percentile_is_reused_only_while_few_points_are_new() {
        let mut s = LatencyStats::new(secs(60), 1);
        let t = Instant::now();
        for _ in 0..160 {
            s.record(t, ms(10));
        }
        assert_close(s.percentile_cached(t, 0.5), ms(10));
        // Fewer than 1/16 new points: the old reading stands.
        for _ in 0..9 {
            s.record(t, ms(1_000));
        }
        assert_close(s.percentile_cached(t, 0.5), ms(10));
        // Enough new points (or another percentile) and it is read again.
        for _ in 0..200 {
            s.record(t, ms(1_000));
        }
        assert_close(s.percentile_cached(t, 0.5), ms(1_000));
        assert_close(s.percentile_cached(t, 0.01), ms(10));
    }

    fn assert_close(actual: Option<Duration>, expected: Duration) {
        let actual = actual.expect("a percentile");
        let error = actual.as_secs_f64() / expected.as_secs_f64() - 1.0;
        assert!(error.abs() <= 0.02, "{actual:?} vs {expected:?}");
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let mut expected_low = 0;
        for index in 0..BUCKET_COUNT {
            let (low, high) = bucket_bounds(index);
            assert_eq!(low, expected_low, "bucket {index}");
            assert!(high >= low);
            assert_eq!(bucket_index(low), index);
            assert_eq!(bucket_index(high), index);
            // Exact below SUB, then at most 1/32 as wide as its smallest value.
            let width = high - low + 1;
            assert!(width == 1 || width * SUB <= low, "bucket {index}");
            expected_low = high + 1;
        }
    }

    proptest! {
        #[test]
        fn every_value_lands_in_a_bucket_that_contains_it(micros in 0..=MAX_MICROS) {
            let (low, high) = bucket_bounds(bucket_index(micros));
            prop_assert!(low <= micros && micros <= high);
            let middle = low + (high - low) / 2;
            prop_assert!(middle.abs_diff(micros) as f64 <= micros as f64 / 64.0 + 1.0);
        }
    }

    #[test]
    fn percentiles_of_known_data() {
        let t0 = Instant::now();
        let mut s = LatencyStats::default();
        // 1..=1000 ms, shuffled order does not matter to a histogram.
        for n in (1..=1000).rev() {
            s.record(t0, ms(n));
        }
        assert_eq!(s.count(t0), 1000);
        assert_close(s.percentile(t0, 0.5), ms(500));
        assert_close(s.percentile(t0, 0.95), ms(950));
        assert_close(s.percentile(t0, 0.99), ms(990));
        assert_close(s.percentile(t0, 0.0), ms(1));
        assert_close(s.percentile(t0, 1.0), ms(1000));
        assert_close(s.percentile(t0, 7.0), ms(1000));
        assert_eq!(s.percentile(t0, f64::NAN), None);
    }

    #[test]
    fn skewed_data() {
        let t0 = Instant::now();
        let mut s = LatencyStats::default();
        for _ in 0..90 {
            s.record(t0, ms(200));
        }
        for _ in 0..10 {
            s.record(t0, secs(12));
        }
        assert_close(s.percentile(t0, 0.5), ms(200));
        assert_close(s.percentile(t0, 0.9), ms(200));
        assert_close(s.percentile(t0, 0.91), secs(12));
    }

    #[test]
    fn none_below_min_data_points() {
        let t0 = Instant::now();
        let mut s = LatencyStats::default();
        assert_eq!(s.percentile(t0, 0.5), None);
        for _ in 0..19 {
            s.record(t0, ms(100));
        }
        assert_eq!(s.count(t0), 19);
        assert_eq!(s.percentile(t0, 0.5), None);
        s.record(t0, ms(100));
        assert_close(s.percentile(t0, 0.5), ms(100));
    }

    #[test]
    fn zero_min_data_points_still_needs_one() {
        let t0 = Instant::now();
        let mut s = LatencyStats::new(DEFAULT_PERIOD, 0);
        assert_eq!(s.percentile(t0, 0.5), None);
        s.record(t0, ms(3));
        assert_close(s.percentile(t0, 0.5), ms(3));
    }

    #[test]
    fn old_data_rotates_out() {
        let t0 = Instant::now();
        let mut s = LatencyStats::new(secs(60), 1);
        for _ in 0..100 {
            s.record(t0, ms(100));
        }
        assert_close(s.percentile(t0 + secs(59), 0.5), ms(100));
        // Next period: the first period's data is still read, alongside the new.
        for _ in 0..100 {
            s.record(t0 + secs(61), ms(900));
        }
        assert_eq!(s.count(t0 + secs(61)), 200);
        assert_close(s.percentile(t0 + secs(61), 0.25), ms(100));
        assert_close(s.percentile(t0 + secs(61), 0.75), ms(900));
        // Two periods after it began, the first period's data is gone, even without new records.
        assert_eq!(s.count(t0 + secs(121)), 100);
        assert_close(s.percentile(t0 + secs(121), 0.25), ms(900));
        // Three periods: everything is gone.
        assert_eq!(s.count(t0 + secs(181)), 0);
        assert_eq!(s.percentile(t0 + secs(181), 0.5), None);
    }

    #[test]
    fn a_long_silence_clears_everything() {
        let t0 = Instant::now();
        let mut s = LatencyStats::new(secs(60), 1);
        for _ in 0..50 {
            s.record(t0, ms(100));
        }
        s.record(t0 + secs(600), ms(700));
        assert_eq!(s.count(t0 + secs(600)), 1);
        assert_close(s.percentile(t0 + secs(600), 0.0), ms(700));
    }

    #[test]
    fn extreme_latencies_are_clamped() {
        let t0 = Instant::now();
        let mut s = LatencyStats::new(secs(60), 1);
        s.record(t0, Duration::MAX);
        s.record(t0, secs(3600));
        s.record(t0, Duration::ZERO);
        assert_eq!(s.count(t0), 3);
        assert_eq!(s.percentile(t0, 0.0), Some(Duration::ZERO));
        assert_close(s.percentile(t0, 1.0), secs(600));
    }

    #[test]
    fn out_of_order_instants_do_not_panic() {
        let t0 = Instant::now();
        let mut s = LatencyStats::new(secs(60), 1);
        s.record(t0 + secs(5), ms(10));
        s.record(t0, ms(10));
        assert_eq!(s.count(t0), 2);
    }

    #[test]
    fn target_stats_keep_two_distributions() {
        let t0 = Instant::now();
        let mut t = TargetStats::default();
        for _ in 0..20 {
            t.total.record(t0, secs(4));
            t.first_delta.record(t0, ms(300));
        }
        assert_close(t.total.percentile(t0, 0.5), secs(4));
        assert_close(t.first_delta.percentile(t0, 0.5), ms(300));
    }
}
