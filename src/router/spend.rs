//! The router's ledger: which budgets cover a call, reserving its worst cost before it is sent,
//! settling the real cost after it, and the downgrade decision. The counters live in the
//! [`StateStore`]; this module only decides what to claim.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::budget::{self, Budget, BudgetScope, BudgetSnapshot, WallClock};
use crate::error::Error;
use crate::state::{Claim, HoldId, Nanos, Reservation, StateStore};

/// A budget and the key of its counters.
#[derive(Debug)]
struct Entry {
    budget: Budget,
    key: Arc<str>,
}

/// Every budget of a router, and where their counters live.
#[derive(Debug)]
pub(crate) struct Ledger {
    entries: Vec<Entry>,
    store: Arc<dyn StateStore>,
    clock: WallClock,
}

/// What a request is, as budget scopes see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The routes the request counts under: the one it named (unless it was downgraded away from
    /// it) and the one serving it.
    pub(crate) routes: [Option<&'a str>; 2],
    pub(crate) tags: &'a BTreeMap<String, String>,
}

impl Ledger {
    pub(crate) fn new(budgets: Vec<Budget>, store: Arc<dyn StateStore>) -> Self {
        Ledger {
            entries: budgets
                .into_iter()
                .map(|budget| Entry {
                    key: Arc::from(budget.name.as_str()),
                    budget,
                })
                .collect(),
            store,
            clock: WallClock::new(),
        }
    }

    pub(crate) fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn budgets(&self) -> impl Iterator<Item = &Budget> {
        self.entries.iter().map(|e| &e.budget)
    }

    /// Whether the budget covers this call: `Some(tag value)` for a per-value budget, `Some(None)`
    /// for others, `None` when it does not cover it. `target` is `None` when asking about the
    /// request as a whole (target budgets then do not count).
    fn covers<'s>(
        entry: &Entry,
        scope: &Scope<'s>,
        target: Option<(&str, &str)>,
    ) -> Option<Option<&'s str>> {
        match &entry.budget.scope {
            BudgetScope::All => Some(None),
            BudgetScope::Route(r) => scope
                .routes
                .iter()
                .flatten()
                .any(|name| name == r)
                .then_some(None),
            BudgetScope::Target { provider, model } => target
                .is_some_and(|(p, m)| p == provider && m == model)
                .then_some(None),
            BudgetScope::Tag { key, value } => scope
                .tags
                .get(key)
                .is_some_and(|v| v == value)
                .then_some(None),
            BudgetScope::EachTagValue(key) => scope.tags.get(key).map(|v| Some(v.as_str())),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn claim(&self, entry: &Entry, tag_value: Option<&str>, now_unix: u64) -> Claim {
        Claim {
            key: match tag_value {
                // A unit separator cannot appear in a budget name from a config by accident.
                Some(v) => Arc::from(format!("{}\u{1f}{v}", entry.key)),
                None => entry.key.clone(),
            },
            window: budget::window_start(entry.budget.window, now_unix),
            limit: entry.budget.limit(),
            expires: budget::next_window_start(entry.budget.window, now_unix).unwrap_or(0),
        }
    }

    /// Reserves `amount` on every budget covering a call of `target` (provider, model) for this
    /// request. `Ok(None)` when no budget covers it.
    ///
    /// # Errors
    /// `BudgetExceeded` from the first budget that cannot pay; the store's own error when it
    /// cannot be reached.
    pub(crate) async fn reserve(
        &self,
        scope: &Scope<'_>,
        target: (&str, &str),
        amount: Nanos,
        if_cancelled: Nanos,
    ) -> Result<Option<Hold>, Error> {
        let now_unix = self.clock.now_unix();
        let covering = || {
            self.entries
                .iter()
                .filter_map(move |e| Some((e, Self::covers(e, scope, Some(target))?)))
        };
        let claims: Vec<Claim> = covering()
            .map(|(entry, tag)| self.claim(entry, tag, now_unix))
            .collect();
        if claims.is_empty() {
            return Ok(None);
        }
        match self.store.reserve(&claims, amount).await? {
            Reservation::Granted { hold } => Ok(Some(Hold {
                store: self.store.clone(),
                claims,
                hold,
                reserved: amount,
                if_cancelled: if_cancelled.min(amount),
                done: false,
            })),
            Reservation::Refused {
                claim,
                spent,
                reserved,
            } => {
                let (entry, tag) = covering()
                    .nth(claim)
                    .or_else(|| covering().next())
                    .expect("a claim was made");
                Err(budget::exceeded(
                    &entry.budget,
                    tag,
                    spent,
                    reserved,
                    amount,
                    now_unix,
                ))
            }
        }
    }

    /// The route a request should go to instead of its own, because a budget covering it is past
    /// its soft limit or cannot pay `worst` and says to downgrade; `None` to stay.
    ///
    /// # Errors
    /// The store's error when it cannot be reached.
    pub(crate) async fn downgrade(
        &self,
        scope: &Scope<'_>,
        worst: Nanos,
    ) -> Result<Option<&str>, Error> {
        let now_unix = self.clock.now_unix();
        for entry in &self.entries {
            let Some(to) = entry.budget.downgrade_to.as_deref() else {
                continue;
            };
            if scope.routes.iter().flatten().any(|r| *r == to) {
                continue;
            }
            let Some(tag) = Self::covers(entry, scope, None) else {
                continue;
            };
            let claim = self.claim(entry, tag, now_unix);
            // Advisory (the reservation decides): a recent copy will do.
            let c = self.store.recent_counters(&claim.key, claim.window).await?;
            let used = c.spent.saturating_add(c.reserved);
            let past_soft = entry.budget.soft().is_some_and(|soft| used >= soft);
            if past_soft || used.saturating_add(worst) > claim.limit {
                tracing::debug!(budget = %entry.key, to, "budget downgrades the request");
                return Ok(Some(to));
            }
        }
        Ok(None)
    }

    /// The route a request refused by a budget may still go to: the `downgrade_to` of a budget
    /// covering it that it has not been downgraded to already.
    pub(crate) fn downgrade_after_refusal(&self, scope: &Scope<'_>) -> Option<&str> {
        self.entries.iter().find_map(|entry| {
            let to = entry.budget.downgrade_to.as_deref()?;
            Self::covers(entry, scope, None)?;
            (!scope.routes.iter().flatten().any(|r| *r == to)).then_some(to)
        })
    }

    /// A snapshot of each budget (a per-tag-value budget: of the value `tag_value`, or of no
    /// value when `None`).
    pub(crate) async fn snapshot(
        &self,
        name: &str,
        tag_value: Option<&str>,
    ) -> Option<Result<BudgetSnapshot, Error>> {
        let entry = self.entries.iter().find(|e| e.budget.name == name)?;
        let now_unix = self.clock.now_unix();
        let claim = self.claim(entry, tag_value, now_unix);
        Some(
            self.store
                .counters(&claim.key, claim.window)
                .await
                .map(|c| BudgetSnapshot::new(&entry.budget, tag_value, c, now_unix)),
        )
    }
}

/// A call's reservation, to be settled with what it cost or released when it failed. Dropped
/// unsettled (a hedge's loser, a cancelled request), it settles what the call is presumed to
/// have used: its prompt.
#[derive(Debug)]
pub(crate) struct Hold {
    store: Arc<dyn StateStore>,
    claims: Vec<Claim>,
    hold: HoldId,
    reserved: Nanos,
    if_cancelled: Nanos,
    done: bool,
}

impl Hold {
    pub(crate) fn reserved(&self) -> Nanos {
        self.reserved
    }

    /// Replaces the reservation with what the call really cost.
    pub(crate) fn settle(mut self, spent: Nanos) {
        self.settle_now(spent);
    }

    fn settle_now(&mut self, spent: Nanos) {
        self.done = true;
        self.store
            .settle(&self.claims, self.hold, self.reserved, spent)
            .complete_detached("settling a budget reservation");
    }

    /// Returns the reservation unused (the call failed).
    pub(crate) fn release(mut self) {
        self.done = true;
        self.store
            .release(&self.claims, self.hold, self.reserved)
            .complete_detached("releasing a budget reservation");
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.done {
            let spent = self.if_cancelled;
            self.settle_now(spent);
        }
    }
}
