//! Budgets: USD limits over everything, a route, a target or a tag, for all time or per window.
//!
//! The pure part lives here: which budgets cover a request, which window a moment falls in and
//! when it resets, and what a refusal says. The counters live in a
//! [`StateStore`](crate::state::StateStore); the attempt loop reserves a request's worst cost
//! before each call, settles the real cost after it and releases the reservation on failure.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::state::{Counters, Nanos, nanos_to_usd, usd_to_nanos};

/// What a budget counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetScope {
    /// Every request of the router.
    All,
    /// Requests through this route (the route the request named, or the one a rule picked).
    Route(String),
    /// Calls of one target, named by its provider and model.
    Target {
        /// The provider's name ([`ChatProvider::name`](crate::ChatProvider::name)).
        provider: String,
        /// The model the target asks for.
        model: String,
    },
    /// Requests whose `metadata` tag `key` equals `value` (a team, a user).
    Tag {
        /// The tag's key.
        key: String,
        /// The value it must have.
        value: String,
    },
    /// Requests carrying the tag `key`, each value with a limit of its own (one budget per user).
    EachTagValue(String),
}

/// The period a budget's limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetWindow {
    /// All time (the life of the process, or of the state store).
    Total,
    /// Consecutive windows of this length, aligned to the Unix epoch (a day runs from 00:00
    /// UTC, an hour from the full hour).
    Every(Duration),
    /// Calendar months, UTC.
    Monthly,
}

/// A USD limit, checked before every call it covers.
///
/// ```
/// use modelgate::router::Budget;
/// let daily = Budget::new("daily", 50.0).daily().for_route("chat").soft_limit(0.8).downgrade_to("cheap");
/// let per_user = Budget::new("per-user", 2.0).daily().for_each_tag_value("user");
/// # let _ = (daily, per_user);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub(crate) name: String,
    pub(crate) limit_usd: f64,
    pub(crate) window: BudgetWindow,
    pub(crate) scope: BudgetScope,
    pub(crate) soft_limit: Option<f64>,
    pub(crate) downgrade_to: Option<String>,
}

impl Budget {
    /// A budget called `name` (unique within a router; the key of its counters in the state
    /// store) of `usd` dollars over every request, for all time.
    pub fn new(name: impl Into<String>, usd: f64) -> Self {
        Budget {
            name: name.into(),
            limit_usd: usd,
            window: BudgetWindow::Total,
            scope: BudgetScope::All,
            soft_limit: None,
            downgrade_to: None,
        }
    }

    /// Sets the window the limit applies to.
    pub fn window(mut self, window: BudgetWindow) -> Self {
        self.window = window;
        self
    }

    /// The limit applies per window of `length`, aligned to the Unix epoch.
    pub fn per(self, length: Duration) -> Self {
        self.window(BudgetWindow::Every(length))
    }

    /// The limit applies per hour.
    pub fn hourly(self) -> Self {
        self.per(Duration::from_secs(3_600))
    }

    /// The limit applies per UTC day.
    pub fn daily(self) -> Self {
        self.per(Duration::from_secs(86_400))
    }

    /// The limit applies per calendar month (UTC).
    pub fn monthly(self) -> Self {
        self.window(BudgetWindow::Monthly)
    }

    /// Sets what the budget counts.
    pub fn scope(mut self, scope: BudgetScope) -> Self {
        self.scope = scope;
        self
    }

    /// Counts only requests through `route`.
    pub fn for_route(self, route: impl Into<String>) -> Self {
        self.scope(BudgetScope::Route(route.into()))
    }

    /// Counts only calls of the target asking `provider` for `model`.
    pub fn for_target(self, provider: impl Into<String>, model: impl Into<String>) -> Self {
        self.scope(BudgetScope::Target {
            provider: provider.into(),
            model: model.into(),
        })
    }

    /// Counts only requests whose metadata tag `key` is `value`.
    pub fn for_tag(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.scope(BudgetScope::Tag {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Gives each value of the metadata tag `key` a limit of its own; requests without the tag
    /// are not counted.
    pub fn for_each_tag_value(self, key: impl Into<String>) -> Self {
        self.scope(BudgetScope::EachTagValue(key.into()))
    }

    /// From this fraction of the limit on (0 < `fraction` ≤ 1), requests go to the
    /// [`downgrade_to`](Self::downgrade_to) route (which the budget then needs).
    pub fn soft_limit(mut self, fraction: f64) -> Self {
        self.soft_limit = Some(fraction);
        self
    }

    /// A request the budget cannot pay for (or, past the soft limit, any request) goes to this
    /// route instead of failing with `ErrorKind::BudgetExceeded`.
    ///
    /// A request refused at the moment of its call (another request took the last of a budget
    /// meanwhile) also goes to the `downgrade_to` of a budget covering it, if it has not been
    /// there yet; every budget covering it is checked again on that route, so a downgrade never
    /// lets spend past a limit.
    pub fn downgrade_to(mut self, route: impl Into<String>) -> Self {
        self.downgrade_to = Some(route.into());
        self
    }

    /// The budget's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the budget on its own (the router checks its routes and targets).
    ///
    /// # Errors
    /// `ErrorKind::Config` for an empty name, a limit that is negative or not finite, a zero
    /// window, a soft limit outside (0, 1] or without `downgrade_to`.
    pub fn validate(&self) -> Result<(), Error> {
        let name = &self.name;
        if name.is_empty() {
            return Err(Error::config("a budget needs a name"));
        }
        if !self.limit_usd.is_finite() || self.limit_usd < 0.0 {
            return Err(Error::config(format!(
                "budget `{name}`: the limit must be a non-negative number of dollars, not {}",
                self.limit_usd
            )));
        }
        if self.window == BudgetWindow::Every(Duration::ZERO) {
            return Err(Error::config(format!(
                "budget `{name}`: the window must be longer than zero"
            )));
        }
        if let Some(soft) = self.soft_limit {
            if !(soft > 0.0 && soft <= 1.0) {
                return Err(Error::config(format!(
                    "budget `{name}`: soft_limit must be in (0, 1], not {soft}"
                )));
            }
            if self.downgrade_to.is_none() {
                return Err(Error::config(format!(
                    "budget `{name}`: a soft_limit needs downgrade_to (the route to use past it)"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn limit(&self) -> Nanos {
        usd_to_nanos(self.limit_usd)
    }

    /// The limit past which requests are downgraded.
    pub(crate) fn soft(&self) -> Option<Nanos> {
        let soft = self.soft_limit?;
        Some((self.limit() as f64 * soft) as Nanos)
    }
}

/// A snapshot of one budget's counters, as [`Router::budgets`](crate::router::Router::budgets)
/// reads them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetSnapshot {
    /// The budget's name.
    pub name: String,
    /// For a budget per tag value, the value; else `None`.
    pub tag_value: Option<String>,
    /// What it counts.
    pub scope: BudgetScope,
    /// The limit in USD.
    pub limit_usd: f64,
    /// Spent in the current window, USD.
    pub spent_usd: f64,
    /// Reserved by requests in flight, USD.
    pub reserved_usd: f64,
    /// When the current window ends; `None` for a budget without window.
    pub resets_in: Option<Duration>,
}

impl BudgetSnapshot {
    pub(crate) fn new(
        budget: &Budget,
        tag_value: Option<&str>,
        c: Counters,
        now_unix: u64,
    ) -> Self {
        BudgetSnapshot {
            name: budget.name.clone(),
            tag_value: tag_value.map(str::to_owned),
            scope: budget.scope.clone(),
            limit_usd: budget.limit_usd,
            spent_usd: nanos_to_usd(c.spent),
            reserved_usd: nanos_to_usd(c.reserved),
            resets_in: resets_in(budget.window, now_unix),
        }
    }

    /// What is left to spend, counting reservations in flight, USD (never below 0).
    pub fn remaining_usd(&self) -> f64 {
        (self.limit_usd - self.spent_usd - self.reserved_usd).max(0.0)
    }
}

/// The `BudgetExceeded` error of a refusal: it names the budget, its limit and its spend, and for
/// a windowed budget its `retry_after` is the window's reset.
pub(crate) fn exceeded(
    budget: &Budget,
    tag_value: Option<&str>,
    spent: Nanos,
    reserved: Nanos,
    needed: Nanos,
    now_unix: u64,
) -> Error {
    let name = match tag_value {
        Some(v) => format!("{} ({v})", budget.name),
        None => budget.name.clone(),
    };
    let mut message = format!(
        "budget `{name}` cannot pay for this request: ${:.6} of ${:.6} spent, ${:.6} reserved in flight, ${:.6} needed",
        nanos_to_usd(spent),
        budget.limit_usd,
        nanos_to_usd(reserved),
        nanos_to_usd(needed)
    );
    let reset = resets_in(budget.window, now_unix);
    if let Some(r) = reset {
        message.push_str(&format!("; it resets in {}s", r.as_secs()));
    }
    Error::new(ErrorKind::BudgetExceeded, message).with_retry_after(reset)
}

/// The start (Unix seconds) of the window `now_unix` falls in: 0 for all time.
pub(crate) fn window_start(window: BudgetWindow, now_unix: u64) -> u64 {
    match window {
        BudgetWindow::Total => 0,
        BudgetWindow::Every(length) => {
            let len = length.as_secs().max(1);
            now_unix - now_unix % len
        }
        BudgetWindow::Monthly => {
            let (y, m, _) = civil_from_days((now_unix / 86_400) as i64);
            (days_from_civil(y, m, 1) as u64) * 86_400
        }
    }
}

/// The start of the window after the one `now_unix` falls in; `None` for all time.
pub(crate) fn next_window_start(window: BudgetWindow, now_unix: u64) -> Option<u64> {
    match window {
        BudgetWindow::Total => None,
        BudgetWindow::Every(length) => {
            Some(window_start(window, now_unix).saturating_add(length.as_secs().max(1)))
        }
        BudgetWindow::Monthly => {
            let (y, m, _) = civil_from_days((now_unix / 86_400) as i64);
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            Some(days_from_civil(y, m, 1) as u64 * 86_400)
        }
    }
}

/// How long until the window `now_unix` falls in ends.
pub(crate) fn resets_in(window: BudgetWindow, now_unix: u64) -> Option<Duration> {
    next_window_start(window, now_unix).map(|at| Duration::from_secs(at - now_unix))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm; small
/// enough that a date crate is not worth its weight).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Wall-clock time that moves with tokio's clock: Unix time read once when the router is built,
/// advanced by tokio's monotonic clock since. Budget windows follow the calendar, and a test with
/// a paused clock can still move them.
#[derive(Clone, Copy)]
pub(crate) struct WallClock {
    unix_at_anchor: Duration,
    anchor: Instant,
}

impl WallClock {
    pub(crate) fn new() -> Self {
        WallClock {
            unix_at_anchor: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            anchor: Instant::now(),
        }
    }

    /// Now, in Unix seconds.
    pub(crate) fn now_unix(&self) -> u64 {
        (self.unix_at_anchor + self.anchor.elapsed()).as_secs()
    }

    /// `at` in Unix milliseconds.
    pub(crate) fn unix_ms_at(&self, at: Instant) -> u64 {
        let unix = if at >= self.anchor {
            self.unix_at_anchor.saturating_add(at - self.anchor)
        } else {
            self.unix_at_anchor.saturating_sub(self.anchor - at)
        };
        u64::try_from(unix.as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant of `unix_ms` (Unix milliseconds) on this process's clock.
    pub(crate) fn instant_at_unix_ms(&self, unix_ms: u64) -> Instant {
        let unix = Duration::from_millis(unix_ms);
        if unix >= self.unix_at_anchor {
            super::clock::saturating_add(self.anchor, unix - self.unix_at_anchor)
        } else {
            self.anchor
                .checked_sub(self.unix_at_anchor - unix)
                .unwrap_or(self.anchor)
        }
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallClock")
            .field("unix", &self.now_unix())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn civil_dates_round_trip() {
        for days in [
            -800_000i64,
            -1,
            0,
            1,
            59,
            60,
            365,
            10_957,
            19_000,
            20_454,
            2_000_000,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2024-02-29, a leap day.
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn fixed_windows_align_to_the_epoch() {
        let hourly = BudgetWindow::Every(Duration::from_secs(3_600));
        assert_eq!(window_start(hourly, 7_250), 7_200);
        assert_eq!(resets_in(hourly, 7_250), Some(Duration::from_secs(3_550)));
        let daily = BudgetWindow::Every(Duration::from_secs(DAY));
        assert_eq!(window_start(daily, 3 * DAY + 5), 3 * DAY);
        assert_eq!(window_start(BudgetWindow::Total, 123), 0);
        assert_eq!(resets_in(BudgetWindow::Total, 123), None);
    }

    #[test]
    fn monthly_windows_follow_the_calendar() {
        // 2026-12-02 12:00 UTC.
        let now = days_from_civil(2026, 12, 2) as u64 * DAY + 12 * 3_600;
        assert_eq!(
            window_start(BudgetWindow::Monthly, now),
            days_from_civil(2026, 12, 1) as u64 * DAY
        );
        assert_eq!(
            resets_in(BudgetWindow::Monthly, now),
            Some(Duration::from_secs(
                days_from_civil(2027, 1, 1) as u64 * DAY - now
            ))
        );
        // February of a leap year has 29 days.
        let feb = days_from_civil(2028, 2, 10) as u64 * DAY;
        assert_eq!(
            resets_in(BudgetWindow::Monthly, feb),
            Some(Duration::from_secs(20 * DAY))
        );
    }

    #[test]
    fn bad_budgets_are_config_errors() {
        for b in [
            Budget::new("", 1.0),
            Budget::new("b", -1.0),
            Budget::new("b", f64::NAN),
            Budget::new("b", 1.0).per(Duration::ZERO),
            Budget::new("b", 1.0).soft_limit(0.8),
            Budget::new("b", 1.0).soft_limit(1.5).downgrade_to("cheap"),
        ] {
            assert_eq!(b.validate().unwrap_err().kind(), ErrorKind::Config, "{b:?}");
        }
        Budget::new("b", 1.0)
            .soft_limit(0.8)
            .downgrade_to("cheap")
            .validate()
            .unwrap();
    }

    #[test]
    fn a_refusal_names_the_budget_its_limit_and_spend_and_when_it_resets() {
        let b = Budget::new("daily", 50.0).daily();
        let err = exceeded(
            &b,
            None,
            usd_to_nanos(49.5),
            usd_to_nanos(0.25),
            usd_to_nanos(1.0),
            3_600,
        );
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
        let text = err.to_string();
        assert!(
            text.contains("daily") && text.contains("$50.000000") && text.contains("$49.500000"),
            "{text}"
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(DAY - 3_600)));
        let total = Budget::new("all", 5.0);
        assert_eq!(exceeded(&total, None, 0, 0, 1, 10).retry_after(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wall_clock_moves_with_tokios_clock() {
        let clock = WallClock::new();
        let before = clock.now_unix();
        tokio::time::advance(Duration::from_secs(DAY)).await;
        assert_eq!(clock.now_unix() - before, DAY);
    }
}
