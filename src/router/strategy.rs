//! Strategies: the order in which a route's targets are tried for one request.
//!
//! Pure decision logic over what the router observed of each target (availability, weight,
//! estimated cost of this prompt, latency EWMA, requests in flight) and a random number
//! generator. Targets that cannot take a request now (resting, circuit open) go last, in route
//! order: the attempt loop skips them, or waits for them when nothing else can serve.

use tokio::time::{Duration, Instant};

/// How a route orders its targets for each request.
///
/// ```
/// use modelgate::router::Strategy;
/// let fastest = Strategy::lowest_latency().with_probe_interval(std::time::Duration::from_secs(30));
/// # let _ = fastest;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strategy {
    pub(crate) kind: StrategyKind,
    pub(crate) probe_interval: Duration,
    pub(crate) ewma_alpha: f64,
}

/// The kinds of strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrategyKind {
    Ordered,
    Weighted,
    LowestCost,
    LowestLatency,
    LeastBusy,
}

/// How long a target may go unobserved before the lowest-latency strategy sends it one request
/// to measure it again.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The weight of each new latency observation in the lowest-latency strategy's moving average.
pub const DEFAULT_EWMA_ALPHA: f64 = 0.3;

impl Default for Strategy {
    fn default() -> Self {
        Strategy::ordered()
    }
}

impl Strategy {
    fn of(kind: StrategyKind) -> Self {
        Strategy {
            kind,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            ewma_alpha: DEFAULT_EWMA_ALPHA,
        }
    }

    /// The targets in the order given (the default): the first serves, the others are fallbacks.
    pub fn ordered() -> Self {
        Self::of(StrategyKind::Ordered)
    }

    /// A random order, each target first with a probability proportional to its
    /// [`Target::weight`](crate::router::Target::weight) (1 by default).
    pub fn weighted() -> Self {
        Self::of(StrategyKind::Weighted)
    }

    /// Cheapest first, for this prompt's estimated input tokens and its `max_tokens` (targets
    /// without a price last).
    pub fn lowest_cost() -> Self {
        Self::of(StrategyKind::LowestCost)
    }

    /// Fastest first, by a moving average of each target's latency (time to first delta for
    /// streams, whole answer otherwise), choosing between two random targets (power of two
    /// choices) so that load spreads; a target not observed for
    /// [`with_probe_interval`](Self::with_probe_interval) goes first once, so that one which
    /// recovered is found again.
    pub fn lowest_latency() -> Self {
        Self::of(StrategyKind::LowestLatency)
    }

    /// Fewest requests in flight first (route order among equals).
    pub fn least_busy() -> Self {
        Self::of(StrategyKind::LeastBusy)
    }

    /// How long a target may go unmeasured before the lowest-latency strategy probes it again
    /// (default [`DEFAULT_PROBE_INTERVAL`], 10 s).
    pub fn with_probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// The weight of a new observation in the latency average, in (0, 1] (default
    /// [`DEFAULT_EWMA_ALPHA`]).
    pub fn with_ewma_alpha(mut self, alpha: f64) -> Self {
        self.ewma_alpha = alpha;
        self
    }

    /// Whether this is the ordered strategy (which costs nothing per request).
    pub(crate) fn is_ordered(&self) -> bool {
        self.kind == StrategyKind::Ordered
    }

    /// Checks the strategy's settings.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(crate::Error::config(format!(
                "strategy: the EWMA weight must be in (0, 1], not {}",
                self.ewma_alpha
            )));
        }
        if self.probe_interval.is_zero() {
            return Err(crate::Error::config(
                "strategy: the probe interval must be longer than zero",
            ));
        }
        Ok(())
    }
}

/// A moving average of one target's latency.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ewma {
    value: Option<f64>,
    /// When it was last observed (or probed).
    pub(crate) last_seen: Option<Instant>,
}

impl Ewma {
    pub(crate) fn observe(&mut self, now: Instant, latency: Duration, alpha: f64) {
        let x = latency.as_secs_f64();
        self.value = Some(match self.value {
            Some(v) => v + alpha * (x - v),
            None => x,
        });
        self.last_seen = Some(now);
    }

    /// The average, in seconds; `None` before any observation.
    pub(crate) fn value(&self) -> Option<f64> {
        self.value
    }
}

/// What the strategy knows of one target of the route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    /// Whether it could take a request now.
    pub(crate) available: bool,
    pub(crate) weight: u32,
    /// This prompt's estimated cost on it, `None` without a price.
    pub(crate) cost: Option<f64>,
    pub(crate) latency: Ewma,
    pub(crate) in_flight: u32,
}

/// The order (positions into `candidates`) to try them in.
pub(crate) fn order(
    strategy: &Strategy,
    candidates: &[Candidate],
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let (mut ready, unavailable): (Vec<usize>, Vec<usize>) =
        (0..candidates.len()).partition(|&i| candidates[i].available);
    match strategy.kind {
        StrategyKind::Ordered => {}
        StrategyKind::Weighted => weighted_shuffle(&mut ready, candidates, rng),
        StrategyKind::LowestCost => {
            // Stable: equal costs keep route order; unknown costs go last.
            ready.sort_by(|&a, &b| {
                let key = |i: usize| candidates[i].cost.unwrap_or(f64::INFINITY);
                key(a).total_cmp(&key(b))
            });
        }
        StrategyKind::LeastBusy => ready.sort_by_key(|&i| candidates[i].in_flight),
        StrategyKind::LowestLatency => lowest_latency(strategy, &mut ready, candidates, now, rng),
    }
    ready.extend(unavailable);
    ready
}

/// Weighted random order without replacement.
fn weighted_shuffle(ready: &mut [usize], candidates: &[Candidate], rng: &mut fastrand::Rng) {
    for start in 0..ready.len() {
        let total: u64 = ready[start..]
            .iter()
            .map(|&i| u64::from(candidates[i].weight))
            .sum();
        if total == 0 {
            break;
        }
        let mut pick = rng.u64(0..total);
        for k in start..ready.len() {
            let w = u64::from(candidates[ready[k]].weight);
            if pick < w {
                ready.swap(start, k);
                break;
            }
            pick -= w;
        }
    }
}

/// Lowest latency with the power of two choices: a target unmeasured for the probe interval (or
/// never) goes first; else the faster of two random targets goes first and the rest follow by
/// their averages.
fn lowest_latency(
    strategy: &Strategy,
    ready: &mut Vec<usize>,
    candidates: &[Candidate],
    now: Instant,
    rng: &mut fastrand::Rng,
) {
    if ready.len() < 2 {
        return;
    }
    let avg = |i: usize| candidates[i].latency.value().unwrap_or(0.0);
    ready.sort_by(|&a, &b| avg(a).total_cmp(&avg(b)));
    let stale = ready.iter().position(|&i| {
        candidates[i]
            .latency
            .last_seen
            .is_none_or(|seen| now.saturating_duration_since(seen) >= strategy.probe_interval)
    });
    if let Some(k) = stale {
        let i = ready.remove(k);
        ready.insert(0, i);
        return;
    }
    let a = rng.usize(0..ready.len());
    let mut b = rng.usize(0..ready.len() - 1);
    if b >= a {
        b += 1;
    }
    let first = if avg(ready[a]) <= avg(ready[b]) { a } else { b };
    let i = ready.remove(first);
    ready.insert(0, i);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate() -> Candidate {
        Candidate {
            available: true,
            weight: 1,
            cost: None,
            latency: Ewma::default(),
            in_flight: 0,
        }
    }

    fn measured(now: Instant, ms: u64) -> Ewma {
        let mut e = Ewma::default();
        e.observe(now, Duration::from_millis(ms), 0.3);
        e
    }

    #[test]
    fn ordered_keeps_route_order_with_unavailable_targets_last() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut c = [candidate(); 3];
        c[0].available = false;
        let now = Instant::now();
        assert_eq!(
            order(&Strategy::ordered(), &c, now, &mut rng),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn weighted_picks_first_in_proportion_to_weight() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut c = [candidate(); 3];
        c[0].weight = 1;
        c[1].weight = 3;
        c[2].weight = 0;
        let now = Instant::now();
        let mut first = [0u32; 3];
        for _ in 0..4_000 {
            let o = order(&Strategy::weighted(), &c, now, &mut rng);
            assert_eq!(o.len(), 3);
            first[o[0]] += 1;
        }
        assert_eq!(first[2], 0, "a zero weight is never first");
        let share = f64::from(first[1]) / 4_000.0;
        assert!(
            (share - 0.75).abs() < 0.03,
            "share of weight 3 of 4: {share}"
        );
    }

    #[test]
    fn lowest_cost_puts_the_cheapest_first_and_unpriced_last() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut c = [candidate(); 3];
        c[0].cost = None;
        c[1].cost = Some(0.02);
        c[2].cost = Some(0.001);
        assert_eq!(
            order(&Strategy::lowest_cost(), &c, Instant::now(), &mut rng),
            vec![2, 1, 0]
        );
    }

    #[test]
    fn least_busy_puts_the_fewest_in_flight_first() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut c = [candidate(); 3];
        c[0].in_flight = 4;
        c[1].in_flight = 1;
        c[2].in_flight = 1;
        assert_eq!(
            order(&Strategy::least_busy(), &c, Instant::now(), &mut rng),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn lowest_latency_prefers_the_faster_of_two_and_spreads_among_equals() {
        let mut rng = fastrand::Rng::with_seed(3);
        let now = Instant::now();
        let mut c = [candidate(); 3];
        c[0].latency = measured(now, 900);
        c[1].latency = measured(now, 100);
        c[2].latency = measured(now, 100);
        let mut first = [0u32; 3];
        for _ in 0..1_000 {
            first[order(&Strategy::lowest_latency(), &c, now, &mut rng)[0]] += 1;
        }
        assert_eq!(first[0], 0, "the slow target never wins a pair");
        assert!(
            first[1] > 300 && first[2] > 300,
            "equal targets share: {first:?}"
        );
    }

    #[test]
    fn lowest_latency_reprobes_a_target_unmeasured_for_the_interval() {
        let mut rng = fastrand::Rng::with_seed(3);
        let start = Instant::now();
        let mut c = [candidate(); 2];
        c[0].latency = measured(start, 900);
        c[1].latency = measured(start + Duration::from_secs(11), 100);
        let later = start + Duration::from_secs(11);
        assert_eq!(
            order(&Strategy::lowest_latency(), &c, later, &mut rng)[0],
            0
        );
        // Freshly measured, the slow one is not first.
        c[0].latency = measured(later, 900);
        assert_eq!(
            order(&Strategy::lowest_latency(), &c, later, &mut rng)[0],
            1
        );
        // An unmeasured target is tried first.
        c[1].latency = Ewma::default();
        assert_eq!(
            order(&Strategy::lowest_latency(), &c, later, &mut rng)[0],
            1
        );
    }

    #[test]
    fn the_average_moves_toward_new_observations() {
        let now = Instant::now();
        let mut e = measured(now, 1_000);
        e.observe(now, Duration::from_millis(0), 0.5);
        assert!((e.value().unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            Strategy::lowest_latency()
                .with_ewma_alpha(0.0)
                .validate()
                .is_err()
        );
        assert!(
            Strategy::lowest_latency()
                .with_probe_interval(Duration::ZERO)
                .validate()
                .is_err()
        );
        Strategy::weighted().validate().unwrap();
    }
}
