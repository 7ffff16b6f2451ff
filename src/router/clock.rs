//! Small helpers for instant arithmetic that must never panic.

use tokio::time::{Duration, Instant};

/// The longest span ever added to an instant: far enough to mean "never", near enough that adding it
/// to any instant a running process sees cannot overflow.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `t + d`, with `d` capped at about a hundred years so that a huge configured duration (say
/// `Duration::MAX` as a cool-down) means "practically never" instead of an overflow panic.
pub(crate) fn saturating_add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(FAR_FUTURE)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_do_not_panic() {
        let now = Instant::now();
        assert!(saturating_add(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            saturating_add(now, Duration::from_millis(5)),
            now + Duration::from_millis(5)
        );
    }
}
