//! The router: one [`ChatProvider`] over named routes of targets, with retry, fallback, circuit
//! breaking, rate-limit rest, stream pre-flight and hedging.
//!
//! Each policy is a small module of pure decision logic ("given these observations and this clock,
//! what next?"). None of them sleeps, spawns or does I/O: they take the current time and, where
//! randomness is involved, a random number generator, and the router's attempt loop
//! (`attempt.rs`) acts on their answers.
//!
//! ```
//! # use std::sync::Arc;
//! # use modelgate::ChatProvider;
//! use std::time::Duration;
//! use modelgate::router::{CircuitBreaker, HedgePolicy, RetryPolicy, Router, Target};
//!
//! # fn demo(openai: Arc<dyn ChatProvider>, deepseek: Arc<dyn ChatProvider>) -> Result<(), modelgate::Error> {
//! let router = Router::builder()
//!     .route("chat", [
//!         Target::new(openai.clone(), "gpt-4o-mini"),
//!         Target::new(deepseek, "deepseek-chat"),
//!     ])
//!     .retry(RetryPolicy::default())
//!     .hedge(HedgePolicy::adaptive(0.95))
//!     .circuit_breaker(CircuitBreaker::default())
//!     .first_delta_timeout(Duration::from_secs(10))
//!     .build()?;
//! // `router` is a ChatProvider: `router.chat(&ChatRequest::new("chat").user("hi"))`.
//! # Ok(()) }
//! ```
//!
//! # Defaults
//!
//! | policy | default |
//! |---|---|
//! | retry | [`RetryPolicy::default()`]: 2 retries per target, 4 per request, 0.5–8 s full-jitter backoff, `Retry-After` honoured up to 60 s |
//! | fallback | on every error whose [`should_fallback`](crate::Error::should_fallback) is true; `InvalidRequest`, `Auth` and `ContentFilter` surface at once unless [`RouterBuilder::fallback_on`] says otherwise |
//! | rate-limit rest | a target that answered 429 with `Retry-After` is skipped until then while the others serve; when every target rests, a request waits for the one ready first if that fits its deadline and `max_retry_after` (a wait after a call counts as one of the request's retries), else fails fast |
//! | quota rest | a target whose quota is exhausted ([`ErrorKind::QuotaExceeded`]) is skipped for its error's `Retry-After`, else [`DEFAULT_QUOTA_REST`] (60 s, [`RouterBuilder::quota_rest`]), and never waited for |
//! | rest cap | no rest lasts longer than [`DEFAULT_MAX_REST`] (5 min, [`RouterBuilder::max_rest`]), whatever a header asks; [`Router::reset_target`] ends one by hand |
//! | circuit breaker | off; [`CircuitBreaker::default()`]: opens at 50 % health failures over ≥ 10 requests in 30 s, 15 s cool-down |
//! | hedging | off; [`HedgePolicy::adaptive(0.95)`](HedgePolicy::adaptive) hedges after the target's p95 latency, at most 10 % of requests, one hedge per request |
//! | stream pre-flight | the first content delta must arrive within 30 s |
//! | strategy | [`Strategy::ordered`]: targets in the order given; [`RouterBuilder::strategy`] sets weighted, lowest-cost, lowest-latency or least-busy per route |
//! | rules | none; [`RouterBuilder::rules`] adds a route that picks another route from the prompt ([`Rules`], [`Condition`]) |
//! | budgets | none; each [`Budget`] reserves a call's worst cost (estimated prompt tokens plus `max_tokens`, else the model's maximum output) before it is sent, settles the real cost after it, and refuses with [`ErrorKind::BudgetExceeded`] or downgrades; counters live in a [`StateStore`] ([`MemoryStore`] by default) |
//! | prices | [`PriceTable::builtin`]; [`RouterBuilder::prices`] replaces it, and the router passes it to its providers so every cost comes from one table |
//! | rate-limit steering | on: a target whose answer says its quota is (nearly) spent rests until the quota resets ([`RouterBuilder::steer_by_rate_limits`]) |
//! | deadline | the request's own [`ChatRequest::timeout`](crate::ChatRequest::timeout), else [`RouterBuilder::timeout`], else none; it bounds every attempt, wait and retry, and a stream's body too |

mod attempt;
mod backoff;
mod budget;
mod circuit;
mod clock;
mod hedge;
#[cfg(feature = "metrics")]
mod metrics;
mod rest;
mod retry;
mod rules;
mod spend;
mod stats;
mod strategy;
mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

pub use budget::{Budget, BudgetScope, BudgetSnapshot, BudgetWindow};
pub use circuit::{CircuitBreaker, CircuitStatus};

/// How many buckets a circuit's rolling window has (a shared store counts in the same ones).
#[cfg(feature = "redis")]
pub(crate) fn circuit_buckets() -> usize {
    circuit::BUCKETS
}
pub use hedge::HedgePolicy;
pub use retry::RetryPolicy;
pub use rules::{Condition, Rules};
pub use stats::{Percentiles, RouterStats, TargetReport};
pub use strategy::{DEFAULT_EWMA_ALPHA, DEFAULT_PROBE_INTERVAL, Strategy};
pub use target::Target;

use crate::error::{Error, ErrorKind};
use crate::pricing::PriceTable;
use crate::provider::{CallOptions, ChatProvider};
use crate::state::{MemoryStore, StateStore};
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// The default time a stream may take to send its first content delta.
pub const DEFAULT_FIRST_DELTA_TIMEOUT: Duration = Duration::from_secs(30);

/// The default longest rest of a target ([`RouterBuilder::max_rest`]): five minutes.
pub const DEFAULT_MAX_REST: Duration = Duration::from_secs(5 * 60);

/// The default rest of a target whose quota is exhausted and whose error gives no `Retry-After`
/// ([`RouterBuilder::quota_rest`]): one minute.
pub const DEFAULT_QUOTA_REST: Duration = Duration::from_secs(60);

/// A snapshot of one target's health, as [`Router::target_statuses`] reports it.
///
/// A target listed by several routes (the same provider object and model) has one state, which
/// every route listing it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetStatus {
    /// The provider's name ([`ChatProvider::name`]).
    pub provider: String,
    /// The model the target asks for.
    pub model: String,
    /// The state of its circuit breaker; `None` when the router has none.
    pub circuit: Option<CircuitStatus>,
    /// How long it still rests (rate limited or out of quota); `None` when it does not.
    pub rest_remaining: Option<Duration>,
}

/// A [`ChatProvider`] that serves each request through a route of targets.
///
/// A request whose `model` names a route goes through that route's targets, in order; a request
/// naming a model directly goes to the first target that serves that model (with retries, and
/// without fallback). Cloning is cheap and shares all state.
#[derive(Clone)]
pub struct Router {
    inner: Arc<attempt::Shared>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("name", &self.inner.name)
            .field("routes", &self.inner.routes.keys().collect::<Vec<_>>())
            .field("targets", &self.inner.slots.len())
            .finish()
    }
}

/// Builds a [`Router`]. Setters never fail; [`RouterBuilder::build`] checks the whole setup.
#[must_use]
#[derive(Debug)]
pub struct RouterBuilder {
    name: String,
    routes: Vec<(String, Vec<Target>)>,
    retry: RetryPolicy,
    hedge: Option<HedgePolicy>,
    circuit: Option<CircuitBreaker>,
    first_delta_timeout: Duration,
    timeout: Option<Duration>,
    fallback_on: Vec<ErrorKind>,
    max_rest: Duration,
    quota_rest: Duration,
    seed: Option<u64>,
    rules: Vec<(String, Rules)>,
    strategies: Vec<(String, Strategy)>,
    budgets: Vec<Budget>,
    store: Option<Arc<dyn StateStore>>,
    prices: Option<Arc<PriceTable>>,
    steer_by_rate_limits: bool,
}

impl Router {
    /// A builder with the default policies (retry on; hedging and circuit breaking off).
    pub fn builder() -> RouterBuilder {
        RouterBuilder {
            name: "router".into(),
            routes: Vec::new(),
            retry: RetryPolicy::default(),
            hedge: None,
            circuit: None,
            first_delta_timeout: DEFAULT_FIRST_DELTA_TIMEOUT,
            timeout: None,
            fallback_on: Vec::new(),
            max_rest: DEFAULT_MAX_REST,
            quota_rest: DEFAULT_QUOTA_REST,
            seed: None,
            rules: Vec::new(),
            strategies: Vec::new(),
            budgets: Vec::new(),
            store: None,
            prices: None,
            steer_by_rate_limits: true,
        }
    }

    /// Every name a request's `model` may give: the routes (of targets and of rules) and the
    /// models of the targets, sorted, each once.
    pub fn served_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .routes
            .keys()
            .chain(self.inner.rules.keys())
            .cloned()
            .chain(self.inner.slots.iter().map(|s| s.target.model.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A snapshot of how every target has performed: requests, errors by kind, latency and
    /// time-to-first-delta percentiles, tokens per second, spend, calls in flight, circuit and
    /// rest. Cheap: a short lock per target, no await.
    pub fn stats(&self) -> RouterStats {
        self.inner.stats()
    }

    /// Waits until the state store has done what it runs in the background: budget
    /// settlements and health news (with an in-memory store, nothing). Call it before the
    /// process exits, so that a shared store (Redis) records every settled cost.
    ///
    /// # Errors
    /// The store's error when it cannot reach its backend.
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.ledger.store().flush().await
    }

    /// A snapshot of every budget: limit, spend and reservations in the current window, and
    /// when it resets. A budget per tag value is reported for requests without the tag (see
    /// [`Router::budget`] for one value).
    ///
    /// # Errors
    /// The state store's error when it cannot be reached.
    pub async fn budgets(&self) -> Result<Vec<BudgetSnapshot>, Error> {
        let mut out = Vec::new();
        for budget in self.inner.ledger.budgets() {
            if let Some(snapshot) = self.inner.ledger.snapshot(budget.name(), None).await {
                out.push(snapshot?);
            }
        }
        Ok(out)
    }

    /// A snapshot of the budget `name` (for a budget per tag value, of the value `tag_value`).
    ///
    /// # Errors
    /// `ErrorKind::NotFound` when the router has no such budget; the state store's error when
    /// it cannot be reached.
    pub async fn budget(
        &self,
        name: &str,
        tag_value: Option<&str>,
    ) -> Result<BudgetSnapshot, Error> {
        match self.inner.ledger.snapshot(name, tag_value).await {
            Some(snapshot) => snapshot,
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("the router has no budget `{name}`"),
            )),
        }
    }

    /// The state of the circuit breaker of the target at position `index` (from 0, in the order
    /// given to [`RouterBuilder::route`]) of `route`.
    ///
    /// A target is addressed by its route and position because a route may list the same model
    /// twice (on two providers). `None` when the router has no circuit breaker, or `route` has no
    /// target at `index`.
    pub fn circuit_status(&self, route: &str, index: usize) -> Option<CircuitStatus> {
        self.inner.circuit_status(route, index)
    }

    /// A snapshot of the health of each target of `route`, in route order (`None` when there is
    /// no such route).
    pub fn target_statuses(&self, route: &str) -> Option<Vec<TargetStatus>> {
        self.inner.target_statuses(route)
    }

    /// An operator's reset of the target at position `index` of `route` (addressed as in
    /// [`Router::circuit_status`]): ends its rest and closes its circuit, forgetting the failures
    /// that opened it. Attempts already in flight no longer count for the circuit. A target listed
    /// by several routes is reset for all of them.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` when `route` has no target at `index`.
    pub fn reset_target(&self, route: &str, index: usize) -> Result<(), Error> {
        self.inner.reset_target(route, index)
    }
}

impl RouterBuilder {
    /// The router's name, as [`ChatProvider::name`] returns it (default `"router"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a route: requests whose `model` is `alias` go to these targets, in order.
    pub fn route(
        mut self,
        alias: impl Into<String>,
        targets: impl IntoIterator<Item = Target>,
    ) -> Self {
        self.routes
            .push((alias.into(), targets.into_iter().collect()));
        self
    }

    /// Sets the retry policy ([`RetryPolicy::none()`] to turn retries off).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Turns hedging on: a slow attempt races a second one on the route's next target.
    pub fn hedge(mut self, policy: HedgePolicy) -> Self {
        self.hedge = Some(policy);
        self
    }

    /// Turns circuit breaking on, one circuit per target.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.circuit = Some(breaker);
        self
    }

    /// How long a stream may take to send its first content delta before the router gives up on
    /// that attempt (and retries, falls back or hedges). Default 30 s.
    pub fn first_delta_timeout(mut self, timeout: Duration) -> Self {
        self.first_delta_timeout = timeout;
        self
    }

    /// The overall deadline of requests that set none themselves.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Also falls back on errors of `kind`, which would otherwise surface at once (such as
    /// `ErrorKind::Auth` when each target has its own key).
    pub fn fallback_on(mut self, kind: ErrorKind) -> Self {
        self.fallback_on.push(kind);
        self
    }

    /// The longest a target rests, whatever its `Retry-After` asked (default
    /// [`DEFAULT_MAX_REST`], five minutes), so that a hostile or broken header cannot bench a
    /// target for hours. Zero turns resting off.
    pub fn max_rest(mut self, max_rest: Duration) -> Self {
        self.max_rest = max_rest;
        self
    }

    /// How long a target whose quota is exhausted ([`ErrorKind::QuotaExceeded`]) is left out of
    /// rotation when its error carries no `Retry-After` (default [`DEFAULT_QUOTA_REST`], one
    /// minute; a `Retry-After` wins; either is capped by [`max_rest`](Self::max_rest)). Zero
    /// keeps such a target in rotation.
    pub fn quota_rest(mut self, quota_rest: Duration) -> Self {
        self.quota_rest = quota_rest;
        self
    }

    /// Adds a route of rules: requests whose `model` is `alias` go to the route the first
    /// matching rule names (a route of targets or of rules), else to the default.
    pub fn rules(mut self, alias: impl Into<String>, rules: Rules) -> Self {
        self.rules.push((alias.into(), rules));
        self
    }

    /// How the route `alias` orders its targets for each request (default
    /// [`Strategy::ordered`]).
    pub fn strategy(mut self, alias: impl Into<String>, strategy: Strategy) -> Self {
        self.strategies.push((alias.into(), strategy));
        self
    }

    /// Adds a budget: every call it covers reserves its worst cost first, and is refused (or
    /// downgraded) when the budget cannot pay.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// Where budget counters live (default: a [`MemoryStore`] of this router's own).
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The prices the router costs calls with (default [`PriceTable::builtin`]); it passes them
    /// to its targets' providers, so every response's cost comes from this table.
    pub fn prices(mut self, prices: Arc<PriceTable>) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Whether a target whose answer says its rate limit is (nearly) exhausted
    /// (`x-ratelimit-remaining-*`, `anthropic-ratelimit-*`) rests until the limit resets, so
    /// that other targets serve before it answers 429 (default on).
    pub fn steer_by_rate_limits(mut self, on: bool) -> Self {
        self.steer_by_rate_limits = on;
        self
    }

    /// Seeds the router's random numbers (backoff jitter), for reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the router.
    ///
    /// # Errors
    /// `ErrorKind::Config` when there is no route, a route has no targets, two routes share an
    /// alias, a policy cannot work (see each policy's `validate`), or a timeout is zero.
    pub fn build(self) -> Result<Router, Error> {
        if self.routes.is_empty() {
            return Err(Error::config("a router needs at least one route"));
        }
        self.retry.validate()?;
        if let Some(h) = &self.hedge {
            h.validate()?;
        }
        if let Some(c) = &self.circuit {
            c.validate()?;
        }
        if self.first_delta_timeout.is_zero() || self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config("router timeouts must be greater than zero"));
        }
        let prices = self
            .prices
            .unwrap_or_else(|| Arc::new(PriceTable::builtin().clone()));
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        // Only a store that shares health gets told about it.
        let fleet_store = store.shares_health().then(|| store.clone());
        let mut slots: Vec<attempt::Slot> = Vec::new();
        let mut routes = BTreeMap::new();
        for (alias, targets) in self.routes {
            if targets.is_empty() {
                return Err(Error::config(format!("route `{alias}` has no targets")));
            }
            let mut indices = Vec::with_capacity(targets.len());
            for target in targets {
                // Each route keeps its own target (its own overrides); the same provider and
                // model in several routes share one health state.
                let slot = match slots.iter().find(|s| s.target.same_as(&target)) {
                    Some(existing) => attempt::Slot::sharing(target, existing, &prices),
                    None => attempt::Slot::new(
                        target,
                        self.circuit.clone(),
                        &prices,
                        fleet_store.as_ref(),
                    ),
                };
                slots.push(slot);
                let index = slots.len() - 1;
                indices.push(index);
            }
            let route = attempt::Route {
                targets: indices,
                hedge_budget: Mutex::new(self.hedge.as_ref().map(hedge::HedgeBudget::new)),
                strategy: Strategy::ordered(),
            };
            if routes.insert(alias.clone(), route).is_some() {
                return Err(Error::config(format!("two routes are called `{alias}`")));
            }
        }
        for (alias, strategy) in self.strategies {
            strategy.validate()?;
            match routes.get_mut(&alias) {
                Some(route) => route.strategy = strategy,
                None => {
                    return Err(Error::config(format!(
                        "a strategy is set for `{alias}`, which is not a route of targets"
                    )));
                }
            }
        }
        let mut rules = BTreeMap::new();
        for (alias, r) in self.rules {
            if routes.contains_key(&alias) || rules.contains_key(&alias) {
                return Err(Error::config(format!("two routes are called `{alias}`")));
            }
            rules.insert(alias, r);
        }
        let exists = |name: &str| routes.contains_key(name) || rules.contains_key(name);
        for (alias, r) in &rules {
            if let Some(missing) = r.routes().find(|to| !exists(to)) {
                return Err(Error::config(format!(
                    "rules of route `{alias}` lead to `{missing}`, which is not a route"
                )));
            }
        }
        check_rule_cycles(&rules)?;
        let mut names = std::collections::HashSet::new();
        for budget in &self.budgets {
            budget.validate()?;
            let name = budget.name();
            if !names.insert(name) {
                return Err(Error::config(format!("two budgets are called `{name}`")));
            }
            if let BudgetScope::Route(r) = &budget.scope
                && !exists(r)
            {
                return Err(Error::config(format!(
                    "budget `{name}` counts route `{r}`, which is not a route"
                )));
            }
            if let Some(to) = &budget.downgrade_to
                && !exists(to)
            {
                return Err(Error::config(format!(
                    "budget `{name}` downgrades to `{to}`, which is not a route"
                )));
            }
            let covers = |slot: &attempt::Slot| match &budget.scope {
                BudgetScope::Target { provider, model } => {
                    slot.target.provider_name() == provider && &slot.target.model == model
                }
                _ => true,
            };
            if let BudgetScope::Target { provider, model } = &budget.scope
                && !slots.iter().any(covers)
            {
                return Err(Error::config(format!(
                    "budget `{name}` counts target {provider}/{model}, which no route lists"
                )));
            }
            // A budget cannot hold back spend it cannot price: no guesses.
            if let Some(slot) = slots.iter().find(|s| covers(s) && s.price.is_none()) {
                return Err(Error::config(format!(
                    "budget `{name}` covers target {}/{}, which has no price: add it to the \
                     router's prices or give the target one (Target::price)",
                    slot.target.provider_name(),
                    slot.target.model
                )));
            }
        }
        let slot_count = slots.len();
        let ledger = spend::Ledger::new(self.budgets, store.clone());
        let inner = Arc::new(attempt::Shared {
            name: self.name,
            routes,
            rules,
            slots,
            retry: self.retry,
            hedge: self.hedge,
            first_delta_timeout: self.first_delta_timeout,
            timeout: self.timeout,
            fallback_on: self.fallback_on,
            max_rest: self.max_rest,
            quota_rest: self.quota_rest,
            rng: Mutex::new(match self.seed {
                Some(seed) => fastrand::Rng::with_seed(seed),
                None => fastrand::Rng::new(),
            }),
            ledger,
            prices,
            steer_by_rate_limits: self.steer_by_rate_limits,
            slot_indices: (0..slot_count).collect(),
        });
        if let Some(store) = fleet_store {
            let mut targets: Vec<Arc<str>> = inner.fleet_targets();
            targets.sort();
            targets.dedup();
            let sink: std::sync::Weak<dyn crate::state::HealthSink> =
                Arc::downgrade(&(inner.clone() as Arc<dyn crate::state::HealthSink>));
            store.watch_health(targets, sink);
        }
        Ok(Router { inner })
    }
}

/// Fails when routes of rules lead back to themselves.
fn check_rule_cycles(rules: &BTreeMap<String, Rules>) -> Result<(), Error> {
    fn visit<'a>(
        name: &'a str,
        rules: &'a BTreeMap<String, Rules>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::HashSet<&'a str>,
    ) -> Result<(), Error> {
        if done.contains(name) {
            return Ok(());
        }
        let Some(r) = rules.get(name) else {
            return Ok(());
        };
        if let Some(at) = path.iter().position(|p| *p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name);
            return Err(Error::config(format!(
                "routes of rules form a cycle: {}",
                cycle.join(" -> ")
            )));
        }
        path.push(name);
        for to in r.routes() {
            visit(to, rules, path, done)?;
        }
        path.pop();
        done.insert(name);
        Ok(())
    }
    let mut done = std::collections::HashSet::new();
    let mut names: Vec<&String> = rules.keys().collect();
    names.sort();
    for name in names {
        visit(name, rules, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

#[async_trait]
impl ChatProvider for Router {
    fn name(&self) -> &str {
        &self.inner.name
    }

    // Straight to the router's own answer, not through `chat_with`: one boxed future per call,
    // not two.
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.answer_chat(req, &CallOptions::default()).await
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, Error> {
        self.answer_stream(req, &CallOptions::default()).await
    }

    /// Serves `req` through the route `opts.model` names (else `req.model`), by `opts.deadline`
    /// at the latest; the other options apply to every attempt (a router as another router's
    /// target).
    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        self.answer_chat(req, opts).await
    }

    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        self.answer_stream(req, opts).await
    }
}

impl Router {
    async fn answer_chat(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        match self.inner.run(req, opts, attempt::Call::Chat).await? {
            attempt::Answer::Chat(r) => Ok(*r),
            attempt::Answer::Stream(_) => unreachable!("a chat call answers with a response"),
        }
    }

    async fn answer_stream(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        match self.inner.run(req, opts, attempt::Call::Stream).await? {
            attempt::Answer::Stream(s) => Ok(*s),
            attempt::Answer::Chat(_) => unreachable!("a stream call answers with a stream"),
        }
    }
}
