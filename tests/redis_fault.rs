//! A router with a budget in a `RedisStore`, while its Redis (a private `redis-server`) is killed
//! mid-run and started again: fail-open keeps serving every request, fail-closed refuses
//! budgeted requests fast with `StateUnavailable` until Redis is back; either way no request
//! hangs, and once Redis answers again its counters hold every settled cost and no reservation.
//!
//! The server saves its data just before it is killed, with requests in flight, so it comes back
//! with their reservations, as after a network partition: the settlements made meanwhile must
//! give them back when they are replayed. A Redis that stalls (a spinning script) rather than
//! dies runs what the store sent before it gave up: that must count once and hold nothing.
//! Skipped without `redis-server` unless `MODELGATE_REDIS_REQUIRED=1`.
#![cfg(feature = "redis")]

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use modelgate::pricing::ModelPrice;
use modelgate::router::{Budget, Router, Target};
use modelgate::state::{
    Claim, Nanos, OnError, RedisOptions, RedisStore, Reservation, StateStore, usd_to_nanos,
};
use modelgate::types::Usage;
use modelgate::{ChatProvider, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Message};
use tokio::sync::watch;

use redis_support::{RedisServer, unique_prefix};

/// No request may take longer than this, Redis up or down.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How many requests are in flight (reserved, waiting for the provider) when Redis dies.
const IN_FLIGHT: usize = 8;

/// Answers at once with 20 + 10 tokens, unless its gate is closed: then each call waits there.
struct Gated {
    calls: AtomicUsize,
    waiting: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gated {
    fn new() -> Arc<Gated> {
        Arc::new(Gated {
            calls: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            open: watch::Sender::new(true),
        })
    }

    fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
}

#[async_trait]
impl ChatProvider for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        if !*open.borrow_and_update() {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _ = open.wait_for(|o| *o).await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        let mut r = ChatResponse::new("gated", req.model.clone(), Message::assistant("ok"));
        r.usage = Some(Usage::new(20, 10));
        Ok(r)
    }

    async fn chat_stream(&self, _req: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::InvalidRequest, "no streams here"))
    }
}

fn price() -> ModelPrice {
    ModelPrice::new(1.0, 1.0)
}

fn req() -> ChatRequest {
    ChatRequest::new("chat").user("hello").max_tokens(100)
}

/// What the router reserves for `req()`: its estimated prompt and its `max_tokens`.
fn worst() -> Nanos {
    usd_to_nanos(price().estimate(modelgate::tokens::estimate_request(&req()), 100))
}

async fn chat(router: &Router) -> Result<ChatResponse, Error> {
    tokio::time::timeout(ANSWER_WITHIN, router.chat(&req()))
        .await
        .unwrap_or_else(|_| panic!("a request hung for {ANSWER_WITHIN:?}"))
}

/// `n` requests at once, each of which must succeed; what they cost, in nanos.
async fn serve(router: &Router, n: usize, when: &str) -> Nanos {
    join_all((0..n).map(|_| chat(router)))
        .await
        .into_iter()
        .map(|r| cost(r.unwrap_or_else(|e| panic!("{when}: a request failed: {e}"))))
        .sum()
}

fn cost(r: ChatResponse) -> Nanos {
    usd_to_nanos(r.cost.expect("a priced answer has a cost"))
}

/// The budget `all` as Redis itself holds it: (spent, reserved); `None` while Redis does not
/// answer.
async fn redis_counters(url: &str, prefix: &str) -> Option<(Nanos, Nanos)> {
    let read = async {
        let mut con = redis::Client::open(url)
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        let (spent, reserved): (Option<Nanos>, Option<Nanos>) = redis::cmd("HMGET")
            .arg(format!("{prefix}:budget:all"))
            .arg("spent")
            .arg("reserved")
            .query_async(&mut con)
            .await
            .ok()?;
        Some((spent.unwrap_or(0), reserved.unwrap_or(0)))
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()
        .flatten()
}

/// Polls Redis (every 50 ms, for up to 15 s) until the budget reads `(spent, reserved)`.
async fn await_redis_counters(url: &str, prefix: &str, expected: (Nanos, Nanos), when: &str) {
    let mut last = None;
    for _ in 0..300 {
        last = redis_counters(url, prefix).await;
        if last == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{when}: Redis holds (spent, reserved) {last:?}, not {expected:?}");
}

/// Polls (every 20 ms, for up to 15 s) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..750 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 15 s");
}

/// Makes Redis write its data to disk, so that a restart comes back with it.
async fn save(url: &str) {
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers before it is killed");
    redis::cmd("SAVE")
        .query_async::<()>(&mut con)
        .await
        .expect("SAVE");
}

struct Setup {
    server: RedisServer,
    url: String,
    prefix: String,
    store: Arc<RedisStore>,
    provider: Arc<Gated>,
    router: Router,
}

async fn setup(test: &str, on_error: OnError) -> Option<Setup> {
    let server = RedisServer::spawn()?;
    let url = server.url();
    let prefix = unique_prefix(test);
    let store = RedisStore::connect(
        RedisOptions::new(&url)
            .prefix(prefix.clone())
            .timeout(Duration::from_millis(250))
            .sync_interval(Duration::from_millis(100))
            .on_error(on_error),
    )
    .await
    .expect("RedisStore::connect");
    let provider = Gated::new();
    let router = Router::builder()
        .route(
            "chat",
            [Target::new(provider.clone(), "model").price(price())],
        )
        .budget(Budget::new("all", 1_000.0))
        .state_store(store.clone())
        .build()
        .unwrap();
    Some(Setup {
        server,
        url,
        prefix,
        store,
        provider,
        router,
    })
}

/// Runs `IN_FLIGHT` requests up to the provider and holds them there; saves Redis (their
/// reservations included) and kills it; then lets them finish, which they must.
async fn kill_with_requests_in_flight(s: &mut Setup, spent_before: Nanos) -> Nanos {
    s.provider.set_open(false);
    let held: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let router = s.router.clone();
            tokio::spawn(async move { chat(&router).await })
        })
        .collect();
    let provider = s.provider.clone();
    eventually("the requests reach the provider", || {
        provider.waiting.load(Ordering::SeqCst) == IN_FLIGHT
    })
    .await;
    assert_eq!(
        redis_counters(&s.url, &s.prefix).await,
        Some((spent_before, IN_FLIGHT as Nanos * worst())),
        "the requests in flight hold their reservations in Redis"
    );
    save(&s.url).await;
    tokio::task::block_in_place(|| s.server.kill());
    assert!(!s.server.is_running());
    s.provider.set_open(true);
    let mut spent = 0;
    for h in held {
        let r = h.await.expect("a request task panicked");
        spent += cost(r.expect("a request in flight when Redis died still succeeds"));
    }
    spent
}

/// Requests sent one after another by each of `workers` tasks until told to stop.
struct Load {
    stop: watch::Sender<bool>,
    done: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<(Nanos, usize)>>,
}

impl Load {
    /// Starts the load; a request may fail only with `StateUnavailable`, and only if
    /// `may_fail`.
    fn start(router: &Router, workers: usize, may_fail: bool) -> Load {
        let stop = watch::Sender::new(false);
        let done = Arc::new(AtomicUsize::new(0));
        let tasks = (0..workers)
            .map(|_| {
                let (router, stop, done) = (router.clone(), stop.subscribe(), done.clone());
                tokio::spawn(async move {
                    let (mut spent, mut failed) = (0, 0);
                    while !*stop.borrow() {
                        match chat(&router).await {
                            Ok(r) => spent += cost(r),
                            Err(e) => {
                                assert!(may_fail, "a request failed: {e}");
                                assert_eq!(e.kind(), ErrorKind::StateUnavailable, "{e}");
                                failed += 1;
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    (spent, failed)
                })
            })
            .collect();
        Load { stop, done, tasks }
    }

    /// Waits until `more` further requests have ended.
    async fn run_for(&self, more: usize) {
        let target = self.done.load(Ordering::SeqCst) + more;
        let done = self.done.clone();
        eventually("the load goes on", || done.load(Ordering::SeqCst) >= target).await;
    }

    /// Stops the load: what its requests cost, and how many failed.
    async fn stop(self) -> (Nanos, usize) {
        self.stop.send_replace(true);
        let mut total = (0, 0);
        for t in self.tasks {
            let (spent, failed) = t.await.expect("a load task panicked");
            total = (total.0 + spent, total.1 + failed);
        }
        total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_serves_every_request_through_a_redis_restart_and_replays_the_spend() {
    let Some(mut s) = setup("fault_fail_open", OnError::FailOpen).await else {
        return;
    };
    // Up: spend lands in Redis.
    let mut spent = serve(&s.router, 16, "before the kill").await;
    await_redis_counters(&s.url, &s.prefix, (spent, 0), "before the kill").await;

    spent += kill_with_requests_in_flight(&mut s, spent).await;

    // Down: every request is still served, counted by this process alone.
    spent += serve(&s.router, 16, "while Redis is down").await;
    assert!(s.store.is_degraded(), "the store noticed Redis is away");

    // Requests keep coming while Redis restarts and the store notices.
    let load = Load::start(&s.router, 4, false);
    load.run_for(20).await;
    tokio::task::block_in_place(|| s.server.restart());
    let store = s.store.clone();
    eventually("the store sees Redis again", || !store.is_degraded()).await;
    load.run_for(40).await;
    let (load_spent, _) = load.stop().await;
    spent += load_spent;

    // Up again.
    spent += serve(&s.router, 16, "after the restart").await;
    // Redis came back with the spend saved before the kill and the reservations of the requests
    // then in flight; the replay adds what was settled while it was away and returns those
    // reservations.
    await_redis_counters(&s.url, &s.prefix, (spent, 0), "after the restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_fast_while_redis_is_down_and_serves_again_once_it_is_back() {
    let Some(mut s) = setup("fault_fail_closed", OnError::FailClosed).await else {
        return;
    };
    let mut spent = serve(&s.router, 16, "before the kill").await;
    await_redis_counters(&s.url, &s.prefix, (spent, 0), "before the kill").await;

    // Requests that reserved before Redis died are answered; their settlement waits for Redis.
    spent += kill_with_requests_in_flight(&mut s, spent).await;

    // Down: budgeted requests fail fast, without reaching the provider.
    let calls = s.provider.calls.load(Ordering::SeqCst);
    for r in join_all((0..16).map(|_| chat(&s.router))).await {
        let err = r.expect_err("no budgeted request is served without Redis");
        assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
    }
    assert_eq!(s.provider.calls.load(Ordering::SeqCst), calls);
    assert!(s.store.is_degraded());
    assert_eq!(
        s.router.budget("all", None).await.unwrap_err().kind(),
        ErrorKind::StateUnavailable
    );

    // Requests keep coming while Redis restarts: refused until it answers, then served.
    let load = Load::start(&s.router, 4, true);
    load.run_for(20).await;
    tokio::task::block_in_place(|| s.server.restart());
    let store = s.store.clone();
    eventually("the store sees Redis again", || !store.is_degraded()).await;
    load.run_for(40).await;
    let (load_spent, refused) = load.stop().await;
    assert!(
        refused >= 20,
        "the load was refused while Redis was down ({refused})"
    );
    assert!(load_spent > 0, "the load was served once Redis was back");
    spent += load_spent;

    spent += serve(&s.router, 16, "after the restart").await;
    await_redis_counters(&s.url, &s.prefix, (spent, 0), "after the restart").await;
}

/// Busies the private Redis `server` for `ms` milliseconds with a script that spins (as a slow
/// script, a fork or a swap storm would), and returns once it is stalled: commands sent meanwhile
/// wait in their sockets and run after it, whether or not their clients still wait for them.
async fn stall(server: &RedisServer, ms: u64) -> tokio::task::JoinHandle<()> {
    const SPIN: &str = "local function now() local t = redis.call('TIME') \
        return t[1] * 1000 + math.floor(t[2] / 1000) end \
        local t0 = now() while now() - t0 < tonumber(ARGV[1]) do end return 1";
    let mut con = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .expect("Redis answers before it stalls");
    let spin = tokio::spawn(async move {
        redis::cmd("EVAL")
            .arg(SPIN)
            .arg(0)
            .arg(ms)
            .query_async::<i64>(&mut con)
            .await
            .expect("the spinning script runs");
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port()));
    for _ in 0..100 {
        let answered = tokio::task::spawn_blocking(move || {
            redis_support::answers_ping(addr, Duration::from_millis(50))
        })
        .await
        .unwrap();
        if !answered {
            return spin;
        }
    }
    panic!("Redis never stalled");
}

async fn stalled_store(
    server: &RedisServer,
    test: &str,
    on_error: OnError,
) -> (Arc<RedisStore>, String) {
    let prefix = unique_prefix(test);
    let store = RedisStore::connect(
        RedisOptions::new(server.url())
            .prefix(prefix.clone())
            .timeout(Duration::from_millis(200))
            .sync_interval(Duration::from_millis(100))
            .on_error(on_error),
    )
    .await
    .expect("RedisStore::connect");
    // Load every budget script into Redis (a script Redis has not seen yet would answer
    // NOSCRIPT after the stall instead of running).
    let warm = [Claim {
        key: "warm-up".into(),
        window: 0,
        limit: 10,
        expires: 0,
    }];
    for spent in [0, 1] {
        let Reservation::Granted { hold } = store.reserve(&warm, 1).await.unwrap() else {
            panic!("the warm-up was refused")
        };
        store.settle(&warm, hold, 1, spent).await.unwrap();
    }
    store.counters("warm-up", 0).await.unwrap();
    (store, prefix)
}

fn all(limit: Nanos) -> [Claim; 1] {
    [Claim {
        key: "all".into(),
        window: 0,
        limit,
        expires: 0,
    }]
}

/// Redis stalls for longer than the store's timeout while a settlement is on its way: Redis
/// runs it once it goes on, and the store, which timed out, replays it. The spend must count
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_that_timed_out_in_a_stalled_redis_counts_once() {
    let Some(server) = RedisServer::spawn() else {
        return;
    };
    let (store, prefix) = stalled_store(&server, "stalled_settle", OnError::FailOpen).await;
    let claims = all(1_000);
    let Reservation::Granted { hold } = store.reserve(&claims, 100).await.unwrap() else {
        panic!("refused")
    };
    let stalled = stall(&server, 1_000).await;
    tokio::time::timeout(ANSWER_WITHIN, store.settle(&claims, hold, 100, 40))
        .await
        .expect("settle answers in time")
        .expect("a settlement Redis cannot take now is kept for later");
    stalled.await.unwrap();
    // Once Redis has gone on and the store has caught up, the counter must hold one spend.
    let (mut stable, mut last) = (0, None);
    for _ in 0..300 {
        let now = redis_counters(&server.url(), &prefix).await;
        if let Some((spent, _)) = now {
            assert!(
                spent <= 40,
                "the spend of 40 counted more than once: {now:?}"
            );
        }
        if now == Some((40, 0)) && !store.is_degraded() && now == last {
            stable += 1;
            if stable == 20 {
                return;
            }
        } else {
            stable = 0;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the counter never settled at (40, 0): {last:?}");
}

/// A reservation that timed out in a stalled Redis is refused (fail-closed), but Redis runs the
/// script once it goes on: the store must give that reservation back, not leave it holding the
/// budget for the whole `reservation_ttl` (10 minutes by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_that_timed_out_in_a_stalled_redis_does_not_hold_the_budget() {
    let Some(server) = RedisServer::spawn() else {
        return;
    };
    let (store, prefix) = stalled_store(&server, "stalled_reserve", OnError::FailClosed).await;
    let claims = all(1_000);
    let stalled = stall(&server, 1_000).await;
    let err = tokio::time::timeout(ANSWER_WITHIN, store.reserve(&claims, 100))
        .await
        .expect("reserve answers in time")
        .expect_err("a stalled Redis grants nothing in time");
    assert_eq!(err.kind(), ErrorKind::StateUnavailable, "{err}");
    stalled.await.unwrap();
    // The store's own connection answers again: what it sent before has run.
    let mut answers = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            answers = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answers, "the store reaches Redis again");
    let mut last = None;
    for _ in 0..200 {
        last = redis_counters(&server.url(), &prefix).await;
        if last == Some((0, 0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a refused reservation still holds the budget 10 s on: (spent, reserved) {last:?}");
}
