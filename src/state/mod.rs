//! State that several router processes may share, behind one seam: the [`StateStore`] trait.
//!
//! The store holds budget counters and, for a store shared by a fleet, target health: rate-limit
//! rests and circuit breakers. [`MemoryStore`] (the default) keeps counters in this process and
//! shares no health; [`RedisStore`] (feature `redis`) makes each budget operation one Lua script
//! and spreads health news over pub/sub, so a fleet of gateways shares one spend, one set of
//! open circuits and one view of throttled targets.
//!
//! Every budget operation is atomic on its own: [`reserve`](StateStore::reserve) checks every
//! claimed counter and adds the reservation to all of them, or to none;
//! [`settle`](StateStore::settle) swaps a reservation for what was really spent;
//! [`release`](StateStore::release) returns a reservation unused. Amounts are integer
//! nano-dollars ([`Nanos`]), so that sums are exact and a store can add them atomically.
//!
//! # Windows
//!
//! A counter belongs to a window, named by the Unix second it starts at (0 for a budget without
//! window). When an operation names a later window than the counter holds, the counter rolls
//! over first: its spend starts again from zero, while reservations still in flight are carried
//! over, since what they spend is settled into the window in which they settle.
//!
//! # Target health
//!
//! The router keeps each target's rest and circuit locally and reads them on every request
//! without asking the store. When the store [`shares_health`](StateStore::shares_health), the
//! router also tells it what it learns ([`publish_health`](StateStore::publish_health),
//! [`record_outcome`](StateStore::record_outcome)) and hears what other processes learnt
//! through a [`HealthSink`]; a half-open circuit's probe is taken from the store
//! ([`acquire_probe`](StateStore::acquire_probe)) so that one process probes for the fleet.
//!
//! # Operations return [`StoreFuture`]s
//!
//! The router calls the store on every request that a budget covers, and from a stream's end
//! (inside `poll_next` or `Drop`, where nothing can be awaited). A [`StoreFuture`] is either
//! already complete ([`StoreFuture::ready`], what an in-memory store returns: no allocation, no
//! task) or a boxed future ([`StoreFuture::new`], for a store that does I/O); the router spawns
//! the latter only where it cannot await.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{OnError, RedisOptions, RedisStore};

use crate::error::Error;
use crate::router::CircuitBreaker;

/// Names one reservation, so that the store can settle or release exactly it (and, in a store
/// shared by a fleet, let it lapse if its process dies).
pub type HoldId = u64;

/// An amount of US dollars in billionths (1 USD = 1,000,000,000 nanos).
pub type Nanos = u64;

/// Nano-dollars per dollar.
pub const NANOS_PER_USD: f64 = 1_000_000_000.0;

/// `usd` in nano-dollars, rounded up (a reservation never falls short by rounding); negative,
/// NaN and infinite amounts count as 0 and `u64::MAX` as appropriate.
pub fn usd_to_nanos(usd: f64) -> Nanos {
    if usd.is_nan() || usd <= 0.0 {
        return 0;
    }
    let nanos = (usd * NANOS_PER_USD).ceil();
    if nanos >= u64::MAX as f64 {
        u64::MAX
    } else {
        nanos as u64
    }
}

/// `nanos` in US dollars.
pub fn nanos_to_usd(nanos: Nanos) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// One budget counter a reservation is made against. Its key is shared, so a store that does
/// I/O can move claims into its future for the cost of a reference count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The counter's key (the budget's name, and for a per-tag-value budget the value).
    pub key: Arc<str>,
    /// The window the reservation falls in: its start in Unix seconds, 0 for no window.
    pub window: u64,
    /// The counter's limit: spend plus reservations may not exceed it.
    pub limit: Nanos,
    /// When the window ends, in Unix seconds (0 for no window): a store may forget the counter
    /// some time after.
    pub expires: u64,
}

/// The answer to a [`StateStore::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Every claimed counter took the reservation.
    Granted {
        /// The reservation's name, for its settlement or release.
        hold: HoldId,
    },
    /// No counter took it, because this one would have gone over its limit.
    Refused {
        /// The position in the claims of the counter that refused.
        claim: usize,
        /// What that counter had spent in its window.
        spent: Nanos,
        /// What was reserved on it by requests in flight.
        reserved: Nanos,
    },
}

/// A counter's state, as [`StateStore::counters`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Spent in the window.
    pub spent: Nanos,
    /// Reserved by requests in flight.
    pub reserved: Nanos,
}

/// What one process learnt about a target's health, told to the others through a store that
/// [`shares_health`](StateStore::shares_health). A target is named `provider/model`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthNews {
    /// The target rests until `until_ms` (Unix milliseconds): it was rate limited, or (with
    /// `quota`) its quota is exhausted.
    Rest {
        /// The target, `provider/model`.
        target: Arc<str>,
        /// When the rest ends, in Unix milliseconds.
        until_ms: u64,
        /// Whether the rest is for an exhausted quota (never waited for) rather than a rate limit.
        quota: bool,
    },
    /// The target's circuit opened: it is skipped until `until_ms` (Unix milliseconds), then one
    /// probe goes.
    CircuitOpened {
        /// The target, `provider/model`.
        target: Arc<str>,
        /// When the cool-down ends, in Unix milliseconds.
        until_ms: u64,
    },
    /// The target's circuit closed: its probe succeeded.
    CircuitClosed {
        /// The target, `provider/model`.
        target: Arc<str>,
    },
    /// A probe ended without deciding (it was cancelled or failed for the caller's reasons):
    /// another process may probe.
    ProbeAbandoned {
        /// The target, `provider/model`.
        target: Arc<str>,
    },
    /// An operator reset the target: its rest ends and its circuit closes.
    Reset {
        /// The target, `provider/model`.
        target: Arc<str>,
    },
}

impl HealthNews {
    /// The target the news is about.
    pub fn target(&self) -> &Arc<str> {
        match self {
            HealthNews::Rest { target, .. }
            | HealthNews::CircuitOpened { target, .. }
            | HealthNews::CircuitClosed { target }
            | HealthNews::ProbeAbandoned { target }
            | HealthNews::Reset { target } => target,
        }
    }
}

/// Where a store delivers health news from other processes: a router's targets.
pub trait HealthSink: Send + Sync {
    /// Applies news about one target (the sink ignores targets it does not have).
    fn apply(&self, news: &HealthNews);
}

/// Where budget counters live, and how target health is shared: this process
/// ([`MemoryStore`]) or a store shared by a fleet.
///
/// Each budget operation must be atomic: two processes reserving against the same counter can
/// never both take the last dollar. Operations fail only when the store cannot be reached (an
/// I/O error); the router then fails the request with that error rather than spend blindly.
///
/// The health methods have defaults that share nothing, which is right for a store private to
/// one process.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Adds `amount` to the reservations of every counter in `claims` if none would then exceed
    /// its limit (counting what it has spent and what is reserved in flight), else changes
    /// nothing and says which counter refused.
    fn reserve(&self, claims: &[Claim], amount: Nanos) -> StoreFuture<Reservation>;

    /// Replaces the reservation `hold` of `reserved` on every counter in `claims` with `spent`,
    /// the real cost (which may be more or less than what was reserved). The spend counts even
    /// if the reservation has lapsed.
    fn settle(
        &self,
        claims: &[Claim],
        hold: HoldId,
        reserved: Nanos,
        spent: Nanos,
    ) -> StoreFuture<()>;

    /// Returns the reservation `hold` of `reserved` on every counter in `claims` unused.
    fn release(&self, claims: &[Claim], hold: HoldId, reserved: Nanos) -> StoreFuture<()>;

    /// The spend and reservations of the counter `key` in `window`.
    fn counters(&self, key: &str, window: u64) -> StoreFuture<Counters>;

    /// The counters of `key` in `window` as this process last saw them, for decisions that
    /// need not be atomic (a soft limit's downgrade): a shared store may answer from a copy up
    /// to its sync interval old, refreshed by its own reservations, rather than ask its
    /// backend on every request. Never used to admit spend: [`reserve`](Self::reserve) does.
    /// By default, [`counters`](Self::counters).
    fn recent_counters(&self, key: &str, window: u64) -> StoreFuture<Counters> {
        self.counters(key, window)
    }

    /// Whether this store shares target health with other processes (default: no). When it
    /// does, the router calls the other health methods.
    fn shares_health(&self) -> bool {
        false
    }

    /// Starts delivering news about `targets` (`provider/model`) from other processes to
    /// `sink`, until the sink is dropped. Called once by each router built on the store.
    fn watch_health(&self, targets: Vec<Arc<str>>, sink: Weak<dyn HealthSink>) {
        let _ = (targets, sink);
    }

    /// Tells the other processes what this one learnt. Never waits: a store that does I/O
    /// sends it in the background, and a failure is logged, not returned.
    fn publish_health(&self, news: HealthNews) {
        let _ = news;
    }

    /// Counts one outcome of a call to `target` for the fleet's circuit (a health failure or a
    /// success, under `breaker`'s settings). When the fleet's counts open the circuit, the store
    /// delivers [`HealthNews::CircuitOpened`] to every sink, this process's included. Never
    /// waits.
    fn record_outcome(&self, target: &Arc<str>, breaker: &CircuitBreaker, failed: bool) {
        let _ = (target, breaker, failed);
    }

    /// Waits until the operations this store runs in the background (settlements from streams'
    /// ends, health news, spend waiting for an absent Redis) are done, each within its own
    /// timeout: call it before the process exits so that no spend is lost (default: nothing
    /// to wait for).
    ///
    /// # Errors
    /// The store's error when it still cannot reach its backend; what could not be sent is
    /// then lost with the process.
    fn flush(&self) -> StoreFuture<()> {
        StoreFuture::ready(Ok(()))
    }

    /// Asks to be the one process that probes `target`'s half-open circuit, for at most `ttl`
    /// (default: yes). `false` means another process probes; its outcome arrives as news.
    fn acquire_probe(&self, target: &Arc<str>, ttl: Duration) -> StoreFuture<bool> {
        let _ = (target, ttl);
        StoreFuture::ready(Ok(true))
    }
}

/// The future a [`StateStore`] operation returns: complete at once, or a boxed future.
#[must_use = "a store operation does nothing until it completes"]
pub struct StoreFuture<T>(Inner<T>);

enum Inner<T> {
    Ready(Option<Result<T, Error>>),
    Boxed(Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>),
}

impl<T> StoreFuture<T> {
    /// A completed operation (an in-memory store's answer): awaiting it costs nothing.
    pub fn ready(result: Result<T, Error>) -> Self {
        StoreFuture(Inner::Ready(Some(result)))
    }

    /// An operation still to run (a store that does I/O).
    pub fn new(fut: impl Future<Output = Result<T, Error>> + Send + 'static) -> Self {
        StoreFuture(Inner::Boxed(Box::pin(fut)))
    }

    /// The result if the operation is already complete, else the future itself.
    pub fn now_or_later(self) -> Result<Result<T, Error>, Self> {
        match self.0 {
            Inner::Ready(Some(result)) => Ok(result),
            other => Err(StoreFuture(other)),
        }
    }
}

impl<T: Send + 'static> StoreFuture<T> {
    /// Completes the operation without waiting for it: at once when it is ready, else on a task
    /// of the current tokio runtime (outside one, the operation is dropped with a warning).
    /// Errors are logged; this is for bookkeeping that must happen where nothing can be awaited
    /// (a stream's end).
    pub(crate) fn complete_detached(self, what: &'static str) {
        match self.now_or_later() {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "state store: {what} failed"),
            Err(later) => match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move {
                        if let Err(err) = later.await {
                            tracing::warn!(error = %err, "state store: {what} failed");
                        }
                    });
                }
                Err(_) => tracing::warn!("state store: {what} dropped outside a tokio runtime"),
            },
        }
    }
}

impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Inner::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(Error::config(
                    "a store future was polled after it completed",
                ))
            })),
            Inner::Boxed(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Inner::Ready(_) => "StoreFuture(ready)",
            Inner::Boxed(_) => "StoreFuture(pending)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_convert_to_nanos_rounding_up() {
        assert_eq!(usd_to_nanos(1.0), 1_000_000_000);
        assert_eq!(usd_to_nanos(0.000_000_000_1), 1);
        assert_eq!(usd_to_nanos(-3.0), 0);
        assert_eq!(usd_to_nanos(f64::NAN), 0);
        assert_eq!(usd_to_nanos(f64::INFINITY), u64::MAX);
        assert!((nanos_to_usd(1_500_000_000) - 1.5).abs() < 1e-12);
    }

    #[tokio::test]
    async fn a_ready_future_answers_at_once_and_a_boxed_one_when_awaited() {
        let ready = StoreFuture::ready(Ok(3u32));
        assert_eq!(ready.now_or_later().unwrap().unwrap(), 3);
        let later = StoreFuture::new(async { Ok(4u32) });
        let later = later.now_or_later().unwrap_err();
        assert_eq!(later.await.unwrap(), 4);
    }

    #[test]
    fn the_store_is_object_safe() {
        fn is<T: Send + Sync + ?Sized>() {}
        is::<std::sync::Arc<dyn StateStore>>();
    }
}
