//! Exponential backoff with full jitter.
//!
//! The n-th retry (counting from 0) waits a uniformly random time in `[0, min(cap, base·2ⁿ)]`. Full
//! jitter spreads the retries of many clients that failed together over the whole interval, instead of
//! sending them back in synchronized waves that hit a recovering provider all at once.

use tokio::time::Duration;

/// The jittered wait before retry number `attempt` (0 for the first retry).
///
/// Uniform in `[0, min(cap, base·2^attempt)]`, drawn from `rng` so that tests can seed it. Never panics
/// and never overflows, whatever the attempt number or durations: once `base·2^attempt` passes `cap`
/// (or `u32` shifts run out) the ceiling is simply `cap`.
pub(crate) fn backoff_delay(
    attempt: u32,
    base: Duration,
    cap: Duration,
    rng: &mut fastrand::Rng,
) -> Duration {
    let ceiling = ceiling(attempt, base, cap);
    if ceiling.is_zero() {
        return Duration::ZERO;
    }
    let nanos = rng.u128(0..=ceiling.as_nanos());
    from_nanos_u128(nanos)
}

/// `min(cap, base·2^attempt)` without overflow.
fn ceiling(attempt: u32, base: Duration, cap: Duration) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    let grown = 1u32
        .checked_shl(attempt)
        .and_then(|factor| base.checked_mul(factor));
    match grown {
        Some(d) => d.min(cap),
        // base·2^attempt does not even fit in a Duration, so it is above any cap.
        None => cap,
    }
}

/// A `Duration` from a nanosecond count that came from `Duration::as_nanos`, so it always fits.
fn from_nanos_u128(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below one billion, which always fits in a u32.
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `base·2^attempt` computed exactly in u128 nanoseconds, saturating.
    fn exact_growth_nanos(attempt: u32, base: Duration) -> u128 {
        if attempt >= 128 {
            return if base.is_zero() { 0 } else { u128::MAX };
        }
        base.as_nanos().saturating_mul(1u128 << attempt)
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..=120_000).prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_nanos),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::ZERO),
            Just(Duration::MAX),
        ]
    }

    proptest! {
        #[test]
        fn never_above_cap_nor_growth(
            attempt in any::<u32>(),
            base in any_duration(),
            cap in any_duration(),
            seed in any::<u64>(),
        ) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let d = backoff_delay(attempt, base, cap, &mut rng);
            prop_assert!(d <= cap);
            prop_assert!(d.as_nanos() <= exact_growth_nanos(attempt, base));
        }

        #[test]
        fn spread_over_the_whole_interval(
            attempt in 0u32..40,
            base_ms in 1u64..2_000,
            cap_ms in 10u64..120_000,
            seed in any::<u64>(),
        ) {
            let base = Duration::from_millis(base_ms);
            let cap = Duration::from_millis(cap_ms);
            let ceiling = ceiling(attempt, base, cap);
            let mut rng = fastrand::Rng::with_seed(seed);
            let samples: Vec<Duration> =
                (0..400).map(|_| backoff_delay(attempt, base, cap, &mut rng)).collect();
            let min = *samples.iter().min().unwrap();
            let max = *samples.iter().max().unwrap();
            // With 400 uniform draws, missing a whole quarter of the interval has probability
            // 2·0.75⁴⁰⁰ ≈ 10⁻⁵⁰: a failure here means the jitter is broken, not unlucky.
            prop_assert!(min < ceiling / 4, "min {min:?} of ceiling {ceiling:?}");
            prop_assert!(max > ceiling * 3 / 4, "max {max:?} of ceiling {ceiling:?}");
            let mean = samples.iter().sum::<Duration>() / 400;
            prop_assert!(mean > ceiling * 3 / 10 && mean < ceiling * 7 / 10, "mean {mean:?}");
        }
    }

    #[test]
    fn grows_exponentially_until_the_cap() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(8);
        assert_eq!(ceiling(0, base, cap), Duration::from_millis(500));
        assert_eq!(ceiling(1, base, cap), Duration::from_secs(1));
        assert_eq!(ceiling(3, base, cap), Duration::from_secs(4));
        assert_eq!(ceiling(4, base, cap), cap);
        assert_eq!(ceiling(31, base, cap), cap);
        assert_eq!(ceiling(32, base, cap), cap);
        assert_eq!(ceiling(u32::MAX, base, cap), cap);
    }

    #[test]
    fn zero_base_or_cap_means_no_wait() {
        let mut rng = fastrand::Rng::with_seed(7);
        let s = Duration::from_secs(1);
        assert_eq!(
            backoff_delay(3, Duration::ZERO, s, &mut rng),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(3, s, Duration::ZERO, &mut rng),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(u32::MAX, Duration::ZERO, Duration::MAX, &mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn huge_durations_do_not_panic() {
        let mut rng = fastrand::Rng::with_seed(1);
        for attempt in [0, 1, 63, 64, 127, 128, u32::MAX] {
            let d = backoff_delay(attempt, Duration::MAX, Duration::MAX, &mut rng);
            assert!(d <= Duration::MAX);
        }
    }
}
