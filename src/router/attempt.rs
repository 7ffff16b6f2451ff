//! The router's attempt loop: it composes the pure policies (retry, rest, circuit, hedge, stats)
//! into calls of the targets' providers, and records every attempt.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use futures::{FutureExt, StreamExt};
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use super::TargetStatus;
use super::budget::WallClock;
use super::circuit::{
    Change, CircuitBreaker, CircuitState, CircuitStatus, Outcome, Permit, Ticket,
};
use super::clock::saturating_add;
use super::hedge::{HedgeBudget, HedgePolicy};
use super::rest::{self, RestReason, RestState};
use super::retry::{RetryDecision, RetryPolicy};
use super::rules::Rules;
use super::spend::{Hold, Ledger, Scope};
use super::stats::{Percentiles, RouterStats, TargetReport, TargetStats};
use super::strategy::{self, Candidate, Ewma, Strategy};
use super::target::Target;
use crate::error::{Error, ErrorKind};
use crate::pricing::{ModelPrice, PriceTable};
use crate::provider::{CallOptions, ChatProvider};
use crate::state::{HealthNews, HealthSink, Nanos, StateStore, usd_to_nanos};
use crate::types::MediaCache;
use crate::types::stream::{StreamEnd, StreamSummary};
use crate::types::{
    Attempt, AttemptOutcome, AttemptReason, ChatRequest, ChatResponse, ChatStream, Delta, RouteInfo,
};

/// Everything a router shares between its clones.
pub(crate) struct Shared {
    pub(crate) name: String,
    /// By alias. An ordered map: a router has few routes, and comparing short names costs less
    /// than hashing them on every request.
    pub(crate) routes: std::collections::BTreeMap<String, Route>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) retry: RetryPolicy,
    pub(crate) hedge: Option<HedgePolicy>,
    pub(crate) first_delta_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fallback_on: Vec<ErrorKind>,
    /// The longest any target rests, whatever it was told.
    pub(crate) max_rest: Duration,
    /// How long a target out of quota rests when its error says nothing.
    pub(crate) quota_rest: Duration,
    pub(crate) rng: Mutex<fastrand::Rng>,
    /// Routes of rules, by alias.
    pub(crate) rules: std::collections::BTreeMap<String, Rules>,
    /// The budgets and their store.
    pub(crate) ledger: Ledger,
    /// What calls are costed with (passed to the providers too).
    pub(crate) prices: Arc<PriceTable>,
    pub(crate) steer_by_rate_limits: bool,
    /// `0..slots.len()`: a request naming a target's model directly gets a one-target route.
    pub(crate) slot_indices: Vec<usize>,
}

impl Shared {
    /// The targets whose health a fleet shares, `provider/model`.
    pub(crate) fn fleet_targets(&self) -> Vec<Arc<str>> {
        self.slots
            .iter()
            .filter_map(|s| s.fleet.as_ref().map(|f| f.target.clone()))
            .collect()
    }
}

impl HealthSink for Shared {
    fn apply(&self, news: &HealthNews) {
        let mut applied: Vec<*const Mutex<SlotState>> = Vec::new();
        for slot in &self.slots {
            let Some(fleet) = &slot.fleet else { continue };
            let ptr = Arc::as_ptr(&slot.state);
            if fleet.target != *news.target() || applied.contains(&ptr) {
                continue;
            }
            applied.push(ptr);
            fleet.apply(&mut slot.state(), news, self.max_rest);
        }
    }
}

/// A named route: indices into [`Shared::slots`], in order of preference.
pub(crate) struct Route {
    pub(crate) targets: Vec<usize>,
    pub(crate) hedge_budget: Mutex<Option<HedgeBudget>>,
    pub(crate) strategy: Strategy,
}

/// The worst output a call is reserved for when neither the request, the target nor the price
/// table says.
const DEFAULT_WORST_OUTPUT_TOKENS: u64 = 4_096;

/// The output a lowest-cost strategy assumes when the request sets no `max_tokens`.
const TYPICAL_OUTPUT_TOKENS: u64 = 500;

/// Bytes of text per output token, to estimate what a stream without usage has used.
const BYTES_PER_TOKEN: u64 = 4;

/// A target and its health state, shared by every route that lists it.
pub(crate) struct Slot {
    pub(crate) target: Target,
    /// Its price: the target's own, else the router's table entry.
    pub(crate) price: Option<Arc<ModelPrice>>,
    // Shared with end hooks of the streams this target serves.
    state: Arc<Mutex<SlotState>>,
    /// Calls in flight (streams until they end).
    in_flight: Arc<AtomicU32>,
    /// Where this target's health is shared with other processes, if it is.
    fleet: Option<Arc<Fleet>>,
}

/// A target's link to a store that shares health across processes: what the router tells it.
pub(crate) struct Fleet {
    store: Arc<dyn StateStore>,
    /// `provider/model`.
    target: Arc<str>,
    wall: WallClock,
}

impl Fleet {
    pub(crate) fn new(store: Arc<dyn StateStore>, target: &Target) -> Self {
        Fleet {
            store,
            target: Arc::from(format!("{}/{}", target.provider_name(), target.model)),
            wall: WallClock::new(),
        }
    }

    fn rested(&self, until: Instant, reason: RestReason) {
        self.store.publish_health(HealthNews::Rest {
            target: self.target.clone(),
            until_ms: self.wall.unix_ms_at(until),
            quota: reason == RestReason::Quota,
        });
    }

    fn circuit_changed(&self, change: Change) {
        let target = self.target.clone();
        self.store.publish_health(match change {
            Change::Opened(until) => HealthNews::CircuitOpened {
                target,
                until_ms: self.wall.unix_ms_at(until),
            },
            Change::Closed => HealthNews::CircuitClosed { target },
            Change::ProbeAbandoned => HealthNews::ProbeAbandoned { target },
        });
    }

    /// Applies news from another process to the target's state.
    fn apply(&self, state: &mut SlotState, news: &HealthNews, max_rest: Duration) {
        let now = Instant::now();
        match news {
            HealthNews::Rest {
                until_ms, quota, ..
            } => {
                let until = self
                    .wall
                    .instant_at_unix_ms(*until_ms)
                    .min(saturating_add(now, max_rest));
                let reason = if *quota {
                    RestReason::Quota
                } else {
                    RestReason::RateLimit
                };
                state.rest.rest_until(until, reason);
            }
            HealthNews::CircuitOpened { until_ms, .. } => {
                if let Some(c) = state.circuit.as_mut() {
                    let until = self.wall.instant_at_unix_ms(*until_ms);
                    // Never longer than one of our own cool-downs from now: clocks differ.
                    let until = until.min(saturating_add(now, c.cool_down()));
                    c.force_open(until);
                }
            }
            HealthNews::CircuitClosed { .. } => {
                if let Some(c) = state.circuit.as_mut() {
                    c.force_close();
                }
            }
            HealthNews::ProbeAbandoned { .. } => {
                if let Some(c) = state.circuit.as_mut() {
                    c.probe_freed();
                }
            }
            HealthNews::Reset { .. } => {
                state.rest.clear();
                if let Some(c) = state.circuit.as_mut() {
                    c.reset();
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// Records an outcome on a target's circuit and tells the fleet what changed: the outcome
/// itself (for the fleet's counts) and any opening, closing or abandoned probe.
fn record_circuit(
    fleet: Option<&Fleet>,
    circuit: &mut CircuitState,
    now: Instant,
    ticket: Ticket,
    outcome: Outcome,
) {
    let change = circuit.record_change(now, ticket, outcome);
    if let Some(fleet) = fleet {
        if let Some(change) = change {
            fleet.circuit_changed(change);
        }
        if outcome != Outcome::Other && change.is_none() {
            fleet.store.record_outcome(
                &fleet.target,
                circuit.config(),
                outcome == Outcome::HealthFailure,
            );
        }
    }
}

struct SlotState {
    circuit: Option<CircuitState>,
    rest: RestState,
    stats: TargetStats,
    /// Latency averages for the lowest-latency strategy: whole answers, first deltas.
    latency: [Ewma; 2],
}

impl Slot {
    pub(crate) fn new(
        target: Target,
        circuit: Option<CircuitBreaker>,
        prices: &PriceTable,
        fleet: Option<&Arc<dyn StateStore>>,
    ) -> Self {
        let price = target.price.clone().or_else(|| {
            prices
                .lookup_kind(
                    target.provider_name(),
                    target.provider.kind(),
                    &target.model,
                )
                .cloned()
        });
        Slot {
            price,
            state: Arc::new(Mutex::new(SlotState {
                circuit: circuit.map(CircuitState::new),
                rest: RestState::default(),
                stats: TargetStats::default(),
                latency: [Ewma::default(); 2],
            })),
            in_flight: Arc::new(AtomicU32::new(0)),
            fleet: fleet.map(|store| Arc::new(Fleet::new(store.clone(), &target))),
            target,
        }
    }

    /// A slot for `target` that shares `existing`'s health state (the same provider and model
    /// listed again, perhaps with other overrides).
    pub(crate) fn sharing(target: Target, existing: &Slot, prices: &PriceTable) -> Self {
        let price = target.price.clone().or_else(|| {
            prices
                .lookup_kind(
                    target.provider_name(),
                    target.provider.kind(),
                    &target.model,
                )
                .cloned()
        });
        Slot {
            target,
            price,
            state: Arc::clone(&existing.state),
            in_flight: Arc::clone(&existing.in_flight),
            fleet: existing.fleet.clone(),
        }
    }

    /// Whether this slot shares its health state with `other`.
    fn shares_state_with(&self, other: &Slot) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// What `input_tokens` of prompt and `output_tokens` of answer cost here, in nano-dollars
    /// (0 without a price).
    fn estimate(&self, input_tokens: u64, output_tokens: u64) -> Nanos {
        self.price
            .as_ref()
            .map_or(0, |p| usd_to_nanos(p.estimate(input_tokens, output_tokens)))
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        lock_state(&self.state)
    }
}

fn lock_state(state: &Mutex<SlotState>) -> MutexGuard<'_, SlotState> {
    // The state holds plain numbers; a panic elsewhere cannot leave it unusable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes a served stream report its end to its target's health state: a health failure after
/// the first delta counts against the circuit (under the ticket its call was admitted with), and a
/// complete stream's total time is recorded. A timeout at or after the request's `deadline` is the
/// caller's, not the target's, and does not count.
///
/// It also settles the stream's budget reservation (its cost; without one, an estimate of what it
/// delivered: never nothing), counts its tokens and spend, and ends its time in flight.
#[allow(clippy::too_many_arguments)]
fn watch_stream(
    stream: &mut ChatStream,
    slot: &Slot,
    ticket: Option<Ticket>,
    started: Instant,
    deadline: Option<Instant>,
    hold: Option<Hold>,
    input_tokens: u64,
    in_flight: InFlight,
    #[cfg(feature = "metrics")] labels: super::metrics::Labels,
) {
    let state = Arc::clone(&slot.state);
    let price = slot.price.clone();
    let fleet = slot.fleet.clone();
    stream.on_end(Box::new(move |end, summary: &StreamSummary| {
        drop(in_flight);
        let now = Instant::now();
        // What it used: its cost, else its prompt and the text it delivered at its price.
        let cost = summary.cost.or_else(|| {
            let output = summary
                .usage
                .map(|u| u.output_tokens)
                .unwrap_or(summary.output_bytes.div_ceil(BYTES_PER_TOKEN));
            price.as_ref().map(|p| p.estimate(input_tokens, output))
        });
        if let Some(hold) = hold {
            let spent = cost.map_or(hold.reserved(), usd_to_nanos);
            hold.settle(spent);
        }
        #[cfg(feature = "metrics")]
        {
            match &end {
                StreamEnd::Complete => labels.stream_finished(now - started),
                StreamEnd::Failed(err) => labels.error(err),
                StreamEnd::Dropped => {}
            }
            labels.answered(summary.usage.as_ref(), cost);
        }
        let mut state = lock_state(&state);
        match end {
            StreamEnd::Complete => {
                state.stats.total.record(now, now - started);
                state.stats.tally.answered(
                    summary.usage.map(|u| u.output_tokens),
                    now - started,
                    cost,
                );
            }
            StreamEnd::Failed(err) => {
                state.stats.tally.error(err.kind());
                state.stats.tally.answered(None, Duration::ZERO, cost);
                if let (Some(c), Some(ticket)) = (state.circuit.as_mut(), ticket)
                    && health_outcome(err, now, deadline) == Outcome::HealthFailure
                {
                    record_circuit(fleet.as_deref(), c, now, ticket, Outcome::HealthFailure);
                }
            }
            StreamEnd::Dropped => state.stats.tally.answered(None, Duration::ZERO, cost),
        }
    }));
}

/// One call in flight on a target, counted until dropped.
struct InFlight(Arc<AtomicU32>);

impl InFlight {
    fn new(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request's estimated input tokens, computed at most once, when first needed.
pub(crate) struct Estimate<'r> {
    req: &'r ChatRequest,
    tokens: OnceLock<u64>,
}

impl<'r> Estimate<'r> {
    fn new(req: &'r ChatRequest) -> Self {
        Estimate {
            req,
            tokens: OnceLock::new(),
        }
    }

    fn get(&self) -> u64 {
        *self
            .tokens
            .get_or_init(|| crate::tokens::estimate_request(self.req))
    }
}

/// How a failure counts for its target's circuit: a timeout caused by the request's own deadline
/// (the caller's short deadline, not the target's timeout) says nothing about the target.
fn health_outcome(err: &Error, now: Instant, deadline: Option<Instant>) -> Outcome {
    if err.kind() == ErrorKind::Timeout && deadline.is_some_and(|d| now >= d) {
        Outcome::Other
    } else {
        Outcome::of_error(err)
    }
}

/// The request one attempt serves, the images its attempts share, and what its budgets and
/// strategy read of it.
#[derive(Clone, Copy)]
struct Job<'r> {
    req: &'r ChatRequest,
    media: Option<&'r MediaCache>,
    scope: Scope<'r>,
    estimate: &'r Estimate<'r>,
    /// The weight of a new latency observation (the route's strategy's).
    alpha: f64,
}

/// Which call the request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Chat,
    Stream,
}

/// A successful attempt's answer. Both kinds are boxed: an answer moves through several
/// futures' results on its way out, and a stream inline (384 bytes) made every chat answer
/// carry its room through each move; one allocation per stream costs less.
pub(crate) enum Answer {
    Chat(Box<ChatResponse>),
    Stream(Box<ChatStream>),
}

/// What one request has tried so far.
#[derive(Default)]
struct Log {
    attempts: Vec<Attempt>,
    errors: Vec<Error>,
}

impl Log {
    /// One failure's error, to surface on its own (the request ends: indices no longer matter).
    fn take(&mut self, index: usize) -> Error {
        self.errors.swap_remove(index)
    }

    fn failed(&mut self, record: Attempt, err: Error) {
        self.attempts.push(record);
        self.errors.push(err);
    }
}

/// Per-target bookkeeping of one request: inline for routes of up to [`INLINE_TARGETS`]
/// targets (nearly all), so that a request allocates nothing for it.
enum PerTarget<T> {
    Inline(usize, [T; INLINE_TARGETS]),
    Heap(Vec<T>),
}

const INLINE_TARGETS: usize = 8;

impl<T: Copy> PerTarget<T> {
    fn new(targets: usize, value: T) -> Self {
        if targets <= INLINE_TARGETS {
            PerTarget::Inline(targets, [value; INLINE_TARGETS])
        } else {
            PerTarget::Heap(vec![value; targets])
        }
    }
}

impl<T> std::ops::Deref for PerTarget<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            PerTarget::Inline(n, items) => &items[..*n],
            PerTarget::Heap(items) => items,
        }
    }
}

impl<T> std::ops::DerefMut for PerTarget<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            PerTarget::Inline(n, items) => &mut items[..*n],
            PerTarget::Heap(items) => items,
        }
    }
}

/// What one request has spent, per position in its route and in total.
struct Tally {
    /// Retries made on each target.
    retries: PerTarget<u32>,
    /// Retries made by the whole request (waits for a resting target included).
    retries_total: u32,
    /// Whether each target was called.
    called: PerTarget<bool>,
    /// Whether each target was last seen resting after a rate limit.
    rested: PerTarget<bool>,
    /// Whether the one free wait for a resting target was used.
    waited_free: bool,
    /// Hedges the request may still send.
    hedges_left: u32,
    /// The failures of targets raced as hedges, not yet acted on: when the pass reaches such a
    /// target, its own outcome decides what next instead of a second call.
    raced: PerTarget<Option<Failure>>,
}

/// A failed attempt, kept so that its own target's retry decision can be made from it.
#[derive(Debug, Clone, Copy)]
struct Failure {
    /// Its error's index in [`Log::errors`].
    error: usize,
    /// When it failed: its Retry-After (or backoff) runs from then, not from when the race ended.
    at: Instant,
}

impl Tally {
    fn new(targets: usize, hedges: u32) -> Self {
        Tally {
            hedges_left: hedges,
            retries: PerTarget::new(targets, 0),
            retries_total: 0,
            called: PerTarget::new(targets, false),
            rested: PerTarget::new(targets, false),
            waited_free: false,
            raced: PerTarget::new(targets, None),
        }
    }
}

/// A target's leave to take one attempt: the circuit's ticket, if the target has a circuit.
///
/// It lives from admission until the attempt's outcome is recorded. Dropped before that (a hedge
/// admitted but never run, a hedge loser, a cancelled request), a probe's admission records
/// `Outcome::Other`, handing its half-open slot back at once rather than after it is presumed lost.
struct Admission<'a> {
    slot: &'a Slot,
    ticket: Option<Ticket>,
    probe: bool,
    armed: bool,
}

impl Admission<'_> {
    /// Records the attempt's outcome on the circuit (the state is locked by the caller).
    fn record(mut self, state: &mut SlotState, now: Instant, outcome: Outcome) {
        self.armed = false;
        if let (Some(c), Some(ticket)) = (state.circuit.as_mut(), self.ticket) {
            record_circuit(self.slot.fleet.as_deref(), c, now, ticket, outcome);
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.armed
            && self.probe
            && let Some(ticket) = self.ticket
        {
            let mut state = self.slot.state();
            if let Some(c) = state.circuit.as_mut() {
                record_circuit(
                    self.slot.fleet.as_deref(),
                    c,
                    Instant::now(),
                    ticket,
                    Outcome::Other,
                );
            }
        }
    }
}

impl Shared {
    /// The slot of the target at `index` in `route`.
    fn slot_at(&self, route: &str, index: usize) -> Option<&Slot> {
        let &slot = self.routes.get(route)?.targets.get(index)?;
        self.slots.get(slot)
    }

    pub(crate) fn circuit_status(&self, route: &str, index: usize) -> Option<CircuitStatus> {
        let state = self.slot_at(route, index)?.state();
        state.circuit.as_ref().map(|c| c.state(Instant::now()))
    }

    pub(crate) fn target_statuses(&self, route: &str) -> Option<Vec<TargetStatus>> {
        let route = self.routes.get(route)?;
        let now = Instant::now();
        let statuses = route
            .targets
            .iter()
            .map(|&i| {
                let slot = &self.slots[i];
                let state = slot.state();
                TargetStatus {
                    provider: slot.target.provider_name().to_owned(),
                    model: slot.target.model.clone(),
                    circuit: state.circuit.as_ref().map(|c| c.state(now)),
                    rest_remaining: state
                        .rest
                        .ready_at()
                        .filter(|&at| at > now)
                        .map(|at| at - now),
                }
            })
            .collect();
        Some(statuses)
    }

    pub(crate) fn reset_target(&self, route: &str, index: usize) -> Result<(), Error> {
        let slot = self.slot_at(route, index).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("route `{route}` has no target at position {index}"),
            )
            .with_provider(self.name.clone())
        })?;
        let mut state = slot.state();
        state.rest.clear();
        if let Some(c) = state.circuit.as_mut() {
            c.reset();
        }
        if let Some(fleet) = &slot.fleet {
            fleet.store.publish_health(HealthNews::Reset {
                target: fleet.target.clone(),
            });
        }
        Ok(())
    }

    /// Serves `req` through the route (or target model) that `opts.model`, else `req.model`,
    /// names, by `opts.deadline` at the latest: routes of rules are followed to a route of
    /// targets, and a budget may downgrade the request to another route.
    pub(crate) async fn run(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
        call: Call,
    ) -> Result<Answer, Error> {
        let requested = opts.model.unwrap_or(&req.model);
        // Overrides from an outer router's target apply to every attempt of this one; they are
        // rare (a router as a target with its own temperature), so a copy is fine.
        // Boxed so that the (rare) copy takes no room in every request's future.
        let overridden: Box<ChatRequest>;
        let req =
            if opts.temperature.is_some() || opts.max_tokens.is_some() || !opts.extra.is_empty() {
                let outer = CallOptions {
                    model: None,
                    deadline: None,
                    media: None,
                    prices: None,
                    ..*opts
                };
                overridden = Box::new(outer.apply(req).into_owned());
                &overridden
            } else {
                req
            };
        let estimate = Estimate::new(req);
        let mut name = self.follow_rules(requested, req, &estimate)?;
        let mut scope = Scope {
            routes: [Some(requested), Some(name)],
            tags: &req.metadata,
        };
        if !self.ledger.is_empty() {
            // Downgrade before sending when a budget is past its soft limit or cannot pay.
            for _ in 0..=self.ledger.budgets().count() {
                let worst = self.route_worst_cost(name, req, &estimate);
                match self.ledger.downgrade(&scope, worst).await? {
                    Some(to) => {
                        name = self.follow_rules(to, req, &estimate)?;
                        scope.routes = [None, Some(name)];
                    }
                    None => break,
                }
            }
        }
        let span = tracing::info_span!(
            "modelgate.request",
            router = %self.name,
            route = %name,
            stream = call == Call::Stream,
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = %requested,
            "gen_ai.provider.name" = tracing::field::Empty,
            "gen_ai.response.model" = tracing::field::Empty,
            "gen_ai.usage.input_tokens" = tracing::field::Empty,
            "gen_ai.usage.output_tokens" = tracing::field::Empty,
            "gen_ai.usage.cache_read.input_tokens" = tracing::field::Empty,
            "gen_ai.usage.reasoning.output_tokens" = tracing::field::Empty,
            "gen_ai.response.finish_reasons" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            "modelgate.cost_usd" = tracing::field::Empty,
        );
        // Images fetched from URLs are shared by all attempts of the request.
        let own_media;
        let media = match opts.media {
            Some(media) => Some(media),
            None if req.has_images() => {
                own_media = MediaCache::new();
                Some(&own_media)
            }
            None => None,
        };
        let mut downgrades = 0;
        loop {
            let (route, targets) = self.targets_of(name)?;
            let job = Job {
                req,
                media,
                scope,
                estimate: &estimate,
                alpha: route.map_or(super::strategy::DEFAULT_EWMA_ALPHA, |r| {
                    r.strategy.ewma_alpha
                }),
            };
            // Boxed: the route's future is the request's largest part, and the box is cheaper
            // than moving it into the span's wrapper and then into this future.
            let result = Box::pin(self.run_route(job, name, opts.deadline, call, route, targets))
                .instrument(span.clone())
                .await;
            match result {
                // Refused by a budget that says where to go instead.
                Err(err)
                    if err.kind() == ErrorKind::BudgetExceeded
                        && downgrades < self.ledger.budgets().count() =>
                {
                    match self.ledger.downgrade_after_refusal(&scope) {
                        Some(to) => {
                            downgrades += 1;
                            name = self.follow_rules(to, req, &estimate)?;
                            scope.routes = [None, Some(name)];
                        }
                        None => return Err(record_error(&span, err)),
                    }
                }
                Err(err) => return Err(record_error(&span, err)),
                Ok(answer) => {
                    if let Answer::Chat(r) = &answer {
                        record_response(&span, r);
                    } else if let Answer::Stream(s) = &answer {
                        span.record("gen_ai.provider.name", s.provider());
                        span.record("gen_ai.response.model", s.model());
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// The route `name` leads to through routes of rules (itself when it is no route of rules).
    fn follow_rules<'a>(
        &'a self,
        name: &'a str,
        req: &ChatRequest,
        estimate: &Estimate<'_>,
    ) -> Result<&'a str, Error> {
        let mut name = name;
        // Rules were checked for cycles when the router was built.
        for _ in 0..=self.rules.len() {
            let Some(rules) = self.rules.get(name) else {
                return Ok(name);
            };
            match rules.pick(req, &mut || estimate.get()) {
                Some(next) => name = next,
                None => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no rule of route `{name}` matches the request, and it has no default"
                        ),
                    )
                    .with_provider(self.name.clone()));
                }
            }
        }
        Ok(name)
    }

    /// The route `name` names, or the one target serving that model.
    fn targets_of(&self, name: &str) -> Result<(Option<&Route>, &[usize]), Error> {
        match self.routes.get(name) {
            Some(route) => Ok((Some(route), &route.targets)),
            None => match self.slots.iter().position(|s| s.target.model == name) {
                Some(i) => Ok((None, std::slice::from_ref(&self.slot_indices[i]))),
                None => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no route or target serves `{name}`"),
                )
                .with_provider(self.name.clone())),
            },
        }
    }

    /// The worst cost of a request on the first target of `route` (what a downgrade decision
    /// weighs), in nano-dollars.
    fn route_worst_cost(&self, route: &str, req: &ChatRequest, estimate: &Estimate<'_>) -> Nanos {
        let Some(&slot) = self.routes.get(route).and_then(|r| r.targets.first()) else {
            return 0;
        };
        let slot = &self.slots[slot];
        slot.estimate(estimate.get(), worst_output(slot, req))
    }

    pub(crate) fn stats(&self) -> RouterStats {
        let now = Instant::now();
        let targets = self
            .slots
            .iter()
            .enumerate()
            // A target listed by several routes is reported once.
            .filter(|(i, slot)| !self.slots[..*i].iter().any(|s| s.shares_state_with(slot)))
            .map(|(_, slot)| {
                let state = slot.state();
                let tally = &state.stats.tally;
                let secs = tally.generation.as_secs_f64();
                TargetReport {
                    provider: slot.target.provider_name().to_owned(),
                    model: slot.target.model.clone(),
                    requests: tally.requests,
                    errors: tally.errors.clone(),
                    latency: Percentiles::of(&state.stats.total, now),
                    first_delta: Percentiles::of(&state.stats.first_delta, now),
                    output_tokens: tally.output_tokens,
                    output_tokens_per_second: (secs > 0.0)
                        .then(|| tally.output_tokens as f64 / secs),
                    spent_usd: crate::state::nanos_to_usd(tally.spent),
                    in_flight: slot.in_flight.load(Ordering::Relaxed),
                    circuit: state.circuit.as_ref().map(|c| c.state(now)),
                    rest_remaining: state
                        .rest
                        .ready_at()
                        .filter(|&at| at > now)
                        .map(|at| at - now),
                }
            })
            .collect();
        RouterStats { targets }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_route(
        &self,
        job: Job<'_>,
        name: &str,
        outer_deadline: Option<Instant>,
        call: Call,
        route: Option<&Route>,
        targets: &[usize],
    ) -> Result<Answer, Error> {
        let req = job.req;
        let start = Instant::now();
        // The route's strategy orders its targets for this request; `in_route_order` keeps the
        // order they were listed in, which `RouteInfo::target_index` refers to.
        let in_route_order = targets;
        let ordered;
        let targets = match route {
            Some(route) if !route.strategy.is_ordered() => {
                ordered = self.order(route, job, call, start);
                &ordered[..]
            }
            _ => targets,
        };
        let deadline = match (
            req.timeout
                .or(self.timeout)
                .map(|d| saturating_add(start, d)),
            outer_deadline,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(route) = route
            && let Some(budget) = route
                .hedge_budget
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
        {
            budget.on_request();
        }
        let mut log = Log::default();
        let hedges = self.hedge.as_ref().map_or(0, HedgePolicy::max_hedges);
        let mut tally = Tally::new(targets.len(), hedges);
        // The first pass goes through the targets in order; `forward` is its next position.
        let mut forward = 0usize;
        loop {
            let (pos, mut reason) = if forward < targets.len() {
                forward += 1;
                let reason = if log.attempts.is_empty() {
                    AttemptReason::First
                } else {
                    AttemptReason::Fallback
                };
                (forward - 1, reason)
            } else {
                // Every target was tried or skipped. Wait for a resting one, if any fits.
                match self.wait_for_rest(targets, &mut tally, deadline).await {
                    Some(pos) => (pos, AttemptReason::Retry),
                    None => return Err(self.exhausted(log, deadline)),
                }
            };
            let slot_index = targets[pos];
            // A target already raced as a hedge is not called again in this pass: its own outcome
            // decides, as if this were its call.
            let mut raced = tally.raced[pos].take();
            loop {
                let failure = match raced.take() {
                    Some(failure) => failure,
                    None => {
                        let admission = match self.admit(slot_index, Instant::now()) {
                            Ok(admission) => admission,
                            Err(skip) => {
                                tally.rested[pos] = skip.kind() == ErrorKind::RateLimited;
                                let record = self.record(
                                    slot_index,
                                    reason,
                                    AttemptOutcome::Skipped(skip.kind()),
                                    Duration::ZERO,
                                );
                                log.failed(record, skip);
                                break;
                            }
                        };
                        tally.called[pos] = true;
                        let result = self
                            .hedged_attempt(
                                route, targets, pos, admission, job, call, reason, deadline,
                                &mut tally, &mut log,
                            )
                            .await;
                        match result {
                            Ok((answer, served)) => {
                                return Ok(self.finish(answer, name, log, in_route_order, served));
                            }
                            Err(failure) => failure,
                        }
                    }
                };
                let err = &log.errors[failure.error];
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(self.exhausted(log, deadline));
                }
                let kind = err.kind();
                if kind == ErrorKind::ContextLength {
                    // Move on only to a later target with a larger window.
                    let current = self.slots[slot_index].target.context_window.unwrap_or(0);
                    let larger = targets.iter().enumerate().skip(pos + 1).find(|&(_, &i)| {
                        self.slots[i]
                            .target
                            .context_window
                            .is_some_and(|w| w > current)
                    });
                    match larger {
                        Some((next, _)) => {
                            forward = forward.max(next);
                            break;
                        }
                        None => return Err(log.take(failure.error)),
                    }
                }
                let may_fall_back = err.should_fallback() || self.fallback_on.contains(&kind);
                if !err.is_retryable() && !may_fall_back {
                    // The caller's to fix: surface it at once.
                    return Err(log.take(failure.error));
                }
                if kind == ErrorKind::RateLimited && err.is_retryable() {
                    // A target told to wait rests (its attempt recorded the rest): another target
                    // serves meanwhile, and it is only waited for once none can.
                    let rests = self.slots[slot_index].state().rest.is_resting(now);
                    tally.rested[pos] = rests;
                    if rests
                        || targets[forward..]
                            .iter()
                            .any(|&i| self.is_available(i, now))
                    {
                        break;
                    }
                }
                let decision = {
                    let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    self.retry.decide(
                        err,
                        tally.retries[pos],
                        tally.retries_total,
                        failure.at,
                        deadline,
                        &mut rng,
                    )
                };
                match decision {
                    RetryDecision::RetryAfter(wait) => {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, kind = %kind, "retrying");
                        tokio::time::sleep_until(saturating_add(failure.at, wait)).await;
                        tally.retries[pos] += 1;
                        tally.retries_total += 1;
                        reason = AttemptReason::Retry;
                    }
                    RetryDecision::GiveUp(_) if may_fall_back => break,
                    RetryDecision::GiveUp(_) => return Err(log.take(failure.error)),
                }
            }
        }
    }

    /// The route's targets (slot indices) in the order its strategy gives for this request.
    fn order(&self, route: &Route, job: Job<'_>, call: Call, now: Instant) -> Vec<usize> {
        let strategy = &route.strategy;
        let wants_cost = strategy.kind == strategy::StrategyKind::LowestCost;
        let candidates: Vec<Candidate> = route
            .targets
            .iter()
            .map(|&i| {
                let slot = &self.slots[i];
                let latency = slot.state().latency[usize::from(call == Call::Stream)];
                Candidate {
                    available: self.is_available(i, now),
                    weight: slot.target.weight,
                    cost: (wants_cost && slot.price.is_some()).then(|| {
                        let output = slot
                            .target
                            .max_tokens
                            .or(job.req.max_tokens)
                            .map_or(TYPICAL_OUTPUT_TOKENS, u64::from);
                        slot.estimate(job.estimate.get(), output) as f64
                    }),
                    latency,
                    in_flight: slot.in_flight.load(Ordering::Relaxed),
                }
            })
            .collect();
        let order = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            strategy::order(strategy, &candidates, now, &mut rng)
        };
        if strategy.kind == strategy::StrategyKind::LowestLatency
            && let Some(&first) = order.first()
            && candidates[first].available
        {
            // A probe of a stale target counts as seeing it, so one probe goes out per interval.
            let slot = &self.slots[route.targets[first]];
            let mut state = slot.state();
            let ewma = &mut state.latency[usize::from(call == Call::Stream)];
            if ewma
                .last_seen
                .is_none_or(|seen| now.saturating_duration_since(seen) >= strategy.probe_interval)
            {
                ewma.last_seen = Some(now);
            }
        }
        order.into_iter().map(|k| route.targets[k]).collect()
    }

    /// Once every target of the route was tried or skipped: waits for the resting target that is
    /// ready first and returns its position, or `None` when none is worth waiting for.
    ///
    /// Only targets that rest (skipped as resting, or rate limited with a `Retry-After` during
    /// this request) are candidates, and only while their own retries last. The wait must end
    /// before the request's deadline and within `max_retry_after`. It costs one retry of the
    /// request's total when the request has already called a target; a request that only met
    /// resting targets may wait once for free.
    async fn wait_for_rest(
        &self,
        targets: &[usize],
        tally: &mut Tally,
        deadline: Option<Instant>,
    ) -> Option<usize> {
        let called_any = tally.called.iter().any(|&c| c);
        let allowed = if called_any {
            tally.retries_total < self.retry.max_total_retries()
        } else {
            !tally.waited_free
        };
        if !allowed {
            return None;
        }
        let candidates: Vec<usize> = (0..targets.len())
            .filter(|&pos| {
                tally.rested[pos]
                    && (!tally.called[pos] || tally.retries[pos] < self.retry.max_retries())
            })
            .collect();
        let now = Instant::now();
        let ready_at = candidates
            .iter()
            .map(|&pos| self.ready_at(targets[pos], now));
        let chosen = match rest::choose(ready_at, now, self.retry.wait_limit(now, deadline)) {
            rest::Choice::Serve(k) => candidates[k],
            rest::Choice::WaitUntil(at, k) => {
                tracing::debug!(
                    wait_ms = (at - now).as_millis() as u64,
                    "every target rests; waiting"
                );
                tokio::time::sleep_until(at).await;
                candidates[k]
            }
            rest::Choice::FailFast => return None,
        };
        tally.rested[chosen] = false;
        if called_any {
            tally.retries_total += 1;
        } else {
            tally.waited_free = true;
        }
        if tally.called[chosen] {
            tally.retries[chosen] += 1;
        }
        Some(chosen)
    }

    /// The error when nothing served the request: a `Timeout` when the deadline passed, else
    /// `AllTargetsFailed`; both carry every attempt's error.
    fn exhausted(&self, mut log: Log, deadline: Option<Instant>) -> Error {
        // Refused by budgets alone: the budget's own error (its name, spend and reset).
        if !log.errors.is_empty()
            && log
                .errors
                .iter()
                .all(|e| e.kind() == ErrorKind::BudgetExceeded)
        {
            return log.take(0).with_provider(self.name.clone());
        }
        let err = if deadline.is_some_and(|d| Instant::now() >= d) {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "the request's deadline passed after {} attempts",
                    log.errors.len()
                ),
            )
            .with_attempts(log.errors)
        } else {
            Error::all_targets_failed(log.errors)
        };
        err.with_provider(self.name.clone())
    }

    fn finish(
        &self,
        answer: Answer,
        name: &str,
        log: Log,
        targets: &[usize],
        served: usize,
    ) -> Answer {
        let info = RouteInfo {
            route: name.to_owned(),
            target_index: targets.iter().position(|&i| i == served),
            attempts: log.attempts,
        };
        match answer {
            Answer::Chat(mut r) => {
                r.route = Some(info);
                Answer::Chat(r)
            }
            Answer::Stream(mut s) => {
                s.set_route(info);
                Answer::Stream(s)
            }
        }
    }

    /// An attempt skipped before its call (the fleet's probe is taken, a budget refused it):
    /// its error as the result, and its record.
    fn skipped(
        &self,
        slot_index: usize,
        reason: AttemptReason,
        err: Error,
    ) -> (Result<Answer, Error>, Attempt) {
        let record = self.record(
            slot_index,
            reason,
            AttemptOutcome::Skipped(err.kind()),
            Duration::ZERO,
        );
        (Err(err), record)
    }

    /// A half-open circuit's probe, when health is shared, must also be the fleet's one probe:
    /// if another process holds it, this attempt is skipped as if the circuit were open, and
    /// the target waits for that probe's news.
    async fn take_fleet_probe<'a>(
        &self,
        slot: &'a Slot,
        mut admission: Admission<'a>,
    ) -> Result<Admission<'a>, Error> {
        let Some(fleet) = slot.fleet.as_ref().filter(|_| admission.probe) else {
            return Ok(admission);
        };
        let ttl = match slot.state().circuit.as_ref() {
            Some(c) => c.cool_down(),
            None => return Ok(admission),
        };
        match fleet.store.acquire_probe(&fleet.target, ttl).await {
            Ok(true) | Err(_) => Ok(admission),
            Ok(false) => {
                admission.armed = false;
                if let Some(c) = slot.state().circuit.as_mut() {
                    c.probe_elsewhere(Instant::now());
                }
                Err(Error::new(
                    ErrorKind::CircuitOpen,
                    "the target's circuit is half-open and another process probes it",
                )
                .with_provider(slot.target.provider_name().to_owned()))
            }
        }
    }

    /// May a request go to this target now? Its admission, or the error of its skip (resting or
    /// circuit open).
    fn admit(&self, slot_index: usize, now: Instant) -> Result<Admission<'_>, Error> {
        let slot = &self.slots[slot_index];
        let mut state = slot.state();
        if state.rest.is_resting(now) {
            let left = state.rest.ready_at().map(|at| at - now);
            let (kind, message) = match state.rest.reason() {
                RestReason::RateLimit => (
                    ErrorKind::RateLimited,
                    "the target rests until its Retry-After has passed",
                ),
                RestReason::Quota => (
                    ErrorKind::QuotaExceeded,
                    "the target rests: its quota is exhausted",
                ),
            };
            return Err(Error::new(kind, message)
                .with_retry_after(left)
                .with_provider(slot.target.provider_name().to_owned()));
        }
        let (ticket, probe) = match state.circuit.as_mut().map(|c| c.permit(now)) {
            None => (None, false),
            Some(Permit::Allowed(ticket)) => (Some(ticket), false),
            Some(Permit::Probe(ticket)) => (Some(ticket), true),
            Some(Permit::Rejected { .. }) => {
                return Err(
                    Error::new(ErrorKind::CircuitOpen, "the target's circuit is open")
                        .with_provider(slot.target.provider_name().to_owned()),
                );
            }
        };
        Ok(Admission {
            slot,
            ticket,
            probe,
            armed: true,
        })
    }

    /// How long a failure benches its target, and why, capped at `max_rest`: a rate limit for its
    /// `Retry-After`, an exhausted quota for its `Retry-After` or else `quota_rest`.
    fn rest_for(&self, err: &Error) -> Option<(Duration, RestReason)> {
        let (wait, reason) = match err.kind() {
            ErrorKind::RateLimited => (err.retry_after()?, RestReason::RateLimit),
            ErrorKind::QuotaExceeded => (
                err.retry_after().unwrap_or(self.quota_rest),
                RestReason::Quota,
            ),
            _ => return None,
        };
        Some((wait.min(self.max_rest), reason))
    }

    /// Whether a target could take a request now (without taking a circuit permit).
    fn is_available(&self, slot_index: usize, now: Instant) -> bool {
        let state = self.slots[slot_index].state();
        !state.rest.is_resting(now)
            && state
                .circuit
                .as_ref()
                .is_none_or(|c| c.state(now) != CircuitStatus::Open)
    }

    /// When a target is ready again (rest and circuit), `None` for now.
    fn ready_at(&self, slot_index: usize, now: Instant) -> Option<Instant> {
        let mut state = self.slots[slot_index].state();
        let rest = state.rest.ready_at().filter(|&at| at > now);
        let circuit = match state.circuit.as_mut().map(|c| c.state(now)) {
            Some(CircuitStatus::Open) => Some(now + Duration::from_secs(3600)),
            _ => None,
        };
        rest.max(circuit)
    }

    fn record(
        &self,
        slot_index: usize,
        reason: AttemptReason,
        outcome: AttemptOutcome,
        latency: Duration,
    ) -> Attempt {
        let target = &self.slots[slot_index].target;
        Attempt {
            provider: target.provider_name().to_owned(),
            model: target.model.clone(),
            reason,
            outcome,
            latency,
            cost: None,
        }
    }

    /// One attempt on `targets[pos]`, raced by hedges on later targets when the policy says so:
    /// each time `delay` passes without an answer, one more hedge goes to the next available
    /// target not yet called by this request, while the request has hedges left (`max_hedges`)
    /// and the route's budget pays. The first success wins and the others are cancelled (dropped,
    /// which closes their connections). Every attempt is logged in the order it started.
    ///
    /// Returns the answer and the slot that served it; or, when every racer failed, the primary's
    /// failure, the hedges' failures being left in `tally.raced` for their own targets.
    #[allow(clippy::too_many_arguments)]
    async fn hedged_attempt<'s>(
        &'s self,
        route: Option<&Route>,
        targets: &[usize],
        pos: usize,
        admission: Admission<'s>,
        job: Job<'_>,
        call: Call,
        reason: AttemptReason,
        deadline: Option<Instant>,
        tally: &mut Tally,
        log: &mut Log,
    ) -> Result<(Answer, usize), Failure> {
        let primary_slot = targets[pos];
        let primary_started = Instant::now();
        let delay = match (&self.hedge, route) {
            (Some(policy), Some(_)) if pos + 1 < targets.len() && tally.hedges_left > 0 => {
                let state = self.slots[primary_slot].state();
                let stats = match call {
                    Call::Chat => &state.stats.total,
                    Call::Stream => &state.stats.first_delta,
                };
                policy.hedge_delay(stats, primary_started)
            }
            _ => None,
        };
        let (Some(delay), Some(route)) = (delay, route) else {
            let (result, record) = self
                .attempt(primary_slot, admission, job, call, reason, deadline)
                .await;
            return settle(result, record, primary_slot, Instant::now(), log);
        };

        // The racers, in the order they started; each result is kept until the race ends.
        struct Racer {
            pos: usize,
            reason: AttemptReason,
            started: Instant,
            result: Option<(Result<Answer, Error>, Attempt, Instant)>,
        }
        let start = |index: usize, slot: usize, admission: Admission<'s>, reason: AttemptReason| async move {
            let outcome = self
                .attempt(slot, admission, job, call, reason, deadline)
                .await;
            (index, outcome)
        };
        // Most primaries answer before the hedge delay: race them against the timer alone, and
        // set up the race of several (a task per racer) only once a hedge is due. The primary is
        // held in a pinned `Option` so that it can be cancelled (dropped) before it is logged.
        let mut primary_call = std::pin::pin!(futures::future::OptionFuture::from(Some(start(
            0,
            primary_slot,
            admission,
            reason
        ))));
        let timer = tokio::time::sleep(delay);
        tokio::pin!(timer);
        tokio::select! {
            biased;
            Some((_, (result, record))) = primary_call.as_mut() => {
                return settle(result, record, primary_slot, Instant::now(), log);
            }
            () = &mut timer => {}
        }
        let mut racers = vec![Racer {
            pos,
            reason,
            started: primary_started,
            result: None,
        }];
        let mut running = futures::stream::FuturesUnordered::new();
        running.push(futures::future::Either::Left(primary_call.as_mut()));
        let mut next_candidate = pos + 1;
        // The timer has fired: the loop's first turn sends the first hedge.
        let mut may_hedge = true;
        loop {
            tokio::select! {
                Some(Some((index, (result, record)))) = running.next() => {
                    let ok = result.is_ok();
                    racers[index].result = Some((result, record, Instant::now()));
                    if ok || running.is_empty() {
                        break;
                    }
                }
                () = &mut timer, if may_hedge => {
                    match self.start_hedge(route, targets, next_candidate, &tally.called) {
                        Some((at, slot, admission)) => {
                            tracing::debug!(delay_ms = delay.as_millis() as u64, "hedging");
                            tally.hedges_left -= 1;
                            tally.called[at] = true;
                            next_candidate = at + 1;
                            racers.push(Racer {
                                pos: at,
                                reason: AttemptReason::Hedge,
                                started: Instant::now(),
                                result: None,
                            });
                            running.push(futures::future::Either::Right(
                                start(racers.len() - 1, slot, admission, AttemptReason::Hedge)
                                    .map(Some),
                            ));
                            may_hedge = tally.hedges_left > 0 && next_candidate < targets.len();
                            timer.as_mut().reset(Instant::now() + delay);
                        }
                        None => may_hedge = false,
                    }
                }
            }
        }
        // Cancel the attempts still running before logging them.
        drop(running);
        primary_call.set(None.into());
        let mut served = None;
        let mut primary = None;
        for racer in racers {
            let slot = targets[racer.pos];
            match racer.result {
                Some((result, record, at)) => match settle(result, record, slot, at, log) {
                    Ok(answer) => served = Some(answer),
                    Err(failure) if racer.pos == pos => primary = Some(failure),
                    Err(failure) => tally.raced[racer.pos] = Some(failure),
                },
                None => {
                    let mut record = self.record(
                        slot,
                        racer.reason,
                        AttemptOutcome::Cancelled,
                        racer.started.elapsed(),
                    );
                    // A cancelled call is presumed to have used its prompt.
                    let slot = &self.slots[slot];
                    record.cost = slot
                        .price
                        .as_ref()
                        .map(|p| p.estimate(job.estimate.get(), 0));
                    log.attempts.push(record);
                }
            }
        }
        match (served, primary) {
            (Some(answer), _) => Ok(answer),
            (None, Some(failure)) => Err(failure),
            // Unreachable: a race without a winner ends once every racer, the primary included,
            // has failed.
            (None, None) => Err(Self::lost_primary(log)),
        }
    }

    /// A failure standing in for a primary whose result went missing (never expected).
    fn lost_primary(log: &mut Log) -> Failure {
        log.errors
            .push(Error::new(ErrorKind::Network, "the attempt was lost"));
        Failure {
            error: log.errors.len() - 1,
            at: Instant::now(),
        }
    }

    /// Admits a hedge on the first available target at or after position `from` that this request
    /// has not called yet, if the route's budget pays for it: its position, slot and admission.
    fn start_hedge(
        &self,
        route: &Route,
        targets: &[usize],
        from: usize,
        called: &[bool],
    ) -> Option<(usize, usize, Admission<'_>)> {
        let now = Instant::now();
        let (at, slot) = targets
            .iter()
            .copied()
            .enumerate()
            .skip(from)
            .find(|&(at, i)| !called[at] && self.is_available(i, now))?;
        let admission = self.admit(slot, now).ok()?;
        let paid = route
            .hedge_budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .is_some_and(HedgeBudget::try_spend);
        // Unpaid, the admission is dropped, which hands a probe back unused.
        paid.then_some((at, slot, admission))
    }

    /// One call of one target, with its timeouts, stream pre-flight and bookkeeping: the budget
    /// reservation before it (a refusal is a skip, with no call), the settlement after it, and
    /// the target's health, latency, stats and rate-limit state.
    async fn attempt(
        &self,
        slot_index: usize,
        admission: Admission<'_>,
        job: Job<'_>,
        call: Call,
        reason: AttemptReason,
        deadline: Option<Instant>,
    ) -> (Result<Answer, Error>, Attempt) {
        let slot = &self.slots[slot_index];
        let target = &slot.target;
        let admission = match self.take_fleet_probe(slot, admission).await {
            Ok(admission) => admission,
            Err(err) => return self.skipped(slot_index, reason, err),
        };
        let hold = if self.ledger.is_empty() {
            None
        } else {
            let input = job.estimate.get();
            let worst = slot.estimate(input, worst_output(slot, job.req));
            let if_cancelled = slot.estimate(input, 0);
            let provider = target.provider_name();
            match self
                .ledger
                .reserve(&job.scope, (provider, &target.model), worst, if_cancelled)
                .await
            {
                Ok(hold) => hold,
                Err(err) => {
                    let err = err.with_provider(provider.to_owned());
                    admission.record(&mut slot.state(), Instant::now(), Outcome::Other);
                    return self.skipped(slot_index, reason, err);
                }
            }
        };
        let in_flight = InFlight::new(&slot.in_flight);
        let started = Instant::now();
        let limit = match (target.timeout.map(|t| saturating_add(started, t)), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The provider gets the request's deadline, not the whole timeout again: it is what
        // bounds a stream's body once the stream has been handed to the caller. The request is
        // borrowed; only what the target changes travels beside it.
        // A target with a price of its own gives its provider no table, so that a cost on the
        // answer is one the provider reported itself and the rest is priced here, at the
        // target's price (not at a table entry for the same model).
        let prices = if target.price.is_some() {
            no_prices()
        } else {
            &self.prices
        };
        let opts = target.call_options(deadline, job.media).prices(prices);
        let provider: &Arc<dyn ChatProvider> = &target.provider;
        let first_delta_timeout = target
            .first_delta_timeout
            .unwrap_or(self.first_delta_timeout);
        let call_fut = async {
            match call {
                Call::Chat => provider
                    .chat_with(job.req, &opts)
                    .await
                    .map(|r| Answer::Chat(Box::new(r))),
                // Boxed: a stream's pre-flight state would otherwise double the size of every
                // chat attempt's future, which is moved several times per call.
                Call::Stream => Box::pin(preflight(
                    provider.as_ref(),
                    job.req,
                    &opts,
                    first_delta_timeout,
                ))
                .await
                .map(|s| Answer::Stream(Box::new(s))),
            }
        };
        let span = tracing::debug_span!(
            "modelgate.attempt",
            provider = %target.provider_name(),
            model = %target.model,
            reason = ?reason,
            "gen_ai.provider.name" = %target.provider_name(),
            "gen_ai.request.model" = %target.model,
            "error.type" = tracing::field::Empty,
        );
        let result = match limit {
            Some(at) => tokio::time::timeout_at(at, call_fut.instrument(span.clone()))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::timeout("the attempt passed its deadline")
                        .with_provider(target.provider_name().to_owned()))
                }),
            None => call_fut.instrument(span.clone()).await,
        };
        let now = Instant::now();
        let latency = now - started;
        let mut result = result;
        if let Ok(Answer::Stream(s)) = &mut result
            && target.price.is_some()
        {
            // Priced at the target's own price once its usage arrives (the provider had none).
            s.set_price(slot.price.clone());
        }
        // A chat answer's cost: the provider's, else its usage at the target's price.
        let mut cost = None;
        if let Ok(Answer::Chat(r)) = &mut result {
            if r.cost.is_none()
                && let (Some(price), Some(usage)) = (&slot.price, &r.usage)
            {
                r.cost = Some(price.cost(usage));
            }
            cost = r.cost;
        }
        let rate_limit = match &result {
            Ok(Answer::Chat(r)) if self.steer_by_rate_limits => r.rate_limit,
            Ok(Answer::Stream(s)) if self.steer_by_rate_limits => s.rate_limit().copied(),
            _ => None,
        };
        #[cfg(feature = "metrics")]
        let labels = super::metrics::Labels::new(slot, job.scope.routes[1].unwrap_or(""));
        let mut hold = hold;
        let mut in_flight = Some(in_flight);
        if let Ok(Answer::Stream(stream)) = &mut result {
            if let Some(price) = &slot.price {
                stream.set_price_if_none(price);
            }
            watch_stream(
                stream,
                slot,
                admission.ticket,
                started,
                deadline,
                hold.take(),
                // What a stream dropped before its usage cost includes its prompt.
                if slot.price.is_some() {
                    job.estimate.get()
                } else {
                    0
                },
                in_flight.take().expect("set above"),
                #[cfg(feature = "metrics")]
                labels.clone(),
            );
        }
        match (hold, &result) {
            (Some(hold), Ok(_)) => {
                let spent = cost.map_or(hold.reserved(), usd_to_nanos);
                hold.settle(spent);
            }
            (Some(hold), Err(_)) => hold.release(),
            (None, _) => {}
        }
        drop(in_flight);
        {
            let mut state = slot.state();
            state.stats.tally.requests += 1;
            let alpha = job.alpha;
            let which = usize::from(call == Call::Stream);
            let outcome = match &result {
                Ok(answer) => {
                    match call {
                        Call::Chat => state.stats.total.record(now, latency),
                        Call::Stream => state.stats.first_delta.record(now, latency),
                    }
                    state.latency[which].observe(now, latency, alpha);
                    if let Answer::Chat(r) = answer {
                        state
                            .stats
                            .tally
                            .answered(r.usage.map(|u| u.output_tokens), latency, cost);
                    }
                    if let Some(rl) = rate_limit
                        && rl.is_nearly_exhausted(job.estimate.get())
                        && let Some(reset) = rl.reset().filter(|r| !r.is_zero())
                    {
                        // Steer away before the provider answers 429.
                        tracing::debug!(
                            reset_ms = reset.as_millis() as u64,
                            "rate limit nearly exhausted; resting"
                        );
                        let until = saturating_add(now, reset.min(self.max_rest));
                        state.rest.rest_until(until, RestReason::RateLimit);
                        if let Some(fleet) = &slot.fleet {
                            fleet.rested(until, RestReason::RateLimit);
                        }
                    }
                    Outcome::Success
                }
                Err(e) => {
                    state.stats.tally.error(e.kind());
                    if e.kind() == ErrorKind::Timeout {
                        // A target that times out is slow.
                        state.latency[which].observe(now, latency, alpha);
                    }
                    if let Some((wait, reason)) = self.rest_for(e) {
                        let until = saturating_add(now, wait);
                        state.rest.rest_until(until, reason);
                        if let Some(fleet) = &slot.fleet {
                            fleet.rested(until, reason);
                        }
                    }
                    health_outcome(e, now, deadline)
                }
            };
            admission.record(&mut state, now, outcome);
        }
        let outcome = match &result {
            Ok(_) => AttemptOutcome::Success,
            Err(e) => {
                span.record("error.type", e.kind().as_str());
                AttemptOutcome::Failed(e.kind())
            }
        };
        span.in_scope(|| {
            tracing::debug!(outcome = ?outcome, latency_ms = latency.as_millis() as u64, "attempt finished");
        });
        #[cfg(feature = "metrics")]
        super::metrics::attempt(&labels, call, latency, &result, cost);
        let mut record = self.record(slot_index, reason, outcome, latency);
        record.cost = cost;
        (result, record)
    }
}

/// The price table a target with its own price hands its provider: an empty one.
fn no_prices() -> &'static PriceTable {
    static EMPTY: OnceLock<PriceTable> = OnceLock::new();
    EMPTY.get_or_init(PriceTable::empty)
}

/// The most output a call on `slot` can produce: the target's or request's `max_tokens`, else
/// the model's maximum output, else [`DEFAULT_WORST_OUTPUT_TOKENS`].
fn worst_output(slot: &Slot, req: &ChatRequest) -> u64 {
    slot.target
        .max_tokens
        .or(req.max_tokens)
        .map(u64::from)
        .or_else(|| slot.price.as_ref().and_then(|p| p.max_output_tokens))
        .unwrap_or(DEFAULT_WORST_OUTPUT_TOKENS)
}

/// Records a request's failure on its span.
fn record_error(span: &tracing::Span, err: Error) -> Error {
    span.record("error.type", err.kind().as_str());
    err
}

/// Records what answered a request, and its usage and cost, on its span.
fn record_response(span: &tracing::Span, r: &ChatResponse) {
    if span.is_disabled() {
        return;
    }
    span.record("gen_ai.provider.name", r.provider.as_str());
    span.record("gen_ai.response.model", r.model.as_str());
    if let Some(u) = &r.usage {
        span.record("gen_ai.usage.input_tokens", u.input_tokens);
        span.record("gen_ai.usage.output_tokens", u.output_tokens);
        span.record(
            "gen_ai.usage.cache_read.input_tokens",
            u.cached_input_tokens,
        );
        span.record("gen_ai.usage.reasoning.output_tokens", u.reasoning_tokens);
    }
    span.record(
        "gen_ai.response.finish_reasons",
        tracing::field::debug(&r.finish_reason),
    );
    if let Some(cost) = r.cost {
        span.record("modelgate.cost_usd", cost);
    }
}

/// Logs an attempt of `slot`; a failure's error goes into the log, where the loop reads it.
fn settle(
    result: Result<Answer, Error>,
    record: Attempt,
    slot: usize,
    at: Instant,
    log: &mut Log,
) -> Result<(Answer, usize), Failure> {
    match result {
        Ok(answer) => {
            log.attempts.push(record);
            Ok((answer, slot))
        }
        Err(err) => {
            log.failed(record, err);
            Err(Failure {
                error: log.errors.len() - 1,
                at,
            })
        }
    }
}

/// Opens a stream and holds it until its first content delta (text, reasoning or a tool call)
/// arrives, so that a failure before then can still be retried, fallen back or hedged.
async fn preflight(
    provider: &dyn ChatProvider,
    req: &ChatRequest,
    opts: &CallOptions<'_>,
    first_delta_timeout: Duration,
) -> Result<ChatStream, Error> {
    let until = saturating_add(Instant::now(), first_delta_timeout);
    let no_delta = || {
        Error::timeout(format!("no first delta within {first_delta_timeout:?}"))
            .with_provider(provider.name().to_owned())
    };
    let mut stream = tokio::time::timeout_at(until, provider.chat_stream_with(req, opts))
        .await
        .map_err(|_| no_delta())??;
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Err(_) => return Err(no_delta()),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(delta))) => {
                let content = matches!(
                    delta,
                    Delta::Text(_) | Delta::Reasoning(_) | Delta::ToolCall { .. }
                );
                held.push(delta);
                if content {
                    break;
                }
            }
        }
    }
    for delta in held.into_iter().rev() {
        stream.push_front(delta);
    }
    Ok(stream)
}

#[cfg(test)]
mod per_target_tests {
    use super::{INLINE_TARGETS, PerTarget};

    #[test]
    fn short_and_long_routes_index_alike() {
        for n in [0, 1, INLINE_TARGETS, INLINE_TARGETS + 1, 40] {
            let mut t = PerTarget::new(n, 0u32);
            assert_eq!(t.len(), n);
            for i in 0..n {
                t[i] += i as u32;
            }
            assert!(t.iter().enumerate().all(|(i, &v)| v == i as u32));
            assert_eq!(matches!(t, PerTarget::Inline(..)), n <= INLINE_TARGETS);
        }
    }
}
