//! How a router served a request.

use std::time::Duration;

use crate::error::ErrorKind;

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptReason {
    /// The first attempt of the request.
    First,
    /// The same target again after a retryable failure.
    Retry,
    /// The next target after the previous one failed.
    Fallback,
    /// A parallel attempt started because the first one was slow.
    Hedge,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It produced the answer (or, for streams, the first delta).
    Success,
    /// It failed with an error of this kind.
    Failed(ErrorKind),
    /// It was skipped without a call (circuit open, target resting, budget).
    Skipped(ErrorKind),
    /// It lost a hedge race and was cancelled.
    Cancelled,
}

/// One provider call made for a request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Attempt {
    /// The provider called.
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// Why the call was made.
    pub reason: AttemptReason,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// From the start of the call to its answer (streams: to the first delta), or to its failure.
    pub latency: Duration,
    /// What the call cost in USD, when known: a chat answer's cost; for a hedge's loser,
    /// cancelled before it answered, the price of its prompt (what it is presumed to have used).
    /// A stream's cost is known only once it ends ([`ChatStream::cost`](crate::ChatStream::cost)).
    pub cost: Option<f64>,
}

/// The route a request took through a router.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RouteInfo {
    /// The route alias that served the request (for a route of rules, the route of targets its
    /// rules led to; after a budget's downgrade, the route downgraded to), or the model when it
    /// named one directly.
    pub route: String,
    /// Index of the target that served the request within its route.
    pub target_index: Option<usize>,
    /// Every attempt, in the order they started.
    pub attempts: Vec<Attempt>,
}

impl Attempt {
    /// An attempt on `provider`'s `model`, made for `reason`, that ended with `outcome` after
    /// `latency`.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        reason: AttemptReason,
        outcome: AttemptOutcome,
        latency: Duration,
    ) -> Self {
        Attempt {
            provider: provider.into(),
            model: model.into(),
            reason,
            outcome,
            latency,
            cost: None,
        }
    }
}

impl RouteInfo {
    /// The record of a request that named `route`, with no attempts yet.
    pub fn new(route: impl Into<String>) -> Self {
        RouteInfo {
            route: route.into(),
            ..RouteInfo::default()
        }
    }
}
