//! The router's attempt loop: it composes the pure policies (retry, rest, circuit, hedge, stats)
//! into calls of the targets' providers, and records every attempt.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::time::{Duration, Instant};
use tracing::Instrument;

use super::circuit::{CircuitBreaker, CircuitState, CircuitStatus, Outcome, Permit};
use super::clock::saturating_add;
use super::hedge::{HedgeBudget, HedgePolicy};
use super::rest::{self, RestState};
use super::retry::{RetryDecision, RetryPolicy};
use super::stats::TargetStats;
use super::target::Target;
use crate::error::{Error, ErrorKind};
use crate::provider::ChatProvider;
use crate::types::{
    Attempt, AttemptOutcome, AttemptReason, ChatRequest, ChatResponse, ChatStream, Delta, RouteInfo,
};

/// Everything a router shares between its clones.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) routes: std::collections::HashMap<String, Route>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) retry: RetryPolicy,
    pub(crate) hedge: Option<HedgePolicy>,
    pub(crate) first_delta_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) fallback_on: Vec<ErrorKind>,
    pub(crate) rng: Mutex<fastrand::Rng>,
}

/// A named route: indices into [`Shared::slots`], in order of preference.
pub(crate) struct Route {
    pub(crate) targets: Vec<usize>,
    pub(crate) hedge_budget: Mutex<Option<HedgeBudget>>,
}

/// A target and its health state, shared by every route that lists it.
pub(crate) struct Slot {
    pub(crate) target: Target,
    state: Mutex<SlotState>,
}

struct SlotState {
    circuit: Option<CircuitState>,
    rest: RestState,
    stats: TargetStats,
}

impl Slot {
    pub(crate) fn new(target: Target, circuit: Option<CircuitBreaker>) -> Self {
        Slot {
            target,
            state: Mutex::new(SlotState {
                circuit: circuit.map(CircuitState::new),
                rest: RestState::default(),
                stats: TargetStats::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        // The state holds plain numbers; a panic elsewhere cannot leave it unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which call the request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Chat,
    Stream,
}

/// A successful attempt's answer. (Lives briefly on the stack of one request; boxing the
/// stream would cost an allocation per request for nothing.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    Chat(Box<ChatResponse>),
    Stream(ChatStream),
}

/// What one request has tried so far.
#[derive(Default)]
struct Log {
    attempts: Vec<Attempt>,
    errors: Vec<Error>,
}

impl Log {
    /// The last failure's error, to surface on its own.
    fn take_last(&mut self) -> Error {
        self.errors.pop().expect("a failed attempt logs its error")
    }

    fn failed(&mut self, record: Attempt, err: Error) {
        self.attempts.push(record);
        self.errors.push(err);
    }
}

/// Records `Outcome::Other` for a circuit probe whose attempt was dropped before it finished (a
/// hedge loser, a cancelled request), so that the next probe need not wait for it.
struct ProbeGuard<'a> {
    slot: &'a Slot,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Some(c) = self.slot.state().circuit.as_mut()
        {
            c.record(Instant::now(), Outcome::Other);
        }
    }
}

impl Shared {
    pub(crate) fn circuit_status(&self, route: &str, model: &str) -> Option<CircuitStatus> {
        let route = self.routes.get(route)?;
        let slot = route
            .targets
            .iter()
            .map(|&i| &self.slots[i])
            .find(|s| s.target.model == model)?;
        let state = slot.state();
        state.circuit.as_ref().map(|c| c.state(Instant::now()))
    }

    /// Serves `req` through its route.
    pub(crate) async fn run(&self, req: &ChatRequest, call: Call) -> Result<Answer, Error> {
        let (route, targets): (Option<&Route>, Vec<usize>) = match self.routes.get(&req.model) {
            Some(route) => (Some(route), route.targets.clone()),
            None => match self.slots.iter().position(|s| s.target.model == req.model) {
                Some(i) => (None, vec![i]),
                None => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("no route or target serves `{}`", req.model),
                    )
                    .with_provider(self.name.clone()));
                }
            },
        };
        let span = tracing::info_span!(
            "modelgate.request",
            router = %self.name,
            route = %req.model,
            stream = call == Call::Stream,
        );
        self.run_route(req, call, route, &targets)
            .instrument(span)
            .await
    }

    async fn run_route(
        &self,
        req: &ChatRequest,
        call: Call,
        route: Option<&Route>,
        targets: &[usize],
    ) -> Result<Answer, Error> {
        let start = Instant::now();
        let deadline = req
            .timeout
            .or(self.timeout)
            .map(|d| saturating_add(start, d));
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
        let mut retries_total = 0u32;
        let mut pos = 0usize;
        let mut reason = AttemptReason::First;
        let mut waited_for_rest = false;
        loop {
            if pos >= targets.len() {
                // Every target was tried or skipped. If some only rest, wait for the earliest
                // when that fits the deadline (once); otherwise fail.
                let now = Instant::now();
                let ready_at = targets.iter().map(|&i| self.ready_at(i, now));
                match rest::choose(ready_at, now, self.retry.wait_limit(now, deadline)) {
                    rest::Choice::WaitUntil(at, index)
                        if !waited_for_rest && !log.errors.is_empty() =>
                    {
                        tracing::debug!(
                            wait_ms = (at - now).as_millis() as u64,
                            "every target rests; waiting"
                        );
                        tokio::time::sleep_until(at).await;
                        waited_for_rest = true;
                        pos = index;
                        reason = AttemptReason::Retry;
                    }
                    _ => return Err(self.exhausted(log, deadline)),
                }
            }
            let slot_index = targets[pos];
            let probe = match self.admit(slot_index, Instant::now()) {
                Ok(probe) => probe,
                Err(skip) => {
                    let record = self.record(
                        slot_index,
                        reason,
                        AttemptOutcome::Skipped(skip.kind()),
                        Duration::ZERO,
                    );
                    log.failed(record, skip);
                    pos += 1;
                    reason = AttemptReason::Fallback;
                    continue;
                }
            };
            let mut retries_of_target = 0u32;
            let mut probe = Some(probe);
            loop {
                let is_probe = match probe.take() {
                    Some(p) => p,
                    None => match self.admit(slot_index, Instant::now()) {
                        Ok(p) => p,
                        Err(skip) => {
                            let record = self.record(
                                slot_index,
                                reason,
                                AttemptOutcome::Skipped(skip.kind()),
                                Duration::ZERO,
                            );
                            log.failed(record, skip);
                            break;
                        }
                    },
                };
                let result = self
                    .hedged_attempt(
                        route, targets, pos, is_probe, req, call, reason, deadline, &mut log,
                    )
                    .await;
                if let Some((answer, served)) = result {
                    return Ok(self.finish(answer, req, log, targets, served));
                }
                let err = log.errors.last().expect("a failed attempt logs its error");
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(self.exhausted(log, deadline));
                }
                let kind = err.kind();
                if kind == ErrorKind::ContextLength {
                    // Move on only to a target with a larger window.
                    let current = self.slots[slot_index].target.context_window.unwrap_or(0);
                    match targets[pos + 1..].iter().position(|&i| {
                        self.slots[i]
                            .target
                            .context_window
                            .is_some_and(|w| w > current)
                    }) {
                        Some(offset) => {
                            pos += 1 + offset;
                            reason = AttemptReason::Fallback;
                            break;
                        }
                        None => return Err(log.take_last()),
                    }
                }
                let may_fall_back = err.should_fallback() || self.fallback_on.contains(&kind);
                if !err.is_retryable() && !may_fall_back {
                    // The caller's to fix: surface it at once.
                    return Err(log.take_last());
                }
                // A rate-limited target rests (its attempt recorded the rest); another serves.
                let other_ready = kind == ErrorKind::RateLimited
                    && targets[pos + 1..]
                        .iter()
                        .any(|&i| self.is_available(i, now));
                let decision = if other_ready {
                    RetryDecision::GiveUp(super::retry::GiveUpReason::NotRetryable)
                } else {
                    let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    self.retry.decide(
                        err,
                        retries_of_target,
                        retries_total,
                        now,
                        deadline,
                        &mut rng,
                    )
                };
                match decision {
                    RetryDecision::RetryAfter(wait) => {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, kind = %kind, "retrying");
                        tokio::time::sleep(wait).await;
                        retries_of_target += 1;
                        retries_total += 1;
                        reason = AttemptReason::Retry;
                    }
                    RetryDecision::GiveUp(_) if may_fall_back => {
                        pos += 1;
                        reason = AttemptReason::Fallback;
                        break;
                    }
                    RetryDecision::GiveUp(_) => return Err(log.take_last()),
                }
            }
        }
    }

    /// The error when nothing served the request: a `Timeout` when the deadline passed, else
    /// `AllTargetsFailed`; both carry every attempt's error.
    fn exhausted(&self, log: Log, deadline: Option<Instant>) -> Error {
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
        req: &ChatRequest,
        log: Log,
        targets: &[usize],
        served: usize,
    ) -> Answer {
        let info = RouteInfo {
            route: req.model.clone(),
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

    /// May a request go to this target now? `Ok(true)` when it is the circuit's probe.
    fn admit(&self, slot_index: usize, now: Instant) -> Result<bool, Error> {
        let slot = &self.slots[slot_index];
        let mut state = slot.state();
        if state.rest.is_resting(now) {
            return Err(Error::new(
                ErrorKind::RateLimited,
                "the target rests until its Retry-After has passed",
            )
            .with_provider(slot.target.provider_name().to_owned()));
        }
        match state.circuit.as_mut().map(|c| c.permit(now)) {
            None | Some(Permit::Allowed) => Ok(false),
            Some(Permit::Probe) => Ok(true),
            Some(Permit::Rejected { .. }) => Err(Error::new(
                ErrorKind::CircuitOpen,
                "the target's circuit is open",
            )
            .with_provider(slot.target.provider_name().to_owned())),
        }
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
        }
    }

    /// One attempt on `targets[pos]`, raced by a hedge on a later target when the policy says so.
    /// Returns the answer and the slot that served it.
    #[allow(clippy::too_many_arguments)]
    async fn hedged_attempt(
        &self,
        route: Option<&Route>,
        targets: &[usize],
        pos: usize,
        is_probe: bool,
        req: &ChatRequest,
        call: Call,
        reason: AttemptReason,
        deadline: Option<Instant>,
        log: &mut Log,
    ) -> Option<(Answer, usize)> {
        let primary_slot = targets[pos];
        let primary_started = Instant::now();
        let primary = self.attempt(primary_slot, is_probe, req, call, reason, deadline);
        tokio::pin!(primary);
        let delay = match (&self.hedge, route) {
            (Some(policy), Some(_)) if pos + 1 < targets.len() => {
                let state = self.slots[primary_slot].state();
                let stats = match call {
                    Call::Chat => &state.stats.total,
                    Call::Stream => &state.stats.first_delta,
                };
                policy.hedge_delay(stats, primary_started)
            }
            _ => None,
        };
        let Some(delay) = delay else {
            let (result, record) = primary.await;
            return settle(result, record, primary_slot, log);
        };
        tokio::select! {
            (result, record) = &mut primary => return settle(result, record, primary_slot, log),
            _ = tokio::time::sleep(delay) => {}
        }
        // The primary is slow: hedge on the next available target, if the budget allows.
        let now = Instant::now();
        let hedge_slot = targets[pos + 1..]
            .iter()
            .copied()
            .find(|&i| self.is_available(i, now));
        let spent = hedge_slot.is_some()
            && route
                .and_then(|r| {
                    r.hedge_budget
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                        .map(HedgeBudget::try_spend)
                })
                .unwrap_or(false);
        let (Some(hedge_slot), true) = (hedge_slot, spent) else {
            let (result, record) = primary.await;
            return settle(result, record, primary_slot, log);
        };
        let hedge_probe = match self.admit(hedge_slot, now) {
            Ok(p) => p,
            Err(_) => {
                let (result, record) = primary.await;
                return settle(result, record, primary_slot, log);
            }
        };
        tracing::debug!(delay_ms = delay.as_millis() as u64, "hedging");
        let hedge_started = Instant::now();
        let hedge = self.attempt(
            hedge_slot,
            hedge_probe,
            req,
            call,
            AttemptReason::Hedge,
            deadline,
        );
        tokio::pin!(hedge);
        tokio::select! {
            (result, record) = &mut primary => {
                if result.is_ok() {
                    log.attempts.push(self.record(hedge_slot, AttemptReason::Hedge, AttemptOutcome::Cancelled, hedge_started.elapsed()));
                    return settle(result, record, primary_slot, log);
                }
                settle(result, record, primary_slot, log);
                let (result, record) = hedge.await;
                settle(result, record, hedge_slot, log)
            }
            (result, record) = &mut hedge => {
                if result.is_ok() {
                    log.attempts.push(self.record(primary_slot, reason, AttemptOutcome::Cancelled, primary_started.elapsed()));
                    return settle(result, record, hedge_slot, log);
                }
                settle(result, record, hedge_slot, log);
                let (result, record) = primary.await;
                settle(result, record, primary_slot, log)
            }
        }
    }

    /// One call of one target, with its timeouts, stream pre-flight and bookkeeping.
    async fn attempt(
        &self,
        slot_index: usize,
        is_probe: bool,
        req: &ChatRequest,
        call: Call,
        reason: AttemptReason,
        deadline: Option<Instant>,
    ) -> (Result<Answer, Error>, Attempt) {
        let slot = &self.slots[slot_index];
        let target = &slot.target;
        let mut guard = ProbeGuard {
            slot,
            armed: is_probe,
        };
        let target_req = target.request(req);
        let started = Instant::now();
        let limit = match (target.timeout.map(|t| saturating_add(started, t)), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let provider: &Arc<dyn ChatProvider> = &target.provider;
        let first_delta_timeout = target
            .first_delta_timeout
            .unwrap_or(self.first_delta_timeout);
        let call_fut = async {
            match call {
                Call::Chat => provider
                    .chat(&target_req)
                    .await
                    .map(|r| Answer::Chat(Box::new(r))),
                Call::Stream => preflight(provider.as_ref(), &target_req, first_delta_timeout)
                    .await
                    .map(Answer::Stream),
            }
        };
        let span = tracing::debug_span!(
            "modelgate.attempt",
            provider = %target.provider_name(),
            model = %target.model,
            reason = ?reason,
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
        {
            let mut state = slot.state();
            let outcome = match &result {
                Ok(_) => {
                    match call {
                        Call::Chat => state.stats.total.record(now, latency),
                        Call::Stream => state.stats.first_delta.record(now, latency),
                    }
                    Outcome::Success
                }
                Err(e) => {
                    if e.kind() == ErrorKind::RateLimited
                        && let Some(wait) = e.retry_after()
                    {
                        state.rest.rest_until(saturating_add(now, wait));
                    }
                    Outcome::of_error(e)
                }
            };
            if let Some(c) = state.circuit.as_mut() {
                c.record(now, outcome);
            }
        }
        guard.armed = false;
        let outcome = match &result {
            Ok(_) => AttemptOutcome::Success,
            Err(e) => AttemptOutcome::Failed(e.kind()),
        };
        span.in_scope(|| {
            tracing::debug!(outcome = ?outcome, latency_ms = latency.as_millis() as u64, "attempt finished");
        });
        (result, self.record(slot_index, reason, outcome, latency))
    }
}

/// Logs an attempt; a failure's error goes into the log, where the loop reads it.
fn settle(
    result: Result<Answer, Error>,
    record: Attempt,
    slot: usize,
    log: &mut Log,
) -> Option<(Answer, usize)> {
    match result {
        Ok(answer) => {
            log.attempts.push(record);
            Some((answer, slot))
        }
        Err(err) => {
            log.failed(record, err);
            None
        }
    }
}

/// Opens a stream and holds it until its first content delta (text, reasoning or a tool call)
/// arrives, so that a failure before then can still be retried, fallen back or hedged.
async fn preflight(
    provider: &dyn ChatProvider,
    req: &ChatRequest,
    first_delta_timeout: Duration,
) -> Result<ChatStream, Error> {
    let until = saturating_add(Instant::now(), first_delta_timeout);
    let no_delta = || {
        Error::timeout(format!("no first delta within {first_delta_timeout:?}"))
            .with_provider(provider.name().to_owned())
    };
    let mut stream = tokio::time::timeout_at(until, provider.chat_stream(req))
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
