//! The gateway's config file: its typed schema, parsing and validation.
//!
//! One file (TOML, or JSON with the same structure when its name ends in `.json`) describes the
//! providers, the routes (targets with a strategy, or rules), the router's policies, budgets,
//! gateway keys, prices, the server's limits and where shared state lives (`[state]`: one Redis
//! for a fleet, [`StateConfig`]). `examples/gateway.toml` is a complete example, and
//! `examples/fleet.toml` a fleet's; DESIGN.md's gateway contract fixes the format.
//!
//! ```
//! use modelgate::config::GatewayConfig;
//!
//! let config = GatewayConfig::from_toml_str(r#"
//!     [providers.openai]
//!     kind = "openai"
//!     api_key = { env = "OPENAI_API_KEY" }
//!
//!     [routes.chat]
//!     targets = [{ provider = "openai", model = "gpt-4o-mini" }]
//! "#, "gateway.toml")?;
//! assert_eq!(config.routes["chat"].targets.as_ref().unwrap()[0].model, "gpt-4o-mini");
//! # Ok::<(), modelgate::Error>(())
//! ```
//!
//! Reading is done in two passes, as TensorZero does: the shape first (types, durations, sizes,
//! unknown keys, which are always errors so typos are never ignored), then the references and
//! values ([`GatewayConfig::validate`]: undefined providers and routes, rule cycles, duplicate
//! names, zero timeouts, the router policies' own checks). Every error is
//! [`ErrorKind::Config`](crate::ErrorKind::Config) and reads
//! `FILE: KEY.PATH: what was expected, found what`, for example
//! `gateway.toml: routes.chat.targets[1].provider: no provider "opnai" (defined: openai, deepseek)`.
//!
//! The structs map one to one onto the router's builder: [`RetryConfig::to_policy`],
//! [`HedgeSpec::to_policy`], [`CircuitBreakerConfig::to_breaker`], [`StrategyKind::to_strategy`],
//! [`ConditionConfig::to_condition`], [`RouteConfig::to_rules`] and [`BudgetConfig::to_budget`]
//! build the policies; budget windows and scopes are the router's own [`BudgetWindow`] and
//! [`BudgetScope`].

mod build;
mod de;
mod describe;
mod named;
mod validate;

pub use build::{BuildOptions, Built, KEY_TAG};

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::Error;
use crate::router::{
    Budget, BudgetScope, BudgetWindow, CircuitBreaker, Condition, HedgePolicy, RetryPolicy, Rules,
    Strategy,
};

/// The address the server listens on by default (loopback only).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000));
/// The largest request body the server accepts by default (4 MiB, room for a few images); above
/// it the server answers 413.
pub const DEFAULT_MAX_BODY: u64 = 4 << 20;
/// How many requests the server serves at once by default; above it, 503.
pub const DEFAULT_MAX_CONCURRENT: usize = 512;
/// The server's default per-request deadline, everything included (retries, fallbacks, a
/// streamed answer); past it, 504.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(120);

/// A whole gateway config file.
///
/// Read it with [`from_toml_str`](Self::from_toml_str), [`from_json_str`](Self::from_json_str)
/// or [`load`](Self::load); each also [`validate`](Self::validate)s it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// `[server]`: the HTTP server's address and limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[providers.NAME]`, in the file's order; the name is the provider's name in routes,
    /// headers and stats.
    #[serde(default)]
    pub providers: IndexMap<String, ProviderConfig>,
    /// `[routes.NAME]`, in the file's order; a request's `model` names its route.
    #[serde(default)]
    pub routes: IndexMap<String, RouteConfig>,
    /// `[router]`: timeouts, retry, hedging and circuit breaking, for every route.
    #[serde(default)]
    pub router: RouterConfig,
    /// `[[budgets]]`: USD limits.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// `[[keys]]`: the gateway's own API keys. With none, the server listens on loopback only.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// `[prices]`: a price file extending the built-in table.
    #[serde(default)]
    pub prices: Option<PricesConfig>,
    /// `[state]`: where budget counters, rests and circuits live; this process when omitted.
    #[serde(default)]
    pub state: Option<StateConfig>,
    /// The file name errors start with.
    #[serde(skip)]
    file_name: String,
    /// The directory relative paths in the file are resolved against.
    #[serde(skip)]
    base_dir: Option<PathBuf>,
}

/// `[server]`: where the gateway listens and its limits. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// `listen`: the address, [`DEFAULT_LISTEN`] by default; port 0 picks a free one.
    #[serde(default = "default_listen", deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// `max_body`: the largest request body in bytes (`"4MiB"`, `"512KiB"`, `"1MB"`),
    /// [`DEFAULT_MAX_BODY`] by default.
    #[serde(default = "default_max_body", deserialize_with = "de::size")]
    pub max_body: u64,
    /// `max_concurrent`: requests served at once, [`DEFAULT_MAX_CONCURRENT`] by default.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// `timeout`: the per-request deadline, [`DEFAULT_SERVER_TIMEOUT`] by default.
    #[serde(default = "default_server_timeout", deserialize_with = "de::duration")]
    pub timeout: Duration,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
}
fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY
}
fn default_max_concurrent() -> usize {
    DEFAULT_MAX_CONCURRENT
}
fn default_server_timeout() -> Duration {
    DEFAULT_SERVER_TIMEOUT
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            max_body: DEFAULT_MAX_BODY,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            timeout: DEFAULT_SERVER_TIMEOUT,
        }
    }
}

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[non_exhaustive]
pub enum ProviderKind {
    /// `"openai"`: [`providers::OpenAi`](crate::providers).
    #[serde(rename = "openai")]
    OpenAi,
    /// `"anthropic"`: Claude's Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// `"gemini"`: Google's generateContent.
    #[serde(rename = "gemini")]
    Gemini,
    /// `"deepseek"`.
    #[serde(rename = "deepseek")]
    DeepSeek,
    /// `"openai-compatible"`: any service speaking OpenAI's format, with a `preset` or a
    /// `base_url`.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    /// The name the file spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::DeepSeek => "deepseek",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }
}

/// The presets an `openai-compatible` provider may name (the `compat` feature's
/// `Preset::name`s).
pub const PRESETS: &[&str] = &[
    "openrouter",
    "groq",
    "together",
    "mistral",
    "xai",
    "fireworks",
    "ollama",
    "vllm",
];

/// `[providers.NAME]`: one provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// `kind`: the API it speaks.
    pub kind: ProviderKind,
    /// `api_key`: where its key comes from. Optional (a local server needs none; `--simulator`
    /// serves providers without one).
    #[serde(default)]
    pub api_key: Option<KeySpec>,
    /// `base_url`: instead of the official URL (or the preset's).
    #[serde(default)]
    pub base_url: Option<String>,
    /// `preset`: for `openai-compatible` only, one of [`PRESETS`]: its base URL and key variable.
    #[serde(default)]
    pub preset: Option<String>,
}

/// Where a key comes from. The file never holds a key itself, so a literal key cannot be taken
/// for a variable name (and a string there is refused without being repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// `{ env = "VAR" }`: an environment variable.
    Env(String),
    /// `{ file = "PATH" }`: a file's contents, trimmed (re-read when it changes). A relative
    /// path is relative to the config file ([`GatewayConfig::resolve_path`]).
    File(PathBuf),
    /// `{ command = ["PROG", "ARG"], ttl = "5m" }`: a command's standard output, trimmed (re-run
    /// when `ttl` has passed; without one, read once).
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// How long its answer is kept.
        ttl: Option<Duration>,
    },
}

/// `[routes.NAME]`: either `targets` (with a `strategy`) or `rules` (with a `default`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// `targets`: the provider and model pairs that serve the route, tried as `strategy` orders
    /// them (each next one is the previous one's fallback).
    #[serde(default)]
    pub targets: Option<Vec<TargetConfig>>,
    /// `strategy`: how targets are ordered, `ordered` when omitted.
    #[serde(default)]
    pub strategy: Option<StrategyKind>,
    /// `rules`: first match wins.
    #[serde(default)]
    pub rules: Option<Vec<RuleConfig>>,
    /// `default`: the route of requests no rule matched (without one they fail as not found).
    #[serde(default)]
    pub default: Option<String>,
}

impl RouteConfig {
    /// The route's rules as the router's [`Rules`], `None` for a route of targets.
    pub fn to_rules(&self) -> Option<Rules> {
        let rules = self.rules.as_ref()?;
        let mut out = Rules::new();
        for rule in rules {
            if let Some(c) = rule.condition.to_condition() {
                out = out.when(c, rule.route.clone());
            }
        }
        if let Some(d) = &self.default {
            out = out.otherwise(d.clone());
        }
        Some(out)
    }
}

/// One target of a route: `{ provider, model, context_window?, max_tokens?, weight?, timeout?,
/// first_delta_timeout?, temperature? }`, as [`Target`](crate::router::Target)'s setters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetConfig {
    /// `provider`: a name of `[providers]`.
    pub provider: String,
    /// `model`: the model asked for.
    pub model: String,
    /// `context_window`: in tokens; a prompt too long moves on to a target with a larger one.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// `max_tokens`: the output cap sent when the request sets none.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `weight`: its share under `strategy = "weighted"` (1 by default; 0: fallback only).
    #[serde(default)]
    pub weight: Option<u32>,
    /// `timeout`: for one attempt on this target.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub timeout: Option<Duration>,
    /// `first_delta_timeout`: how long a stream may wait for its first delta on this target.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub first_delta_timeout: Option<Duration>,
    /// `temperature`: sent when the request sets none.
    #[serde(default)]
    pub temperature: Option<f32>,
}

/// How a route orders its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StrategyKind {
    /// `"ordered"`: as listed.
    #[default]
    Ordered,
    /// `"weighted"`: by each target's `weight`.
    Weighted,
    /// `"lowest-cost"`: cheapest for this prompt first.
    LowestCost,
    /// `"lowest-latency"`: fastest recently first.
    LowestLatency,
    /// `"least-busy"`: fewest requests in flight first.
    LeastBusy,
}

impl StrategyKind {
    /// The name the file spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Ordered => "ordered",
            StrategyKind::Weighted => "weighted",
            StrategyKind::LowestCost => "lowest-cost",
            StrategyKind::LowestLatency => "lowest-latency",
            StrategyKind::LeastBusy => "least-busy",
        }
    }

    /// The router's [`Strategy`].
    pub fn to_strategy(self) -> Strategy {
        match self {
            StrategyKind::Ordered => Strategy::ordered(),
            StrategyKind::Weighted => Strategy::weighted(),
            StrategyKind::LowestCost => Strategy::lowest_cost(),
            StrategyKind::LowestLatency => Strategy::lowest_latency(),
            StrategyKind::LeastBusy => Strategy::least_busy(),
        }
    }
}

/// One rule: `{ if = { … }, route = "NAME" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleConfig {
    /// `if`: what the request must meet.
    #[serde(rename = "if")]
    pub condition: ConditionConfig,
    /// `route`: where a request meeting it goes (a route of targets or of rules).
    pub route: String,
}

/// A rule's `if`: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConditionConfig {
    /// `has_images`: the request has (true) or has no (false) image.
    #[serde(default)]
    pub has_images: Option<bool>,
    /// `has_audio`: the request has (or has no) audio.
    #[serde(default)]
    pub has_audio: Option<bool>,
    /// `has_tools`: the request offers (or offers no) tools.
    #[serde(default)]
    pub has_tools: Option<bool>,
    /// `min_input_tokens`: the estimated prompt is at least this long.
    #[serde(default)]
    pub min_input_tokens: Option<u64>,
    /// `max_input_tokens`: the estimated prompt is at most this long.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// `tag = { k = "v" }`: the request's metadata has each of these tags.
    #[serde(default)]
    pub tag: IndexMap<String, String>,
}

impl ConditionConfig {
    /// The router's [`Condition`] (all of those given), `None` when none is given.
    pub fn to_condition(&self) -> Option<Condition> {
        let flag =
            |on: Option<bool>, c: fn() -> Condition| on.map(|on| if on { c() } else { c().not() });
        let mut all: Vec<Condition> = [
            flag(self.has_images, Condition::has_images),
            flag(self.has_audio, Condition::has_audio),
            flag(self.has_tools, Condition::has_tools),
            self.min_input_tokens.map(Condition::min_input_tokens),
            self.max_input_tokens.map(Condition::max_input_tokens),
        ]
        .into_iter()
        .flatten()
        .collect();
        all.extend(
            self.tag
                .iter()
                .map(|(k, v)| Condition::tag(k.clone(), v.clone())),
        );
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(Condition::all(all)),
        }
    }

    fn is_empty(&self) -> bool {
        self == &ConditionConfig::default()
    }
}

/// `[router]`: policies for every route. Every key is optional; the router's defaults apply.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouterConfig {
    /// `timeout`: one request's deadline, retries and fallbacks included.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub timeout: Option<Duration>,
    /// `first_delta_timeout`: how long a stream may wait for its first delta.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub first_delta_timeout: Option<Duration>,
    /// `retry`: retries on the same target.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// `hedge`: a second attempt on the next target when the first is slow.
    #[serde(default)]
    pub hedge: Option<HedgeSpec>,
    /// `circuit_breaker`: stop calling a failing target for a while.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
}

/// `retry = { max_retries, base_delay, max_delay }`; omitted keys keep [`RetryPolicy`]'s defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// `max_retries`: retries per target.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// `base_delay`: the first backoff.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub base_delay: Option<Duration>,
    /// `max_delay`: the longest backoff.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub max_delay: Option<Duration>,
}

impl RetryConfig {
    /// The router's [`RetryPolicy`].
    pub fn to_policy(&self) -> RetryPolicy {
        let mut p = RetryPolicy::default();
        if let Some(n) = self.max_retries {
            p = p.with_max_retries(n);
        }
        if let Some(d) = self.base_delay {
            p = p.with_base_delay(d);
        }
        if let Some(d) = self.max_delay {
            p = p.with_max_delay(d);
        }
        p
    }
}

/// `hedge = { after = "2s" }` or `hedge = { percentile = 0.95 }`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HedgeSpec {
    /// `{ after = "2s" }`: a fixed delay.
    After(Duration),
    /// `{ percentile = 0.95 }`: the route's observed latency at this percentile.
    Percentile(f64),
}

impl HedgeSpec {
    /// The router's [`HedgePolicy`].
    pub fn to_policy(self) -> HedgePolicy {
        match self {
            HedgeSpec::After(d) => HedgePolicy::fixed(d),
            HedgeSpec::Percentile(p) => HedgePolicy::adaptive(p),
        }
    }
}

/// `circuit_breaker = { failure_rate, min_requests, window, cool_down }`; omitted keys keep
/// [`CircuitBreaker`]'s defaults.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CircuitBreakerConfig {
    /// `failure_rate`: the share of failures (0 to 1) that opens the circuit.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// `min_requests`: calls in the window before the rate counts.
    #[serde(default)]
    pub min_requests: Option<u32>,
    /// `window`: how far back calls are counted.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub window: Option<Duration>,
    /// `cool_down`: how long an open circuit rests before a trial call.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub cool_down: Option<Duration>,
}

impl CircuitBreakerConfig {
    /// The router's [`CircuitBreaker`].
    pub fn to_breaker(&self) -> CircuitBreaker {
        let mut c = CircuitBreaker::default();
        if let Some(r) = self.failure_rate {
            c = c.with_failure_rate_threshold(r);
        }
        if let Some(n) = self.min_requests {
            c = c.with_min_requests(n);
        }
        if let Some(w) = self.window {
            c = c.with_window(w);
        }
        if let Some(d) = self.cool_down {
            c = c.with_cool_down(d);
        }
        c
    }
}

/// `[[budgets]]`: one USD limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// `name`: unique among budgets.
    pub name: String,
    /// `usd`: the limit.
    pub usd: f64,
    /// `window`: `"1h"`, `"1d"`, `"monthly"`…; omitted: a total.
    #[serde(default = "de::total", deserialize_with = "de::window")]
    pub window: BudgetWindow,
    /// `scope`: `{ route }`, `{ target = "provider/model" }`, `{ tag = { k = "v" } }` or
    /// `{ each_tag = "k" }`; omitted: every request.
    #[serde(default = "all_scope", deserialize_with = "de::scope")]
    pub scope: BudgetScope,
    /// `soft_limit`: the fraction of `usd` past which requests downgrade (needs `downgrade_to`).
    #[serde(default)]
    pub soft_limit: Option<f64>,
    /// `downgrade_to`: the route requests go to instead of being refused.
    #[serde(default)]
    pub downgrade_to: Option<String>,
}

fn all_scope() -> BudgetScope {
    BudgetScope::All
}

impl BudgetConfig {
    /// The router's [`Budget`].
    pub fn to_budget(&self) -> Budget {
        let mut b = Budget::new(self.name.clone(), self.usd)
            .window(self.window)
            .scope(self.scope.clone());
        if let Some(f) = self.soft_limit {
            b = b.soft_limit(f);
        }
        if let Some(r) = &self.downgrade_to {
            b = b.downgrade_to(r.clone());
        }
        b
    }
}

/// `[[keys]]`: one gateway key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// `name`: unique among keys; what logs and metrics show (never the key).
    pub name: String,
    /// `key`: where the key's value comes from.
    pub key: KeySpec,
    /// `routes`: the routes it may call; every route when omitted.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// `budget`: its own limit.
    #[serde(default)]
    pub budget: Option<KeyBudgetConfig>,
}

/// A key's `budget = { usd, window? }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyBudgetConfig {
    /// `usd`: the limit.
    pub usd: f64,
    /// `window`: omitted, a total.
    #[serde(default = "de::total", deserialize_with = "de::window")]
    pub window: BudgetWindow,
}

/// `[prices]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PricesConfig {
    /// `file`: a JSON price file extending and overriding the built-in table; relative to the
    /// config file.
    pub file: PathBuf,
}

/// `[state]`: state shared by a fleet of gateways. Without `redis`, each process keeps its own.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateConfig {
    /// `redis = { url, … }`: budgets, rate-limit rests and circuits shared through one Redis.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

/// The key prefix of a Redis state store by default.
pub const DEFAULT_REDIS_PREFIX: &str = "modelgate";
/// How long one Redis call may take by default before it counts as a failure.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a reservation lives in Redis by default: a crashed process's reservations lapse
/// after it.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);
/// How often a process resyncs shared health and flushes batched outcomes by default.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// `[state] redis = { url, prefix, timeout, on_error, username, password, reservation_ttl,
/// sync_interval }`: a Redis shared by a fleet.
///
/// Its `Debug` leaves out any `user:password@` of the URL.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `url`: `redis://HOST:PORT/DB` or `rediss://…` (TLS); it may carry `user:password@`, though
    /// `username` and `password` keep the secret out of the file.
    pub url: String,
    /// `prefix`: the start of every key, [`DEFAULT_REDIS_PREFIX`] by default; gateways that share
    /// one prefix share their state.
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
    /// `timeout`: one Redis call's deadline, [`DEFAULT_REDIS_TIMEOUT`] by default.
    #[serde(default = "default_redis_timeout", deserialize_with = "de::duration")]
    pub timeout: Duration,
    /// `on_error`: what a budgeted request does while Redis cannot be reached.
    #[serde(default)]
    pub on_error: RedisOnError,
    /// `username`: for Redis ACLs (Redis 6 and later).
    #[serde(default)]
    pub username: Option<String>,
    /// `password`: where the password comes from, a key source like a provider's `api_key`.
    #[serde(default)]
    pub password: Option<KeySpec>,
    /// `reservation_ttl`: how long a reservation outlives a process that crashed holding it,
    /// [`DEFAULT_RESERVATION_TTL`] by default; it must exceed the longest request.
    #[serde(default = "default_reservation_ttl", deserialize_with = "de::duration")]
    pub reservation_ttl: Duration,
    /// `sync_interval`: how often shared health is resynced and batched outcomes flushed,
    /// [`DEFAULT_SYNC_INTERVAL`] by default.
    #[serde(default = "default_sync_interval", deserialize_with = "de::duration")]
    pub sync_interval: Duration,
}

fn default_redis_prefix() -> String {
    DEFAULT_REDIS_PREFIX.to_owned()
}
fn default_redis_timeout() -> Duration {
    DEFAULT_REDIS_TIMEOUT
}
fn default_reservation_ttl() -> Duration {
    DEFAULT_RESERVATION_TTL
}
fn default_sync_interval() -> Duration {
    DEFAULT_SYNC_INTERVAL
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

impl RedisConfig {
    /// The URL without any `user:password@`: what logs, errors and `modelgate check` show.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// `HOST:PORT` of the URL (port 6379 when it names none), for a log line.
    pub fn endpoint(&self) -> String {
        let (_, rest) = split_userinfo(&self.url);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let has_port = authority
            .rfind(':')
            .is_some_and(|colon| authority.rfind(']').is_none_or(|bracket| colon > bracket));
        if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:6379")
        }
    }

    /// Whether the URL carries a `user:password@` (or `user@`) part.
    fn url_has_userinfo(&self) -> bool {
        split_userinfo(&self.url).0.is_some()
    }
}

/// A URL split around its authority's `user:password@`: that part (with its `@`), and the URL
/// after it (from the host on). Without a `scheme://`, the whole string is the authority's.
fn split_userinfo(url: &str) -> (Option<&str>, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let after = &url[start..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..end].rfind('@') {
        Some(at) => (Some(&after[..=at]), &after[at + 1..]),
        None => (None, after),
    }
}

/// `url` without the `user:password@` of its authority.
fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (_, rest) = split_userinfo(url);
    format!("{}{rest}", &url[..start])
}

/// What a budgeted request does while the state store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RedisOnError {
    /// `"fail-open"`: serve with per-process state meanwhile, and replay the spend into Redis
    /// when it returns.
    #[default]
    FailOpen,
    /// `"fail-closed"`: refuse budgeted requests (503, code `state_unavailable`) rather than
    /// spend without the fleet's counters.
    FailClosed,
}

impl RedisOnError {
    /// The name the file spells it with.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisOnError::FailOpen => "fail-open",
            RedisOnError::FailClosed => "fail-closed",
        }
    }
}

impl GatewayConfig {
    /// Reads and validates a TOML config. `file_name` starts every error message.
    ///
    /// # Errors
    /// `ErrorKind::Config`, naming the file, the key path, what was expected and what was found.
    pub fn from_toml_str(text: &str, file_name: &str) -> Result<Self, Error> {
        let parsed = toml::Deserializer::parse(text)
            .map_err(|e| toml_error(file_name, text, None, &e))
            .and_then(|d| {
                serde_path_to_error::deserialize::<_, GatewayConfig>(d).map_err(|e| {
                    let path = e.path().to_string();
                    toml_error(file_name, text, Some(&path), e.inner())
                })
            });
        let mut config = parsed?;
        config.file_name = file_name.to_owned();
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a JSON config (the same structure as TOML).
    ///
    /// # Errors
    /// As [`from_toml_str`](Self::from_toml_str).
    pub fn from_json_str(text: &str, file_name: &str) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut config: GatewayConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let mut msg = inner.to_string();
            // serde_json appends " at line L column C"; put the position in our own form.
            if let Some(i) = msg.rfind(" at line ") {
                msg.truncate(i);
            }
            config_error(
                file_name,
                Some(&path),
                &msg,
                Some((inner.line(), inner.column())),
            )
        })?;
        de.end().map_err(|e| {
            config_error(
                file_name,
                None,
                "trailing characters after the config",
                Some((e.line(), e.column())),
            )
        })?;
        config.file_name = file_name.to_owned();
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates the file at `path`: JSON when its name ends in `.json`, else TOML.
    /// Relative paths inside it (`[prices] file`, a key's `file`) are relative to its directory.
    ///
    /// # Errors
    /// `ErrorKind::Config` when the file cannot be read, is not UTF-8, or is not a valid config.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::config(format!("{name}: cannot read the config file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            Error::config(format!(
                "{name}: the config file is not UTF-8 text (invalid byte at offset {at}, line {line})"
            ))
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut config = if is_json {
            Self::from_json_str(&text, &name)?
        } else {
            Self::from_toml_str(&text, &name)?
        };
        config.base_dir = path.parent().map(Path::to_path_buf);
        Ok(config)
    }

    /// The file name error messages start with (as given to the constructor).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// `path` resolved against the config file's directory when it is relative (and the config
    /// was [`load`](Self::load)ed from a file).
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}

/// `FILE: PATH: MESSAGE (line L, column C)`; the path is left out at the top level.
fn config_error(
    file: &str,
    path: Option<&str>,
    message: &str,
    position: Option<(usize, usize)>,
) -> Error {
    let mut out = format!("{file}: ");
    if let Some(p) = path.filter(|p| !p.is_empty() && *p != ".") {
        out.push_str(p);
        out.push_str(": ");
    }
    out.push_str(message.trim_end());
    if let Some((line, column)) = position {
        out.push_str(&format!(" (line {line}, column {column})"));
    }
    Error::config(out)
}

/// A TOML error by its message and span only: the crate's own `Display` quotes the source line,
/// which could be a key.
fn toml_error(file: &str, text: &str, path: Option<&str>, e: &toml::de::Error) -> Error {
    let position = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    });
    config_error(file, path, e.message(), position)
}

#[cfg(all(test, feature = "compat"))]
mod tests {
    use crate::providers::Preset;

    #[test]
    fn presets_match_the_compat_providers() {
        let known = [
            Preset::OpenRouter,
            Preset::Groq,
            Preset::Together,
            Preset::Mistral,
            Preset::Xai,
            Preset::Fireworks,
            Preset::Ollama,
            Preset::Vllm,
        ];
        let names: Vec<&str> = known.iter().map(|p| p.name()).collect();
        assert_eq!(names, super::PRESETS);
    }
}
