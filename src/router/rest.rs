//! Rate-limit rest: a target that was told to wait is left alone until then.
//!
//! When a provider answers 429 with a `Retry-After`, sending it anything before that time only earns
//! another 429 (and may extend the penalty). The target *rests* until the requested time, and the
//! router serves requests from its other targets meanwhile. Only when every target of a route rests
//! does a request wait, for the one that will be ready first, and only if that is before the
//! request's deadline; otherwise it fails fast instead of queueing behind a long penalty.
//!
//! A target whose account is out of quota rests too (for the error's `Retry-After`, else a
//! configured time), but is never waited for: a quota seldom comes back within a request's life.
//! The router caps every rest's length, so that a hostile or broken header cannot bench a target
//! for a day.

use tokio::time::Instant;

/// Why a target rests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RestReason {
    /// It was rate limited, with a `Retry-After`: worth waiting for when nothing else serves.
    #[default]
    RateLimit,
    /// Its quota is exhausted: skipped, never waited for.
    Quota,
}

/// Until when one target rests, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestState {
    until: Option<Instant>,
    reason: RestReason,
}

impl RestState {
    /// Rests the target until `until`, or until the end of its current rest if that is later: a
    /// short `Retry-After` never cuts a longer one short. The reason is the longer rest's.
    pub(crate) fn rest_until(&mut self, until: Instant, reason: RestReason) {
        if self.until.is_none_or(|current| until > current) {
            self.until = Some(until);
            self.reason = reason;
        }
    }

    /// Ends the rest at once (an operator's reset).
    pub(crate) fn clear(&mut self) {
        *self = RestState::default();
    }

    /// Why the target rests (meaningful while [`is_resting`](Self::is_resting)).
    pub(crate) fn reason(&self) -> RestReason {
        self.reason
    }

    /// Whether the target rests at `now` (its rest ends strictly after `now`).
    pub(crate) fn is_resting(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// When the target's rest ends, if it was ever told to rest; an instant in the past means it is
    /// ready. This is what [`choose`] takes for each target.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        self.until
    }
}

/// Which target a request should go to, given their rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Send it to the target at this index now.
    Serve(usize),
    /// Every target rests; wait until this instant, then send it to the target at this index.
    WaitUntil(Instant, usize),
    /// Every target rests past the deadline: fail without waiting.
    FailFast,
}

/// Chooses a target among `ready_at` (one entry per candidate target, in route order: when it is
/// ready again, `None` or a past instant meaning ready now).
///
/// Returns the first target that is ready at `now`; if all rest, the one ready earliest (the first
/// of equals) provided it is ready strictly before `deadline`; otherwise, or when there is no
/// candidate, [`Choice::FailFast`].
///
/// `deadline` is the latest instant worth waiting for: the request's deadline, capped so that a long
/// penalty is never waited out (see `RetryPolicy::wait_limit`). A target whose circuit is open can be
/// folded in by passing the later of its rest end and the circuit's `retry_at`.
pub(crate) fn choose(
    ready_at: impl IntoIterator<Item = Option<Instant>>,
    now: Instant,
    deadline: Instant,
) -> Choice {
    let mut earliest: Option<(Instant, usize)> = None;
    for (index, ready) in ready_at.into_iter().enumerate() {
        match ready {
            Some(at) if now < at => {
                if earliest.is_none_or(|(best, _)| at < best) {
                    earliest = Some((at, index));
                }
            }
            _ => return Choice::Serve(index),
        }
    }
    match earliest {
        Some((at, index)) if at < deadline => Choice::WaitUntil(at, index),
        _ => Choice::FailFast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_fresh_target_is_ready() {
        let now = Instant::now();
        let r = RestState::default();
        assert!(!r.is_resting(now));
        assert_eq!(r.ready_at(), None);
    }

    #[test]
    fn rests_until_the_instant_then_is_ready() {
        let t0 = Instant::now();
        let mut r = RestState::default();
        r.rest_until(t0 + secs(5), RestReason::RateLimit);
        assert!(r.is_resting(t0));
        assert!(r.is_resting(t0 + Duration::from_millis(4_999)));
        assert!(!r.is_resting(t0 + secs(5)));
        assert!(!r.is_resting(t0 + secs(6)));
        assert_eq!(r.ready_at(), Some(t0 + secs(5)));
    }

    #[test]
    fn keeps_the_later_of_two_rests() {
        let t0 = Instant::now();
        let mut r = RestState::default();
        r.rest_until(t0 + secs(10), RestReason::RateLimit);
        r.rest_until(t0 + secs(3), RestReason::Quota);
        assert_eq!(r.ready_at(), Some(t0 + secs(10)));
        assert_eq!(r.reason(), RestReason::RateLimit);
        r.rest_until(t0 + secs(12), RestReason::Quota);
        assert_eq!(r.ready_at(), Some(t0 + secs(12)));
        assert_eq!(r.reason(), RestReason::Quota);
        r.clear();
        assert!(!r.is_resting(t0));
        assert_eq!(r.ready_at(), None);
    }

    #[test]
    fn serves_the_first_target_not_resting_in_order() {
        let now = Instant::now();
        let deadline = now + secs(60);
        let resting = Some(now + secs(5));
        let past = Some(now - secs(1));
        assert_eq!(choose([None, None], now, deadline), Choice::Serve(0));
        assert_eq!(
            choose([resting, None, None], now, deadline),
            Choice::Serve(1)
        );
        assert_eq!(
            choose([resting, resting, past], now, deadline),
            Choice::Serve(2)
        );
        // A rest ending exactly now is over.
        assert_eq!(choose([Some(now), None], now, deadline), Choice::Serve(0));
    }

    #[test]
    fn waits_for_the_earliest_when_all_rest() {
        let now = Instant::now();
        let deadline = now + secs(60);
        let ready = [
            Some(now + secs(9)),
            Some(now + secs(4)),
            Some(now + secs(7)),
        ];
        assert_eq!(
            choose(ready, now, deadline),
            Choice::WaitUntil(now + secs(4), 1)
        );
        // Equal rests: the first in route order.
        let ready = [
            Some(now + secs(9)),
            Some(now + secs(4)),
            Some(now + secs(4)),
        ];
        assert_eq!(
            choose(ready, now, deadline),
            Choice::WaitUntil(now + secs(4), 1)
        );
    }

    #[test]
    fn fails_fast_when_nothing_is_ready_before_the_deadline() {
        let now = Instant::now();
        let ready = [Some(now + secs(9)), Some(now + secs(4))];
        assert_eq!(choose(ready, now, now + secs(4)), Choice::FailFast);
        assert_eq!(choose(ready, now, now + secs(3)), Choice::FailFast);
        assert_eq!(
            choose(ready, now, now + secs(5)),
            Choice::WaitUntil(now + secs(4), 1)
        );
    }

    #[test]
    fn no_candidate_fails_fast() {
        let now = Instant::now();
        assert_eq!(choose([], now, now + secs(60)), Choice::FailFast);
    }

    #[test]
    fn takes_ready_instants_from_rest_states() {
        let now = Instant::now();
        let mut states = [RestState::default(); 3];
        states[0].rest_until(now + secs(30), RestReason::RateLimit);
        states[1].rest_until(now + secs(2), RestReason::RateLimit);
        states[2].rest_until(now + secs(20), RestReason::RateLimit);
        let ready = states.iter().map(RestState::ready_at);
        assert_eq!(
            choose(ready, now, now + secs(60)),
            Choice::WaitUntil(now + secs(2), 1)
        );
        let later = now + secs(2);
        let ready = states.iter().map(RestState::ready_at);
        assert_eq!(choose(ready, later, later + secs(60)), Choice::Serve(1));
    }
}
