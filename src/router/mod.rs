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
//! | deadline | the request's own [`ChatRequest::timeout`](crate::ChatRequest::timeout), else [`RouterBuilder::timeout`], else none; it bounds every attempt, wait and retry, and a stream's body too |

mod attempt;
mod backoff;
mod budget;
mod circuit;
mod clock;
mod hedge;
mod rest;
mod retry;
mod stats;
mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

pub use budget::{Budget, BudgetScope, BudgetSnapshot, BudgetWindow};
pub use circuit::{CircuitBreaker, CircuitStatus};
pub use hedge::HedgePolicy;
pub use retry::RetryPolicy;
pub use target::Target;

use crate::error::{Error, ErrorKind};
use crate::provider::{CallOptions, ChatProvider};
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
        let mut slots: Vec<attempt::Slot> = Vec::new();
        let mut routes = HashMap::new();
        for (alias, targets) in self.routes {
            if targets.is_empty() {
                return Err(Error::config(format!("route `{alias}` has no targets")));
            }
            let mut indices = Vec::with_capacity(targets.len());
            for target in targets {
                let index = match slots.iter().position(|s| s.target.same_as(&target)) {
                    Some(i) => i,
                    None => {
                        slots.push(attempt::Slot::new(target, self.circuit.clone()));
                        slots.len() - 1
                    }
                };
                indices.push(index);
            }
            let route = attempt::Route {
                targets: indices,
                hedge_budget: Mutex::new(self.hedge.as_ref().map(hedge::HedgeBudget::new)),
            };
            if routes.insert(alias.clone(), route).is_some() {
                return Err(Error::config(format!("two routes are called `{alias}`")));
            }
        }
        Ok(Router {
            inner: Arc::new(attempt::Shared {
                name: self.name,
                routes,
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
            }),
        })
    }
}

#[async_trait]
impl ChatProvider for Router {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.chat_with(req, &CallOptions::default()).await
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, Error> {
        self.chat_stream_with(req, &CallOptions::default()).await
    }

    /// Serves `req` through the route `opts.model` names (else `req.model`), by `opts.deadline`
    /// at the latest; the other options apply to every attempt (a router as another router's
    /// target).
    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        match self.inner.run(req, opts, attempt::Call::Chat).await? {
            attempt::Answer::Chat(r) => Ok(*r),
            attempt::Answer::Stream(_) => unreachable!("a chat call answers with a response"),
        }
    }

    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        match self.inner.run(req, opts, attempt::Call::Stream).await? {
            attempt::Answer::Stream(s) => Ok(s),
            attempt::Answer::Chat(_) => unreachable!("a stream call answers with a stream"),
        }
    }
}
