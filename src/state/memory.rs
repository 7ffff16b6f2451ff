//! The in-process [`StateStore`]: a map of counters under one mutex, held for a few integer
//! operations and never across an await. An ordered map: a router has few budget keys, and
//! comparing short names costs less than hashing them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Claim, Counters, HoldId, Nanos, Reservation, StateStore, StoreFuture};

/// A [`StateStore`] in this process's memory (the router's default). Its operations complete at
/// once; counters live as long as the store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    counters: Mutex<BTreeMap<Arc<str>, Counter>>,
    holds: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    window: u64,
    spent: Nanos,
    reserved: Nanos,
}

impl Counter {
    /// Rolls the counter into `window` if that is later than its own: spend starts again,
    /// reservations in flight carry over.
    fn roll(&mut self, window: u64) {
        if window > self.window {
            self.window = window;
            self.spent = 0;
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_counters<T>(&self, f: impl FnOnce(&mut BTreeMap<Arc<str>, Counter>) -> T) -> T {
        // Counters are plain numbers: a panic elsewhere cannot leave them unusable.
        let mut map = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }
}

fn counter<'m>(map: &'m mut BTreeMap<Arc<str>, Counter>, claim: &Claim) -> &'m mut Counter {
    // One search, keyed by the claim's shared key (a reference count, no copy of the name).
    let c = map.entry(claim.key.clone()).or_default();
    c.roll(claim.window);
    c
}

impl StateStore for MemoryStore {
    fn reserve(&self, claims: &[Claim], amount: Nanos) -> StoreFuture<Reservation> {
        let answer = self.with_counters(|map| {
            for (i, claim) in claims.iter().enumerate() {
                let c = counter(map, claim);
                let total = c.spent.saturating_add(c.reserved).saturating_add(amount);
                if total > claim.limit {
                    return Reservation::Refused {
                        claim: i,
                        spent: c.spent,
                        reserved: c.reserved,
                    };
                }
            }
            for claim in claims {
                let c = counter(map, claim);
                c.reserved = c.reserved.saturating_add(amount);
            }
            Reservation::Granted {
                hold: self.holds.fetch_add(1, Ordering::Relaxed),
            }
        });
        StoreFuture::ready(Ok(answer))
    }

    fn settle(
        &self,
        claims: &[Claim],
        _hold: HoldId,
        reserved: Nanos,
        spent: Nanos,
    ) -> StoreFuture<()> {
        self.with_counters(|map| {
            for claim in claims {
                let c = counter(map, claim);
                c.reserved = c.reserved.saturating_sub(reserved);
                c.spent = c.spent.saturating_add(spent);
            }
        });
        StoreFuture::ready(Ok(()))
    }

    fn release(&self, claims: &[Claim], _hold: HoldId, reserved: Nanos) -> StoreFuture<()> {
        self.with_counters(|map| {
            for claim in claims {
                let c = counter(map, claim);
                c.reserved = c.reserved.saturating_sub(reserved);
            }
        });
        StoreFuture::ready(Ok(()))
    }

    fn counters(&self, key: &str, window: u64) -> StoreFuture<Counters> {
        let counters = self.with_counters(|map| match map.get(key) {
            Some(c) if c.window >= window => Counters {
                spent: c.spent,
                reserved: c.reserved,
            },
            // An older window has rolled over: nothing spent in this one yet.
            Some(c) => Counters {
                spent: 0,
                reserved: c.reserved,
            },
            None => Counters::default(),
        });
        StoreFuture::ready(Ok(counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(key: &str, window: u64, limit: Nanos) -> Claim {
        Claim {
            key: key.into(),
            window,
            limit,
            expires: 0,
        }
    }

    async fn counters(store: &MemoryStore, key: &str, window: u64) -> Counters {
        store.counters(key, window).await.unwrap()
    }

    #[tokio::test]
    async fn a_reservation_counts_until_settled_and_then_the_real_cost_does() {
        let store = MemoryStore::new();
        let claims = [claim("daily", 0, 100)];
        assert_eq!(
            store.reserve(&claims, 60).await.unwrap(),
            Reservation::Granted { hold: 0 }
        );
        assert_eq!(
            store.reserve(&claims, 60).await.unwrap(),
            Reservation::Refused {
                claim: 0,
                spent: 0,
                reserved: 60
            }
        );
        store.settle(&claims, 0, 60, 25).await.unwrap();
        assert_eq!(
            counters(&store, "daily", 0).await,
            Counters {
                spent: 25,
                reserved: 0
            }
        );
        assert_eq!(
            store.reserve(&claims, 75).await.unwrap(),
            Reservation::Granted { hold: 1 }
        );
        store.release(&claims, 1, 75).await.unwrap();
        assert_eq!(
            counters(&store, "daily", 0).await,
            Counters {
                spent: 25,
                reserved: 0
            }
        );
    }

    #[tokio::test]
    async fn a_refusal_by_one_counter_reserves_on_none() {
        let store = MemoryStore::new();
        let claims = [claim("all", 0, 1_000), claim("team", 0, 10)];
        assert_eq!(
            store.reserve(&claims, 11).await.unwrap(),
            Reservation::Refused {
                claim: 1,
                spent: 0,
                reserved: 0
            }
        );
        assert_eq!(counters(&store, "all", 0).await, Counters::default());
    }

    #[tokio::test]
    async fn a_new_window_starts_spend_afresh_and_keeps_reservations_in_flight() {
        let store = MemoryStore::new();
        let old = [claim("hourly", 3_600, 100)];
        store.reserve(&old, 40).await.unwrap();
        store.settle(&old, 0, 40, 90).await.unwrap();
        store.reserve(&old, 10).await.unwrap();
        let new = [claim("hourly", 7_200, 100)];
        assert_eq!(
            counters(&store, "hourly", 7_200).await,
            Counters {
                spent: 0,
                reserved: 10
            }
        );
        assert!(matches!(
            store.reserve(&new, 90).await.unwrap(),
            Reservation::Granted { .. }
        ));
        // The old window's request settles into the new window.
        store.settle(&old, 1, 10, 5).await.unwrap();
        assert_eq!(
            counters(&store, "hourly", 7_200).await,
            Counters {
                spent: 5,
                reserved: 90
            }
        );
    }

    #[tokio::test]
    async fn concurrent_reservations_never_exceed_the_limit() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(std::thread::spawn(move || {
                let claims = [claim("k", 0, 1_000)];
                let mut granted = 0;
                for _ in 0..500 {
                    let r = store.reserve(&claims, 7).now_or_later().unwrap().unwrap();
                    if matches!(r, Reservation::Granted { .. }) {
                        granted += 1;
                    }
                }
                granted
            }));
        }
        let granted: u64 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 1_000 / 7);
    }
}
