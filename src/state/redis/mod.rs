//! The Redis [`StateStore`]: one budget, one set of circuits and one view of rate-limited
//! targets for a fleet of routers.
//!
//! - **Budgets**: each reserve, settle and release is one Lua script (`EVALSHA`), atomic across
//!   processes. A reservation is a member of a sorted set scored by its lease's end, so the
//!   reservation of a process that died lapses after [`RedisOptions::reservation_ttl`] instead
//!   of holding the budget forever.
//! - **Health**: rests and circuit changes are written under the prefix (with TTLs) and
//!   published on one channel; every store subscribes and hands the news to its routers, which
//!   keep reading their local view on the request path. A sync task polls the same keys every
//!   [`RedisOptions::sync_interval`] to heal news missed while disconnected, flushes batched
//!   circuit outcomes and replays what failed while Redis was away.
//! - **Faults**: every call has a timeout. Past it, [`OnError`] decides: fail-open falls back to
//!   an in-process [`MemoryStore`] (and replays the spend it settled there when Redis returns),
//!   fail-closed refuses budgeted requests with [`ErrorKind::StateUnavailable`]. Either way a
//!   warning goes to `tracing` once per outage, and (feature `metrics`) the counter
//!   `modelgate.state.errors{operation}` and the gauge `modelgate.state.degraded` say so
//!   (`modelgate_state_errors` and `modelgate_state_degraded` in Prometheus).
//!
//! The connection is the `redis` crate's tokio `ConnectionManager` (RESP3, so that one
//! connection carries both commands and the subscription), which reconnects by itself.

mod scripts;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::{ProtocolVersion, PushInfo, PushKind, Script, Value};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, mpsc};

use super::{
    Claim, Counters, HealthNews, HealthSink, HoldId, MemoryStore, Nanos, Reservation, StateStore,
    StoreFuture,
};
use crate::credentials::CredentialSource;
use crate::error::{Error, ErrorKind};
use crate::router::CircuitBreaker;

/// The largest amount a Lua script counts exactly (2^53 nanos, about 9 million USD): larger
/// limits are capped to it.
const MAX_EXACT: Nanos = 1 << 53;

/// Fallback holds (made in the local store while Redis was away) carry this bit.
const LOCAL_HOLD: HoldId = 1 << 63;

/// A Redis hold's id is its lease's end (Unix ms, 42 bits) above a counter (21 bits), so that
/// its settlement can tell a lapsed hold from one settled already.
const HOLD_COUNTER_BITS: u32 = 21;

/// How long a credit's marker (spend made while Redis was away, replayed once) is kept.
const CREDIT_TTL: Duration = Duration::from_secs(86_400);

/// A counter of a budget without window is forgotten after this long unused.
const IDLE_TTL: Duration = Duration::from_secs(90 * 86_400);

/// At most this many operations wait for Redis to come back; older ones are dropped (with a
/// warning) beyond it.
const MAX_REPLAY: usize = 100_000;

/// What a store does when Redis cannot be reached in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Go on with this process's own state: budgets count in memory (and the spend is replayed
    /// into Redis when it returns), health stays local. Requests keep flowing; a fleet may
    /// overspend by what each process spends while Redis is away.
    #[default]
    FailOpen,
    /// Refuse every request a budget covers with [`ErrorKind::StateUnavailable`] until Redis
    /// returns; requests no budget covers still go.
    FailClosed,
}

impl OnError {
    /// `"fail-open"` or `"fail-closed"`, as a config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::FailOpen => "fail-open",
            OnError::FailClosed => "fail-closed",
        }
    }

    /// Parses `"fail-open"` or `"fail-closed"`; `None` for anything else.
    pub fn parse(text: &str) -> Option<OnError> {
        match text {
            "fail-open" => Some(OnError::FailOpen),
            "fail-closed" => Some(OnError::FailClosed),
            _ => None,
        }
    }
}

/// How to reach Redis and how to behave when it is away. `Debug` never shows a password.
///
/// ```
/// use std::time::Duration;
/// use modelgate::state::{OnError, RedisOptions};
///
/// let options = RedisOptions::new("redis://127.0.0.1:6379")
///     .prefix("gateway-eu")
///     .timeout(Duration::from_millis(100))
///     .on_error(OnError::FailClosed);
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    url: String,
    prefix: String,
    timeout: Duration,
    on_error: OnError,
    username: Option<String>,
    password: Option<Arc<dyn CredentialSource>>,
    reservation_ttl: Duration,
    sync_interval: Duration,
}

impl RedisOptions {
    /// Redis at `url`: `redis://HOST:PORT/DB` or, with TLS, `rediss://…`; a
    /// `user:password@` in it works, though [`password`](Self::password) keeps the password out
    /// of the URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: "modelgate".to_owned(),
            timeout: Duration::from_millis(250),
            on_error: OnError::FailOpen,
            username: None,
            password: None,
            reservation_ttl: Duration::from_secs(600),
            sync_interval: Duration::from_secs(1),
        }
    }

    /// What every key and the channel start with (default `modelgate`): fleets sharing one Redis
    /// keep apart by their prefixes.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one Redis call may take before [`OnError`] decides (default 250 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to do when Redis is away (default [`OnError::FailOpen`]).
    #[must_use]
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// The ACL user to log in as.
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Where the password comes from (read once, when connecting).
    #[must_use]
    pub fn password(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.password = Some(source);
        self
    }

    /// How long a reservation holds budget if its process never settles it (default 10 min):
    /// make it longer than your longest request.
    #[must_use]
    pub fn reservation_ttl(mut self, ttl: Duration) -> Self {
        self.reservation_ttl = ttl;
        self
    }

    /// How often the store re-reads shared health, flushes circuit outcomes and checks on a
    /// Redis that was away (default 1 s).
    #[must_use]
    pub fn sync_interval(mut self, every: Duration) -> Self {
        self.sync_interval = every;
        self
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("reservation_ttl", &self.reservation_ttl)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

/// `url` without the password of a `user:password@` part.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:[REDACTED]@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_owned(),
    }
}

/// Budget counters, circuits and rests in Redis, shared by every router (in any process) that
/// uses the same Redis and prefix. See the [module](crate::state) and this file's notes.
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    endpoint: String,
    prefix: String,
    channel: String,
    /// Names this process's messages (which it ignores when they come back) and holds.
    instance: String,
    timeout: Duration,
    on_error: OnError,
    reservation_ttl: Duration,
    scripts: Scripts,
    holds: AtomicU64,
    fallback: MemoryStore,
    degraded: AtomicBool,
    replay: Mutex<VecDeque<Replay>>,
    sinks: Mutex<Vec<Watch>>,
    /// Counters as last seen (by a read or by this process's own reservations), with when, for
    /// `recent_counters`.
    recent: Mutex<HashMap<(Arc<str>, u64), Seen>>,
    sync_interval: Duration,
    /// Rests and openings that could not be sent, to send once Redis answers (if still in
    /// force then).
    unsent: Mutex<VecDeque<HealthNews>>,
    outcomes: Mutex<HashMap<Arc<str>, Outcomes>>,
    /// Background operations not yet done (settlements, health news), and their end.
    busy: AtomicUsize,
    idle: Notify,
    /// Wakes the sync task early (Redis answers again, spend waits for replay, a router
    /// started watching).
    wake: Arc<Notify>,
}

struct Scripts {
    reserve: Script,
    settle: Script,
    counters: Script,
    rest: Script,
    open: Script,
    close: Script,
    record: Script,
}

/// A counter as last seen, and when.
type Seen = (Counters, Instant);

struct Watch {
    targets: Vec<Arc<str>>,
    sink: Weak<dyn HealthSink>,
}

/// Successes not yet told to the fleet (failures go at once).
struct Outcomes {
    successes: u64,
    breaker: CircuitBreaker,
}

/// A budget operation that failed while Redis was away, to run when it returns. A settle of a
/// hold that lapsed meanwhile still adds its spend.
struct Replay {
    claims: Vec<Claim>,
    member: String,
    reserved: Nanos,
    spent: Nanos,
    /// For a credit: the key of its marker, which makes it count once.
    credit: Option<String>,
    /// Whether it was sent once (it may have run): a credit sent once takes no more spend.
    sent: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("endpoint", &self.inner.endpoint)
            .field("prefix", &self.inner.prefix)
            .field("on_error", &self.inner.on_error)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unavailable(what: &str, err: &dyn fmt::Display) -> Error {
    Error::new(
        ErrorKind::StateUnavailable,
        format!("the state store (Redis) cannot {what}: {err}"),
    )
}

impl RedisStore {
    /// A store on the Redis `options` names. The connection is made on first use (and remade
    /// after a failure), so Redis need not be up yet; the store subscribes to health news in
    /// the background. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// `ErrorKind::Config` for a URL that is not `redis://` or `rediss://` (or names TLS this
    /// build lacks), a zero timeout, reservation TTL or sync interval, or a prefix with spaces;
    /// the password source's own error when it cannot give the password.
    pub async fn connect(options: RedisOptions) -> Result<Arc<RedisStore>, Error> {
        let url = redact_url(&options.url);
        if !(options.url.starts_with("redis://") || options.url.starts_with("rediss://")) {
            return Err(Error::config(format!(
                "redis: `{url}` is not a redis:// or rediss:// URL"
            )));
        }
        if options.timeout.is_zero()
            || options.reservation_ttl.is_zero()
            || options.sync_interval.is_zero()
        {
            return Err(Error::config(
                "redis: timeout, reservation_ttl and sync_interval must not be zero",
            ));
        }
        if options.prefix.is_empty() || options.prefix.contains(char::is_whitespace) {
            return Err(Error::config(format!(
                "redis: the prefix `{}` must be non-empty, without spaces",
                options.prefix
            )));
        }
        let info: redis::ConnectionInfo =
            redis::IntoConnectionInfo::into_connection_info(options.url.as_str()).map_err(|e| {
                Error::config(format!(
                    "redis: `{url}` is not a usable URL ({:?})",
                    e.kind()
                ))
            })?;
        let endpoint = info.addr().to_string();
        let mut settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        if let Some(user) = &options.username {
            settings = settings.set_username(user);
        }
        if let Some(source) = &options.password {
            let password = source.key().await?;
            settings = settings.set_password(password.expose_secret());
        }
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| {
            Error::config(format!("redis: `{url}` cannot be used ({:?})", e.kind()))
        })?;
        let (push_tx, push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2))
            .set_push_sender(push_tx)
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::config(format!("redis: `{url}` ({:?})", e.kind())))?;
        let inner = Arc::new(Inner {
            conn,
            endpoint,
            channel: format!("{}:health", options.prefix),
            prefix: options.prefix,
            instance: format!("{:016x}", fastrand::u64(..)),
            timeout: options.timeout,
            on_error: options.on_error,
            reservation_ttl: options.reservation_ttl,
            scripts: Scripts {
                reserve: Script::new(&scripts::reserve()),
                settle: Script::new(&scripts::settle()),
                counters: Script::new(&scripts::counters()),
                rest: Script::new(scripts::REST),
                open: Script::new(scripts::OPEN),
                close: Script::new(scripts::CLOSE),
                record: Script::new(scripts::RECORD),
            },
            holds: AtomicU64::new(0),
            fallback: MemoryStore::new(),
            degraded: AtomicBool::new(false),
            replay: Mutex::new(VecDeque::new()),
            sinks: Mutex::new(Vec::new()),
            unsent: Mutex::new(VecDeque::new()),
            recent: Mutex::new(HashMap::new()),
            sync_interval: options.sync_interval,
            outcomes: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            idle: Notify::new(),
            wake: Arc::new(Notify::new()),
        });
        tokio::spawn(sync_loop(
            Arc::downgrade(&inner),
            inner.wake.clone(),
            push_rx,
            options.sync_interval,
        ));
        tracing::info!(
            endpoint = %inner.endpoint,
            prefix = %inner.prefix,
            on_error = inner.on_error.as_str(),
            "state store: Redis"
        );
        Ok(Arc::new(RedisStore { inner }))
    }

    /// Checks that Redis answers, within the timeout.
    ///
    /// # Errors
    /// `ErrorKind::StateUnavailable` when it does not.
    pub async fn ping(&self) -> Result<(), Error> {
        self.inner.ping().await
    }

    /// Whether Redis was away at the last call (the store then works as [`OnError`] says).
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

impl Inner {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn budget_keys(&self, key: &str) -> (String, String) {
        let h = format!("{}:budget:{key}", self.prefix);
        let z = format!("{h}:holds");
        (h, z)
    }

    fn target_key(&self, what: &str, target: &str) -> String {
        format!("{}:{what}:{target}", self.prefix)
    }

    fn member(&self, hold: HoldId, reserved: Nanos) -> String {
        let lease = hold >> HOLD_COUNTER_BITS;
        format!(
            "{}.{hold:x}.{lease}:{}",
            self.instance,
            reserved.min(MAX_EXACT)
        )
    }

    /// Runs one Redis call under the timeout, noting Redis's health from how it went.
    async fn call<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => {
                self.healthy();
                Ok(v)
            }
            Ok(Err(e)) => {
                let err = unavailable(what, &e);
                self.failed(what, &err);
                Err(err)
            }
            Err(_) => {
                let err = unavailable(
                    what,
                    &format_args!("no answer in {} ms", self.timeout.as_millis()),
                );
                self.failed(what, &err);
                Err(err)
            }
        }
    }

    fn healthy(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(endpoint = %self.endpoint, "state store: Redis answers again");
            #[cfg(feature = "metrics")]
            metrics::gauge!("modelgate.state.degraded").set(0.0);
            self.wake.notify_one();
        }
    }

    fn failed(&self, what: &'static str, err: &Error) {
        #[cfg(feature = "metrics")]
        metrics::counter!("modelgate.state.errors", "operation" => what).increment(1);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                endpoint = %self.endpoint,
                on_error = self.on_error.as_str(),
                error = %err,
                "state store: Redis is unreachable; {}",
                match self.on_error {
                    OnError::FailOpen => "falling back to this process's own state",
                    OnError::FailClosed => "refusing requests a budget covers",
                }
            );
            #[cfg(feature = "metrics")]
            metrics::gauge!("modelgate.state.degraded").set(1.0);
        } else {
            tracing::debug!(operation = what, error = %err, "state store: Redis call failed");
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        self.call::<String>("ping", async move {
            redis::cmd("PING").query_async(&mut conn).await
        })
        .await
        .map(drop)
    }

    async fn reserve(
        self: Arc<Self>,
        claims: Vec<Claim>,
        amount: Nanos,
    ) -> Result<Reservation, Error> {
        let now = now_ms();
        let lease = now.saturating_add(ms(self.reservation_ttl)) & ((1 << 42) - 1);
        let counter = self.holds.fetch_add(1, Ordering::Relaxed) & ((1 << HOLD_COUNTER_BITS) - 1);
        let hold = (lease << HOLD_COUNTER_BITS) | counter;
        let mut inv = self.scripts.reserve.prepare_invoke();
        for c in &claims {
            let (h, z) = self.budget_keys(&c.key);
            inv.key(h).key(z);
        }
        inv.arg(now)
            .arg(amount.min(MAX_EXACT))
            .arg(self.member(hold, amount))
            .arg(lease)
            .arg(ms(IDLE_TTL));
        for c in &claims {
            inv.arg(c.window)
                .arg(c.limit.min(MAX_EXACT))
                .arg(self.expire_at(c));
        }
        let mut conn = self.conn.clone();
        let answer = self
            .call::<Vec<String>>("reserve", inv.invoke_async(&mut conn))
            .await;
        match answer {
            Ok(fields) => {
                let reservation = parse_reservation(&fields, hold)?;
                if matches!(reservation, Reservation::Granted { .. }) {
                    let num = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
                    for (i, c) in claims.iter().enumerate() {
                        let seen = Counters {
                            spent: num(1 + 2 * i),
                            reserved: num(2 + 2 * i),
                        };
                        self.remember(&c.key, c.window, seen);
                    }
                }
                Ok(reservation)
            }
            Err(err) => {
                // It may still run (a stalled Redis): give back what it would hold.
                self.queue(Replay {
                    member: self.member(hold, amount),
                    claims: claims.clone(),
                    reserved: amount,
                    spent: 0,
                    credit: None,
                    sent: false,
                });
                self.fallback_reserve(err, &claims, amount).await
            }
        }
    }

    /// What a reservation that Redis did not answer gets, as [`OnError`] says.
    async fn fallback_reserve(
        &self,
        err: Error,
        claims: &[Claim],
        amount: Nanos,
    ) -> Result<Reservation, Error> {
        match self.on_error {
            OnError::FailClosed => Err(err),
            OnError::FailOpen => match self.fallback.reserve(claims, amount).await? {
                Reservation::Granted { hold } => Ok(Reservation::Granted {
                    hold: hold | LOCAL_HOLD,
                }),
                refused => Ok(refused),
            },
        }
    }

    /// When a claim's counter may go: its window's end plus a lease (a reservation made just
    /// before the end settles after it), or 0 for the idle TTL.
    fn expire_at(&self, claim: &Claim) -> u64 {
        if claim.expires == 0 {
            0
        } else {
            claim
                .expires
                .saturating_mul(1_000)
                .saturating_add(ms(self.reservation_ttl))
        }
    }

    async fn settle_redis(&self, op: &Replay) -> Result<(), Error> {
        let mut inv = self.scripts.settle.prepare_invoke();
        for c in &op.claims {
            let (h, z) = self.budget_keys(&c.key);
            inv.key(h).key(z);
        }
        if let Some(marker) = &op.credit {
            inv.key(marker);
        }
        inv.arg(now_ms())
            .arg(&op.member)
            .arg(op.reserved.min(MAX_EXACT))
            .arg(op.spent.min(MAX_EXACT))
            .arg(ms(IDLE_TTL))
            .arg(ms(CREDIT_TTL));
        for c in &op.claims {
            inv.arg(c.window).arg(self.expire_at(c));
        }
        let mut conn = self.conn.clone();
        self.call::<i64>("settle", inv.invoke_async(&mut conn))
            .await
            .map(drop)
    }

    async fn settle(
        self: Arc<Self>,
        claims: Vec<Claim>,
        hold: HoldId,
        reserved: Nanos,
        spent: Nanos,
    ) -> Result<(), Error> {
        if hold & LOCAL_HOLD != 0 {
            // Reserved locally while Redis was away: settle there, and owe Redis the spend.
            self.fallback
                .settle(&claims, hold & !LOCAL_HOLD, reserved, spent)
                .await?;
            if spent > 0 {
                self.credit(claims, spent);
                self.wake.notify_one();
            }
            return Ok(());
        }
        let mut op = Replay {
            member: self.member(hold, reserved),
            claims,
            reserved,
            spent,
            credit: None,
            sent: true,
        };
        if self.settle_redis(&op).await.is_err() {
            // Not lost: replayed when Redis answers again (a settlement counts once, even if
            // the call that timed out ran after all).
            op.sent = false;
            self.queue(op);
        }
        Ok(())
    }

    /// Owes Redis `spent` on `claims`, made while it was away: added to the last credit still
    /// unsent for the same counters, else a new credit with its own marker.
    fn credit(&self, claims: Vec<Claim>, spent: Nanos) {
        let mut q = Self::lock(&self.replay);
        if let Some(last) = q.back_mut()
            && last.credit.is_some()
            && !last.sent
            && last.claims == claims
        {
            last.spent = last.spent.saturating_add(spent);
            return;
        }
        drop(q);
        let n = self.holds.fetch_add(1, Ordering::Relaxed);
        self.queue(Replay {
            member: format!("{}.credit{n:x}.0:0", self.instance),
            credit: Some(format!("{}:credit:{}.{n:x}", self.prefix, self.instance)),
            claims,
            reserved: 0,
            spent,
            sent: false,
        });
    }

    fn queue(&self, op: Replay) {
        let mut q = Self::lock(&self.replay);
        if q.len() >= MAX_REPLAY {
            q.pop_front();
            tracing::warn!("state store: too many operations wait for Redis; dropping the oldest");
        }
        q.push_back(op);
    }

    /// Runs the operations that failed while Redis was away, in order, until one fails again.
    async fn replay(&self) {
        loop {
            let Some(mut op) = Self::lock(&self.replay).pop_front() else {
                return;
            };
            op.sent = true;
            if self.settle_redis(&op).await.is_err() {
                Self::lock(&self.replay).push_front(op);
                return;
            }
        }
    }

    /// Notes what a counter held just now (a bounded map: past its bound it starts afresh).
    fn remember(&self, key: &Arc<str>, window: u64, counters: Counters) {
        let mut recent = Self::lock(&self.recent);
        if recent.len() >= 10_000 {
            recent.clear();
        }
        recent.insert((key.clone(), window), (counters, Instant::now()));
    }

    /// The counters as seen within the last sync interval, if they were.
    fn recently_seen(&self, key: &str, window: u64) -> Option<Counters> {
        let recent = Self::lock(&self.recent);
        let (counters, at) = recent.get(&(Arc::from(key), window))?;
        (at.elapsed() < self.sync_interval).then_some(*counters)
    }

    async fn counters(self: Arc<Self>, key: String, window: u64) -> Result<Counters, Error> {
        let (h, z) = self.budget_keys(&key);
        let mut inv = self.scripts.counters.prepare_invoke();
        inv.key(h).key(z).arg(now_ms()).arg(window);
        let mut conn = self.conn.clone();
        match self
            .call::<Vec<String>>("counters", inv.invoke_async(&mut conn))
            .await
        {
            Ok(fields) => {
                let num = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
                let counters = Counters {
                    spent: num(0),
                    reserved: num(1),
                };
                self.remember(&Arc::from(key.as_str()), window, counters);
                Ok(counters)
            }
            Err(err) => match self.on_error {
                OnError::FailClosed => Err(err),
                OnError::FailOpen => self.fallback.counters(&key, window).await,
            },
        }
    }

    /// Hands news to every router watching its target.
    fn deliver(&self, news: &HealthNews) {
        let mut sinks = Self::lock(&self.sinks);
        sinks.retain(|w| w.sink.strong_count() > 0);
        let live: Vec<Arc<dyn HealthSink>> = sinks
            .iter()
            .filter(|w| w.targets.iter().any(|t| t == news.target()))
            .filter_map(|w| w.sink.upgrade())
            .collect();
        drop(sinks);
        for sink in live {
            sink.apply(news);
        }
    }

    fn watched_targets(&self) -> Vec<Arc<str>> {
        let mut sinks = Self::lock(&self.sinks);
        sinks.retain(|w| w.sink.strong_count() > 0);
        let mut all: Vec<Arc<str>> = sinks.iter().flat_map(|w| w.targets.clone()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// A message from the channel: `KIND INSTANCE UNTIL FLAG TARGET`; this process's own are
    /// ignored (it applied them when it sent them), malformed ones too.
    fn on_message(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(5, ' ');
        let (Some(kind), Some(instance), Some(until), Some(flag), Some(target)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            tracing::debug!("state store: ignoring a malformed health message");
            return;
        };
        if instance == self.instance {
            return;
        }
        let until_ms = until.parse().unwrap_or(0);
        let target: Arc<str> = Arc::from(target);
        let news = match kind {
            "rest" => HealthNews::Rest {
                target,
                until_ms,
                quota: flag == "1",
            },
            "open" => HealthNews::CircuitOpened { target, until_ms },
            "closed" => HealthNews::CircuitClosed { target },
            "abandon" => HealthNews::ProbeAbandoned { target },
            "reset" => HealthNews::Reset { target },
            _ => return,
        };
        self.deliver(&news);
    }

    /// Re-reads the rest and circuit of every watched target (news missed while disconnected).
    async fn resync(&self) -> Result<(), Error> {
        let targets = self.watched_targets();
        if targets.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for t in &targets {
            pipe.cmd("GET").arg(self.target_key("rest", t));
            pipe.cmd("HGET")
                .arg(self.target_key("circuit", t))
                .arg("until");
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = self
            .call("resync", async move { pipe.query_async(&mut conn).await })
            .await?;
        let now = now_ms();
        for (t, pair) in targets.iter().zip(values.chunks(2)) {
            if let Some(rest) = pair.first().and_then(Option::as_deref) {
                let mut f = rest.split(' ');
                let until_ms: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                if until_ms > now {
                    self.deliver(&HealthNews::Rest {
                        target: t.clone(),
                        until_ms,
                        quota: f.next() == Some("1"),
                    });
                }
            }
            if let Some(until) = pair.get(1).and_then(Option::as_deref) {
                let until_ms: u64 = until.parse().unwrap_or(0);
                if until_ms > now {
                    self.deliver(&HealthNews::CircuitOpened {
                        target: t.clone(),
                        until_ms,
                    });
                }
            }
        }
        Ok(())
    }

    async fn publish(&self, news: HealthNews) -> Result<(), Error> {
        let target = news.target().clone();
        let mut conn = self.conn.clone();
        let circuit = self.target_key("circuit", &target);
        let probe = self.target_key("probe", &target);
        let rest = self.target_key("rest", &target);
        let mut inv;
        match &news {
            HealthNews::Rest {
                until_ms, quota, ..
            } => {
                inv = self.scripts.rest.prepare_invoke();
                inv.key(rest)
                    .arg(*until_ms)
                    .arg(if *quota { "1" } else { "0" });
            }
            HealthNews::CircuitOpened { until_ms, .. } => {
                inv = self.scripts.open.prepare_invoke();
                inv.key(circuit).key(probe).arg(*until_ms);
            }
            HealthNews::CircuitClosed { .. }
            | HealthNews::ProbeAbandoned { .. }
            | HealthNews::Reset { .. } => {
                let kind = match news {
                    HealthNews::CircuitClosed { .. } => "closed",
                    HealthNews::ProbeAbandoned { .. } => "abandon",
                    _ => "reset",
                };
                inv = self.scripts.close.prepare_invoke();
                inv.key(circuit).key(probe).key(rest).arg(kind);
            }
        }
        inv.arg(&self.channel).arg(&self.instance).arg(&*target);
        if matches!(news, HealthNews::CircuitOpened { .. }) {
            // Forget the open circuit a window after its cool-down, when it cannot matter.
            inv.arg(ms(Duration::from_secs(3_600)));
        }
        self.call::<i64>("publish", inv.invoke_async(&mut conn))
            .await
            .map(drop)
    }

    /// Publishes `news`; a rest or an opening that cannot be sent is kept for when Redis
    /// answers again (the others must still skip the target then). Closings and resets are not:
    /// sent late, they could undo something newer.
    async fn publish_or_keep(&self, news: HealthNews) {
        let keep = matches!(
            news,
            HealthNews::Rest { .. } | HealthNews::CircuitOpened { .. }
        )
        .then(|| news.clone());
        if self.publish(news).await.is_err()
            && let Some(news) = keep
        {
            let mut unsent = Self::lock(&self.unsent);
            if unsent.len() >= MAX_REPLAY {
                unsent.pop_front();
            }
            unsent.push_back(news);
        }
    }

    /// Sends the kept news still in force, in order, until one fails again.
    async fn send_unsent(&self) {
        loop {
            let Some(news) = Self::lock(&self.unsent).pop_front() else {
                return;
            };
            let until_ms = match &news {
                HealthNews::Rest { until_ms, .. } | HealthNews::CircuitOpened { until_ms, .. } => {
                    *until_ms
                }
                _ => 0,
            };
            if until_ms <= now_ms() {
                continue;
            }
            if self.publish(news.clone()).await.is_err() {
                Self::lock(&self.unsent).push_front(news);
                return;
            }
        }
    }

    /// Tells the fleet's circuit of `target` about outcomes; delivers its opening to this
    /// process's routers (the others hear it on the channel).
    async fn record(
        &self,
        target: Arc<str>,
        breaker: CircuitBreaker,
        successes: u64,
        failures: u64,
    ) -> Result<(), Error> {
        let window = ms(breaker.window());
        let buckets = crate::router::circuit_buckets() as u64;
        let bucket_ms = (window / buckets).max(1);
        let mut inv = self.scripts.record.prepare_invoke();
        inv.key(self.target_key("circuit", &target))
            .arg(now_ms())
            .arg(successes)
            .arg(failures)
            .arg(bucket_ms)
            .arg(breaker.min_requests())
            .arg(breaker.failure_rate_threshold())
            .arg(ms(breaker.cool_down()))
            .arg(window)
            .arg(format!("{}:", self.target_key("circuit", &target)))
            .arg(&self.channel)
            .arg(&self.instance)
            .arg(&*target)
            .arg(buckets);
        let mut conn = self.conn.clone();
        let until: u64 = self
            .call("record outcome", inv.invoke_async(&mut conn))
            .await?;
        if until > 0 {
            self.deliver(&HealthNews::CircuitOpened {
                target,
                until_ms: until,
            });
        }
        Ok(())
    }

    /// Sends every target's batched successes.
    async fn flush_outcomes(&self) {
        let batch: Vec<(Arc<str>, CircuitBreaker, u64)> = {
            let mut outcomes = Self::lock(&self.outcomes);
            outcomes
                .iter_mut()
                .filter(|(_, o)| o.successes > 0)
                .map(|(t, o)| {
                    (
                        t.clone(),
                        o.breaker.clone(),
                        std::mem::take(&mut o.successes),
                    )
                })
                .collect()
        };
        for (target, breaker, successes) in batch {
            // Lost on failure: successes only dilute, and a later window recounts.
            let _ = self.record(target, breaker, successes, 0).await;
        }
    }

    /// The sync task's periodic work.
    async fn maintain(&self, subscribed: &mut bool) {
        if !*subscribed {
            let mut conn = self.conn.clone();
            let channel = self.channel.clone();
            if self
                .call("subscribe", async move { conn.subscribe(channel).await })
                .await
                .is_ok()
            {
                *subscribed = true;
            }
        } else if self.degraded.load(Ordering::Relaxed) {
            let _ = self.ping().await;
        }
        if self.degraded.load(Ordering::Relaxed) {
            return;
        }
        self.replay().await;
        self.send_unsent().await;
        self.flush_outcomes().await;
        let _ = self.resync().await;
    }
}

/// Counts one background operation until dropped, for [`Inner::flush`].
struct Busy(Arc<Inner>);

impl Busy {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.busy.fetch_add(1, Ordering::AcqRel);
        Busy(inner.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Inner {
    /// Waits for background operations, then replays what waits for Redis.
    async fn flush(self: Arc<Self>) -> Result<(), Error> {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.busy.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        self.replay().await;
        self.send_unsent().await;
        let settlements = Self::lock(&self.replay).len();
        let news = Self::lock(&self.unsent).len();
        if settlements + news > 0 {
            return Err(Error::new(
                ErrorKind::StateUnavailable,
                format!(
                    "the state store (Redis) is unreachable: {settlements} settlements and \
                     {news} pieces of health news not sent"
                ),
            ));
        }
        Ok(())
    }
}

fn parse_reservation(fields: &[String], hold: HoldId) -> Result<Reservation, Error> {
    let num = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    match fields.first().map(String::as_str) {
        Some("-1") => Ok(Reservation::Granted { hold }),
        Some(_) => match (num(0), num(1), num(2)) {
            (Some(claim), Some(spent), Some(reserved)) => Ok(Reservation::Refused {
                claim: claim as usize,
                spent,
                reserved,
            }),
            _ => Err(unexpected_reply()),
        },
        None => Err(unexpected_reply()),
    }
}

fn unexpected_reply() -> Error {
    Error::new(
        ErrorKind::StateUnavailable,
        "the state store (Redis) gave an unexpected reply to a reservation",
    )
}

/// Delivers news from the channel, and every `every` (or when woken) replays, flushes and
/// re-reads. Holds the store only while it works, so that dropping the store ends it.
async fn sync_loop(
    weak: Weak<Inner>,
    wake: Arc<Notify>,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscribed = false;
    loop {
        let push = tokio::select! {
            push = pushes.recv() => match push {
                None => return,
                Some(push) => Some(push),
            },
            _ = tick.tick() => None,
            _ = wake.notified() => None,
        };
        let Some(inner) = weak.upgrade() else { return };
        match push {
            Some(push) => handle_push(&inner, push),
            None => inner.maintain(&mut subscribed).await,
        }
    }
}

fn handle_push(inner: &Inner, push: PushInfo) {
    match push.kind {
        PushKind::Message => {
            // [channel, payload]
            if let Some(Value::BulkString(payload)) = push.data.get(1) {
                inner.on_message(payload);
            }
        }
        PushKind::Disconnection => {
            // Resubscribed by the manager; news sent meanwhile is re-read at the next tick.
            tracing::debug!("state store: Redis connection lost");
        }
        _ => {}
    }
}

impl StateStore for RedisStore {
    fn reserve(&self, claims: &[Claim], amount: Nanos) -> StoreFuture<Reservation> {
        StoreFuture::new(self.inner.clone().reserve(claims.to_vec(), amount))
    }

    fn settle(
        &self,
        claims: &[Claim],
        hold: HoldId,
        reserved: Nanos,
        spent: Nanos,
    ) -> StoreFuture<()> {
        let busy = Busy::new(&self.inner);
        let fut = self
            .inner
            .clone()
            .settle(claims.to_vec(), hold, reserved, spent);
        StoreFuture::new(async move {
            let result = fut.await;
            drop(busy);
            result
        })
    }

    fn release(&self, claims: &[Claim], hold: HoldId, reserved: Nanos) -> StoreFuture<()> {
        let busy = Busy::new(&self.inner);
        let fut = self
            .inner
            .clone()
            .settle(claims.to_vec(), hold, reserved, 0);
        StoreFuture::new(async move {
            let result = fut.await;
            drop(busy);
            result
        })
    }

    fn flush(&self) -> StoreFuture<()> {
        StoreFuture::new(self.inner.clone().flush())
    }

    fn counters(&self, key: &str, window: u64) -> StoreFuture<Counters> {
        StoreFuture::new(self.inner.clone().counters(key.to_owned(), window))
    }

    fn recent_counters(&self, key: &str, window: u64) -> StoreFuture<Counters> {
        match self.inner.recently_seen(key, window) {
            Some(counters) => StoreFuture::ready(Ok(counters)),
            None => self.counters(key, window),
        }
    }

    fn shares_health(&self) -> bool {
        true
    }

    fn watch_health(&self, targets: Vec<Arc<str>>, sink: Weak<dyn HealthSink>) {
        Inner::lock(&self.inner.sinks).push(Watch { targets, sink });
        // Read what the fleet already knows about them.
        self.inner.wake.notify_one();
    }

    fn publish_health(&self, news: HealthNews) {
        let inner = self.inner.clone();
        let busy = Busy::new(&inner);
        spawn(async move {
            inner.publish_or_keep(news).await;
            drop(busy);
        });
    }

    fn record_outcome(&self, target: &Arc<str>, breaker: &CircuitBreaker, failed: bool) {
        let successes = {
            let mut outcomes = Inner::lock(&self.inner.outcomes);
            let o = outcomes.entry(target.clone()).or_insert_with(|| Outcomes {
                successes: 0,
                breaker: breaker.clone(),
            });
            if !failed {
                o.successes += 1;
                return;
            }
            std::mem::take(&mut o.successes)
        };
        let inner = self.inner.clone();
        let (target, breaker) = (target.clone(), breaker.clone());
        let busy = Busy::new(&inner);
        spawn(async move {
            let _ = inner.record(target, breaker, successes, 1).await;
            drop(busy);
        });
    }

    fn acquire_probe(&self, target: &Arc<str>, ttl: Duration) -> StoreFuture<bool> {
        let inner = self.inner.clone();
        let key = inner.target_key("probe", target);
        StoreFuture::new(async move {
            let mut conn = inner.conn.clone();
            let instance = inner.instance.clone();
            let got = inner
                .call::<Option<String>>("acquire probe", async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(instance)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms(ttl))
                        .query_async(&mut conn)
                        .await
                })
                .await;
            // Redis away: this process decides alone, as it would without a fleet.
            Ok(got.map_or(true, |reply| reply.is_some()))
        })
    }
}

fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(fut);
        }
        Err(_) => tracing::warn!("state store: health news dropped outside a tokio runtime"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_in_print() {
        assert_eq!(
            redact_url("redis://gw:hunter2@host:6379/0"),
            "redis://gw:[REDACTED]@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://:p@ss@host"),
            "rediss://:[REDACTED]@host"
        );
        assert_eq!(redact_url("redis://host:1"), "redis://host:1");
        assert_eq!(redact_url("redis://gw@host"), "redis://gw@host");
    }

    #[test]
    fn on_error_spells_as_the_config_does() {
        for e in [OnError::FailOpen, OnError::FailClosed] {
            assert_eq!(OnError::parse(e.as_str()), Some(e));
        }
        assert_eq!(OnError::parse("open"), None);
    }

    #[test]
    fn replies_parse_into_reservations() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_reservation(&s(&["-1"]), 7).unwrap(),
            Reservation::Granted { hold: 7 }
        );
        assert_eq!(
            parse_reservation(&s(&["1", "5", "6"]), 7).unwrap(),
            Reservation::Refused {
                claim: 1,
                spent: 5,
                reserved: 6
            }
        );
        assert!(parse_reservation(&s(&["x"]), 7).is_err());
        assert!(parse_reservation(&[], 7).is_err());
    }
}
