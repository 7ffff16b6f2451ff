//! `RedisStore` against a real Redis (`REDIS_URL`; skipped without one unless
//! `MODELGATE_REDIS_REQUIRED=1`): budget operations stay atomic across store instances (as across
//! processes), windows roll over as in `MemoryStore`, a dead process's reservations lapse, every
//! key expires, and an unreachable Redis fails closed or open as configured, never hanging.
#![cfg(feature = "redis")]

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use modelgate::ErrorKind;
use modelgate::state::{
    Claim, Counters, HoldId, Nanos, OnError, RedisOptions, RedisStore, Reservation, StateStore,
};

use redis_support::{closed_port_url, redis_url, unique_prefix};

/// A guard for operations that must answer: a hang fails the test instead of stalling it.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn claim(key: &str, limit: Nanos) -> Claim {
    Claim {
        key: key.into(),
        window: 0,
        limit,
        expires: 0,
    }
}

/// A claim on the hourly window starting at `start` (Unix seconds).
fn hourly(key: &str, start: u64, limit: Nanos) -> Claim {
    Claim {
        key: key.into(),
        window: start,
        limit,
        expires: start + 3_600,
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The start of the current hour, in Unix seconds.
fn this_hour() -> u64 {
    let now = now_unix();
    now - now % 3_600
}

async fn connect(options: RedisOptions) -> Arc<RedisStore> {
    RedisStore::connect(options)
        .await
        .expect("RedisStore::connect")
}

/// A store on `url` under a prefix of its own.
async fn store(url: &str, test: &str) -> (Arc<RedisStore>, String) {
    let prefix = unique_prefix(test);
    let store = connect(RedisOptions::new(url).prefix(prefix.clone())).await;
    (store, prefix)
}

async fn reserve(store: &RedisStore, claims: &[Claim], amount: Nanos) -> Reservation {
    tokio::time::timeout(ANSWER_WITHIN, store.reserve(claims, amount))
        .await
        .expect("reserve answers")
        .expect("reserve succeeds")
}

/// Reserves `amount`, which must be granted; its hold.
async fn granted(store: &RedisStore, claims: &[Claim], amount: Nanos) -> HoldId {
    match reserve(store, claims, amount).await {
        Reservation::Granted { hold } => hold,
        refused => panic!("reserving {amount} was refused: {refused:?}"),
    }
}

async fn counters(store: &RedisStore, key: &str, window: u64) -> Counters {
    tokio::time::timeout(ANSWER_WITHIN, store.counters(key, window))
        .await
        .expect("counters answers")
        .expect("counters succeeds")
}

async fn settle(store: &RedisStore, claims: &[Claim], hold: HoldId, reserved: Nanos, spent: Nanos) {
    tokio::time::timeout(ANSWER_WITHIN, store.settle(claims, hold, reserved, spent))
        .await
        .expect("settle answers")
        .expect("settle succeeds");
}

async fn release(store: &RedisStore, claims: &[Claim], hold: HoldId, reserved: Nanos) {
    tokio::time::timeout(ANSWER_WITHIN, store.release(claims, hold, reserved))
        .await
        .expect("release answers")
        .expect("release succeeds");
}

/// Polls `key`'s counters (every 50 ms, for up to 10 s) until `done` holds; the last reading.
async fn poll_counters(
    store: &RedisStore,
    key: &str,
    window: u64,
    what: &str,
    done: impl Fn(Counters) -> bool,
) -> Counters {
    let mut last = Counters::default();
    for _ in 0..200 {
        last = counters(store, key, window).await;
        if done(last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: still {last:?} after 10 s");
}

/// A plain connection to the same Redis, to look at what the store wrote.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("a plain connection to REDIS_URL")
}

#[tokio::test]
async fn a_reservation_counts_until_settled_and_then_the_real_cost_does() {
    let Some(url) = redis_url() else { return };
    let (store, _) = store(&url, "counts_until_settled").await;
    let claims = [claim("daily", 100)];
    let first = granted(&store, &claims, 60).await;
    assert_eq!(
        reserve(&store, &claims, 60).await,
        Reservation::Refused {
            claim: 0,
            spent: 0,
            reserved: 60
        }
    );
    settle(&store, &claims, first, 60, 25).await;
    assert_eq!(
        counters(&store, "daily", 0).await,
        Counters {
            spent: 25,
            reserved: 0
        }
    );
    let second = granted(&store, &claims, 75).await;
    assert_ne!(first, second, "each reservation has a hold of its own");
    release(&store, &claims, second, 75).await;
    assert_eq!(
        counters(&store, "daily", 0).await,
        Counters {
            spent: 25,
            reserved: 0
        }
    );
    // A counter never used reads as zero.
    assert_eq!(counters(&store, "never", 0).await, Counters::default());
}

#[tokio::test]
async fn a_refusal_by_one_claim_of_several_reserves_on_none_and_reports_its_counters() {
    let Some(url) = redis_url() else { return };
    let (store, _) = store(&url, "refusal_reserves_on_none").await;
    let claims = [claim("all", 1_000), claim("team", 10), claim("user", 1_000)];
    let h = granted(&store, &claims, 4).await;
    settle(&store, &claims, h, 4, 3).await;
    granted(&store, &claims, 5).await;
    // team: 3 spent + 5 reserved + 3 > 10.
    assert_eq!(
        reserve(&store, &claims, 3).await,
        Reservation::Refused {
            claim: 1,
            spent: 3,
            reserved: 5
        }
    );
    let untouched = Counters {
        spent: 3,
        reserved: 5,
    };
    assert_eq!(counters(&store, "all", 0).await, untouched);
    assert_eq!(counters(&store, "team", 0).await, untouched);
    assert_eq!(counters(&store, "user", 0).await, untouched);
    // Exactly what fits is granted.
    granted(&store, &claims, 2).await;
    assert_eq!(counters(&store, "user", 0).await.reserved, 7);
}

#[tokio::test]
async fn a_new_window_starts_spend_afresh_and_keeps_reservations_in_flight() {
    let Some(url) = redis_url() else { return };
    let (store, _) = store(&url, "new_window").await;
    let hour = this_hour();
    let old = [hourly("hourly", hour, 100)];
    let h = granted(&store, &old, 40).await;
    settle(&store, &old, h, 40, 90).await;
    let in_flight = granted(&store, &old, 10).await;
    assert_eq!(
        reserve(&store, &old, 1).await,
        Reservation::Refused {
            claim: 0,
            spent: 90,
            reserved: 10
        }
    );
    let next = hour + 3_600;
    let new = [hourly("hourly", next, 100)];
    assert_eq!(
        counters(&store, "hourly", next).await,
        Counters {
            spent: 0,
            reserved: 10
        }
    );
    granted(&store, &new, 90).await;
    // The old window's request settles into the new window.
    settle(&store, &old, in_flight, 10, 5).await;
    assert_eq!(
        counters(&store, "hourly", next).await,
        Counters {
            spent: 5,
            reserved: 90
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_stores_of_sixteen_tasks_never_overshoot_and_count_every_settled_cost() {
    let Some(url) = redis_url() else { return };
    const LIMIT: Nanos = 1_000;
    const AMOUNT: Nanos = 10;
    const ROUNDS: usize = 12;
    let prefix = unique_prefix("four_stores");
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(connect(RedisOptions::new(&url).prefix(prefix.clone())).await);
    }
    // What the tasks know for sure is held or spent: a hold counts from when its grant returns
    // until its settle starts, a cost from when its settle returns. That never exceeds what the
    // store counts, so it may never exceed the limit either.
    let held = Arc::new(AtomicU64::new(0));
    let spent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..16u64 {
            let (store, held, spent) = (store.clone(), held.clone(), spent.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(s as u64 * 100 + t);
                let claims = [claim("shared", LIMIT)];
                let (mut grants, mut refusals) = (0u64, 0u64);
                for _ in 0..ROUNDS {
                    match reserve(&store, &claims, AMOUNT).await {
                        Reservation::Granted { hold } => {
                            grants += 1;
                            let now = held.fetch_add(AMOUNT, Ordering::SeqCst) + AMOUNT;
                            let known = now + spent.load(Ordering::SeqCst);
                            assert!(known <= LIMIT, "{known} held or spent, over {LIMIT}");
                            tokio::task::yield_now().await;
                            let cost = rng.u64(0..=AMOUNT);
                            held.fetch_sub(AMOUNT, Ordering::SeqCst);
                            settle(&store, &claims, hold, AMOUNT, cost).await;
                            spent.fetch_add(cost, Ordering::SeqCst);
                        }
                        Reservation::Refused {
                            claim,
                            spent,
                            reserved,
                        } => {
                            refusals += 1;
                            assert_eq!(claim, 0);
                            assert!(
                                spent + reserved + AMOUNT > LIMIT,
                                "refused though {spent} spent + {reserved} reserved + {AMOUNT} \
                                 fits {LIMIT}"
                            );
                        }
                    }
                }
                (grants, refusals)
            }));
        }
    }
    let (mut grants, mut refusals) = (0, 0);
    for task in tasks {
        let (g, r) = task.await.expect("a task panicked");
        grants += g;
        refusals += r;
    }
    assert_eq!(grants + refusals, 64 * ROUNDS as u64);
    // 768 tries of 10 against 1,000 that costs 5 a try on average: the budget ran out.
    assert!(
        refusals > 0,
        "the limit was never reached ({grants} grants)"
    );
    assert!(grants >= LIMIT / AMOUNT, "only {grants} grants");
    let total = spent.load(Ordering::SeqCst);
    assert!(total <= LIMIT);
    for store in &stores {
        assert_eq!(
            counters(store, "shared", 0).await,
            Counters {
                spent: total,
                reserved: 0
            }
        );
    }
}

#[tokio::test]
async fn a_dead_stores_reservation_stops_counting_after_the_reservation_ttl() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("leaked_reservation");
    let claims = [claim("leaky", 100)];
    let other = connect(RedisOptions::new(&url).prefix(prefix.clone())).await;
    let leaker = connect(
        RedisOptions::new(&url)
            .prefix(prefix)
            .reservation_ttl(Duration::from_secs(1)),
    )
    .await;
    granted(&leaker, &claims, 40).await;
    // Its process ends without settling.
    drop(leaker);
    assert_eq!(
        reserve(&other, &claims, 61).await,
        Reservation::Refused {
            claim: 0,
            spent: 0,
            reserved: 40
        },
        "the reservation counts while its lease runs"
    );
    poll_counters(&other, "leaky", 0, "the leaked reservation", |c| {
        c.reserved == 0
    })
    .await;
    let h = granted(&other, &claims, 100).await;
    settle(&other, &claims, h, 100, 100).await;
    assert_eq!(
        counters(&other, "leaky", 0).await,
        Counters {
            spent: 100,
            reserved: 0
        }
    );
}

#[tokio::test]
async fn settling_a_lapsed_hold_adds_its_spend_and_leaves_other_holds_reserved() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("lapsed_hold");
    let claims = [claim("lapsed", 1_000)];
    let short = connect(
        RedisOptions::new(&url)
            .prefix(prefix.clone())
            .reservation_ttl(Duration::from_secs(1)),
    )
    .await;
    let long = connect(RedisOptions::new(&url).prefix(prefix)).await;
    let lapsing = granted(&short, &claims, 30).await;
    let kept = granted(&long, &claims, 20).await;
    assert_eq!(counters(&long, "lapsed", 0).await.reserved, 50);
    poll_counters(&long, "lapsed", 0, "the short lease", |c| c.reserved == 20).await;
    // The late settlement counts what was spent, and returns nothing it no longer holds.
    settle(&short, &claims, lapsing, 30, 25).await;
    assert_eq!(
        counters(&long, "lapsed", 0).await,
        Counters {
            spent: 25,
            reserved: 20
        }
    );
    // So does a late release, and a second settlement of the same hold returns nothing either.
    let again = granted(&short, &claims, 5).await;
    poll_counters(&long, "lapsed", 0, "the second short lease", |c| {
        c.reserved == 20
    })
    .await;
    release(&short, &claims, again, 5).await;
    settle(&short, &claims, lapsing, 30, 0).await;
    assert_eq!(
        counters(&long, "lapsed", 0).await,
        Counters {
            spent: 25,
            reserved: 20
        }
    );
    settle(&long, &claims, kept, 20, 20).await;
    assert_eq!(
        counters(&long, "lapsed", 0).await,
        Counters {
            spent: 45,
            reserved: 0
        }
    );
}

#[tokio::test]
async fn every_key_the_store_writes_expires_and_other_prefixes_are_untouched() {
    let Some(url) = redis_url() else { return };
    let mut con = raw(&url).await;
    let (store, prefix) = store(&url, "keys_expire").await;
    let neighbour = unique_prefix("keys_expire_neighbour");
    // A key of another prefix that looks like a budget, without a TTL.
    let foreign = format!("{neighbour}:budget:all");
    redis::cmd("HSET")
        .arg(&foreign)
        .arg("spent")
        .arg(7)
        .query_async::<()>(&mut con)
        .await
        .unwrap();

    let hour = this_hour();
    let claims = [claim("all", 1_000), hourly("hourly", hour, 1_000)];
    let h = granted(&store, &claims, 100).await;
    settle(&store, &claims, h, 100, 40).await;
    let h = granted(&store, &claims, 50).await;
    release(&store, &claims, h, 50).await;
    granted(&store, &claims, 30).await; // still in flight
    counters(&store, "all", 0).await;

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k.contains("all")) && keys.iter().any(|k| k.contains("hourly")),
        "{keys:?}"
    );
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(ttl > 0, "`{key}` has no TTL ({ttl})");
    }
    let foreign_keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{neighbour}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(foreign_keys, std::slice::from_ref(&foreign));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&foreign)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ttl, -1, "the other prefix's key keeps no TTL");
    let spent: String = redis::cmd("HGET")
        .arg(&foreign)
        .arg("spent")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(spent, "7");
    // And a store under the other prefix sees none of this one's spend.
    let other = connect(RedisOptions::new(&url).prefix(unique_prefix("keys_expire_other"))).await;
    assert_eq!(counters(&other, "all", 0).await, Counters::default());
    redis::cmd("DEL")
        .arg(&foreign)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
}

#[tokio::test]
async fn fail_closed_an_unreachable_redis_fails_fast_with_state_unavailable() {
    let store = connect(
        RedisOptions::new(closed_port_url())
            .timeout(Duration::from_millis(250))
            .on_error(OnError::FailClosed),
    )
    .await;
    let claims = [claim("all", 1_000)];
    for _ in 0..3 {
        let err = tokio::time::timeout(ANSWER_WITHIN, store.reserve(&claims, 10))
            .await
            .expect("reserve answers in time, not hangs")
            .expect_err("nothing can be reserved without Redis");
        assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
        let err = tokio::time::timeout(ANSWER_WITHIN, store.counters("all", 0))
            .await
            .expect("counters answers in time, not hangs")
            .expect_err("nothing can be read without Redis");
        assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
    }
    assert!(store.is_degraded());
    let err = tokio::time::timeout(ANSWER_WITHIN, store.ping())
        .await
        .expect("ping answers in time")
        .expect_err("no Redis to ping");
    assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
}

#[tokio::test]
async fn fail_open_an_unreachable_redis_falls_back_to_local_counters() {
    let store = connect(
        RedisOptions::new(closed_port_url())
            .timeout(Duration::from_millis(250))
            .on_error(OnError::FailOpen),
    )
    .await;
    let claims = [claim("all", 100)];
    let h = tokio::time::timeout(ANSWER_WITHIN, store.reserve(&claims, 60))
        .await
        .expect("reserve answers in time, not hangs")
        .expect("fail-open grants without Redis");
    let Reservation::Granted { hold } = h else {
        panic!("refused: {h:?}")
    };
    assert!(store.is_degraded());
    // The local fallback still keeps the limit.
    assert!(matches!(
        reserve(&store, &claims, 60).await,
        Reservation::Refused {
            claim: 0,
            reserved: 60,
            ..
        }
    ));
    settle(&store, &claims, hold, 60, 45).await;
    assert_eq!(
        counters(&store, "all", 0).await,
        Counters {
            spent: 45,
            reserved: 0
        }
    );
    assert!(store.is_degraded());
}

/// A "Redis" that accepts connections and never answers; its URL. Stops when the task does.
async fn silent_redis() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out_in_either_mode() {
    let (url, server) = silent_redis().await;
    let claims = [claim("all", 1_000)];
    let closed = connect(
        RedisOptions::new(&url)
            .timeout(Duration::from_millis(200))
            .on_error(OnError::FailClosed),
    )
    .await;
    let open = connect(
        RedisOptions::new(&url)
            .timeout(Duration::from_millis(200))
            .on_error(OnError::FailOpen),
    )
    .await;
    for _ in 0..3 {
        let err = tokio::time::timeout(ANSWER_WITHIN, closed.reserve(&claims, 10))
            .await
            .expect("fail-closed reserve answers in time, not hangs")
            .expect_err("a silent Redis grants nothing");
        assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
        let answer = tokio::time::timeout(ANSWER_WITHIN, open.reserve(&claims, 10))
            .await
            .expect("fail-open reserve answers in time, not hangs")
            .expect("fail-open grants locally");
        assert!(matches!(answer, Reservation::Granted { .. }), "{answer:?}");
    }
    assert!(closed.is_degraded() && open.is_degraded());
    assert_eq!(counters(&open, "all", 0).await.reserved, 30);
    server.abort();
}
