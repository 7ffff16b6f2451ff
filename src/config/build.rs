//! Building a [`Router`] (and the gateway's keys) from a [`GatewayConfig`].

use std::sync::Arc;

use super::{GatewayConfig, KeySpec, ProviderConfig, ProviderKind, TargetConfig};
use crate::credentials::{CommandKey, CredentialSource, EnvKey, FileKey};
use crate::error::Error;
use crate::pricing::PriceTable;
use crate::provider::ChatProvider;
use crate::router::{Budget, Router, Target};
use crate::state::StateStore;

/// The metadata tag that names the gateway key a request came with; a key's `budget` counts
/// the requests carrying its name.
pub const KEY_TAG: &str = "modelgate.key";

/// What the config does not say: where providers without a key go, and the state store
/// connected for `[state]`.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct BuildOptions {
    /// Points every provider whose key is missing (an unset variable, an absent file) at this
    /// base URL per wire (the built-in simulator), with a dummy key.
    #[cfg(feature = "simulator")]
    pub simulator: Option<crate::simulator::Simulator>,
    /// Where the router keeps budget counters, rests and circuits: the store
    /// [`GatewayConfig::connect_state_store`] connected for `[state] redis` (or any store of
    /// yours). `None`: the router's own in-process store, which a config with `[state] redis`
    /// refuses.
    pub state_store: Option<Arc<dyn StateStore>>,
}

/// A router built from a config, and what the build decided.
#[derive(Debug)]
#[non_exhaustive]
pub struct Built {
    /// The router.
    pub router: Router,
    /// The providers pointed at the simulator because their key is missing.
    pub simulated: Vec<String>,
}

impl GatewayConfig {
    /// Builds the router the config describes: its providers (keys from their sources, read per
    /// request), routes of targets and of rules, strategies, policies, budgets (the keys'
    /// budgets among them, counting the [`KEY_TAG`] tag) and prices.
    ///
    /// The state store is [`BuildOptions::state_store`]; a config with `[state] redis` needs
    /// one, connected first with [`connect_state_store`](Self::connect_state_store), so that a
    /// gateway never runs on per-process state believing it shares the fleet's.
    ///
    /// # Errors
    /// `ErrorKind::Config` naming the file and key path when a provider cannot be built (a
    /// kind this build lacks, an unknown preset), the price file is malformed, `[state] redis`
    /// has no store in `options` (or the build lacks the `redis` feature), or the router
    /// refuses the setup.
    // Builds without the simulator or some providers leave parts of this unused.
    #[allow(unused_mut, unused_variables)]
    pub fn build_router(&self, options: &BuildOptions) -> Result<Built, Error> {
        let file = self.file_name();
        let store = self.state_store_for_build(options)?;
        let mut prices = PriceTable::builtin().clone();
        if let Some(p) = &self.prices {
            let extra = PriceTable::from_file(self.resolve_path(&p.file))
                .map_err(|e| Error::config(format!("{file}: prices.file: {}", e.message())))?;
            prices = prices.with_overrides(extra);
        }
        let prices = Arc::new(prices);
        let mut providers: Vec<(String, Arc<dyn ChatProvider>)> = Vec::new();
        let mut simulated = Vec::new();
        for (name, p) in &self.providers {
            #[cfg(feature = "simulator")]
            let sim = options
                .simulator
                .as_ref()
                .filter(|_| !key_available(self, p.api_key.as_ref()));
            #[cfg(not(feature = "simulator"))]
            let _ = options;
            #[cfg(feature = "simulator")]
            if sim.is_some() {
                simulated.push(name.clone());
            }
            let provider = self
                .build_provider(
                    name,
                    p,
                    &prices,
                    #[cfg(feature = "simulator")]
                    sim,
                )
                .map_err(|e| Error::config(format!("{file}: providers.{name}: {}", e.message())))?;
            // The table's name is the provider's name in routes, headers and stats.
            providers.push((name.clone(), super::named::Named::wrap(name, provider)));
        }
        let provider = |name: &str| {
            providers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
        };
        let mut builder = Router::builder().name("modelgate").prices(prices.clone());
        for (alias, route) in &self.routes {
            if let Some(targets) = &route.targets {
                let mut built = Vec::new();
                for (i, t) in targets.iter().enumerate() {
                    let p = provider(&t.provider).ok_or_else(|| {
                        Error::config(format!(
                            "{file}: routes.{alias}.targets[{i}].provider: no provider \"{}\"",
                            t.provider
                        ))
                    })?;
                    built.push(target(p, t));
                }
                builder = builder.route(alias.clone(), built);
                if let Some(s) = route.strategy {
                    builder = builder.strategy(alias.clone(), s.to_strategy());
                }
            } else if let Some(rules) = route.to_rules() {
                builder = builder.rules(alias.clone(), rules);
            }
        }
        let r = &self.router;
        if let Some(t) = r.timeout {
            builder = builder.timeout(t);
        }
        if let Some(t) = r.first_delta_timeout {
            builder = builder.first_delta_timeout(t);
        }
        if let Some(retry) = &r.retry {
            builder = builder.retry(retry.to_policy());
        }
        if let Some(hedge) = r.hedge {
            builder = builder.hedge(hedge.to_policy());
        }
        if let Some(cb) = &r.circuit_breaker {
            builder = builder.circuit_breaker(cb.to_breaker());
        }
        for b in &self.budgets {
            builder = builder.budget(b.to_budget());
        }
        for k in &self.keys {
            if let Some(b) = &k.budget {
                builder = builder.budget(
                    Budget::new(format!("key:{}", k.name), b.usd)
                        .window(b.window)
                        .for_tag(KEY_TAG, k.name.clone()),
                );
            }
        }
        if let Some(store) = store {
            builder = builder.state_store(store);
        }
        let router = builder
            .build()
            .map_err(|e| Error::config(format!("{file}: {}", e.message())))?;
        Ok(Built { router, simulated })
    }

    /// The store `build_router` hands the router: the one in `options`, which `[state] redis`
    /// requires.
    fn state_store_for_build(
        &self,
        options: &BuildOptions,
    ) -> Result<Option<Arc<dyn StateStore>>, Error> {
        if let Some(store) = &options.state_store {
            return Ok(Some(store.clone()));
        }
        if self.state.as_ref().is_some_and(|s| s.redis.is_some()) {
            let file = self.file_name();
            #[cfg(not(feature = "redis"))]
            return Err(Error::config(format!(
                "{file}: state.redis: a Redis state store needs the `redis` feature, which this build lacks"
            )));
            #[cfg(feature = "redis")]
            return Err(Error::config(format!(
                "{file}: state.redis: the Redis state store is not connected: connect it first \
                 (GatewayConfig::connect_state_store) and pass it as BuildOptions::state_store"
            )));
        }
        Ok(None)
    }

    /// Connects the state store `[state]` names: `Some` Redis store for `[state] redis` (built
    /// from its url, prefix, timeout, on_error, username, password source, reservation_ttl and
    /// sync_interval), `None` without one. Redis need not be up: the connection is made lazily
    /// and re-made when it drops, and `on_error` says what requests do meanwhile. Pass the store
    /// to [`build_router`](Self::build_router) in [`BuildOptions::state_store`].
    ///
    /// # Errors
    /// `ErrorKind::Config` naming the file and `state.redis` when the store cannot be made (a
    /// URL the Redis client refuses, a password source that fails, a build without the `redis`
    /// feature). No message holds the password.
    pub async fn connect_state_store(&self) -> Result<Option<Arc<dyn StateStore>>, Error> {
        let Some(redis) = self.state.as_ref().and_then(|s| s.redis.as_ref()) else {
            return Ok(None);
        };
        let file = self.file_name();
        #[cfg(not(feature = "redis"))]
        {
            let _ = redis;
            Err(Error::config(format!(
                "{file}: state.redis: a Redis state store needs the `redis` feature, which this build lacks"
            )))
        }
        #[cfg(feature = "redis")]
        {
            use crate::state::{OnError, RedisOptions, RedisStore};
            let mut options = RedisOptions::new(redis.url.clone())
                .prefix(redis.prefix.clone())
                .timeout(redis.timeout)
                .on_error(match redis.on_error {
                    super::RedisOnError::FailOpen => OnError::FailOpen,
                    super::RedisOnError::FailClosed => OnError::FailClosed,
                })
                .reservation_ttl(redis.reservation_ttl)
                .sync_interval(redis.sync_interval);
            if let Some(user) = &redis.username {
                options = options.username(user.clone());
            }
            if let Some(spec) = &redis.password {
                options = options.password(self.key_source(spec));
            }
            let store = RedisStore::connect(options).await.map_err(|e| {
                // The message may quote the URL: show it without its credentials.
                let message = e.message().replace(&redis.url, &redis.redacted_url());
                let message = message.strip_prefix("redis: ").unwrap_or(&message);
                Error::config(format!("{file}: state.redis: {message}"))
            })?;
            Ok(Some(store as Arc<dyn StateStore>))
        }
    }

    /// The credential source a key spec names.
    pub fn key_source(&self, spec: &KeySpec) -> Arc<dyn CredentialSource> {
        match spec {
            KeySpec::Env(var) => Arc::new(EnvKey::new(var.clone())),
            KeySpec::File(path) => Arc::new(FileKey::new(self.resolve_path(path))),
            KeySpec::Command { argv, ttl } => Arc::new(CommandKey::new(
                argv.clone(),
                ttl.unwrap_or(std::time::Duration::MAX),
            )),
        }
    }

    #[allow(unused_mut, unused_variables, unreachable_code)]
    fn build_provider(
        &self,
        name: &str,
        p: &ProviderConfig,
        prices: &Arc<PriceTable>,
        #[cfg(feature = "simulator")] sim: Option<&crate::simulator::Simulator>,
    ) -> Result<Arc<dyn ChatProvider>, Error> {
        #[allow(unused_mut)]
        let mut base_url = p.base_url.clone();
        let mut source = p.api_key.as_ref().map(|k| self.key_source(k));
        #[cfg(feature = "simulator")]
        if let Some(sim) = sim {
            use crate::simulator::Wire;
            let wire = match p.kind {
                ProviderKind::Anthropic => Wire::Anthropic,
                ProviderKind::Gemini => Wire::Gemini,
                ProviderKind::DeepSeek => Wire::DeepSeek,
                _ => Wire::OpenAi,
            };
            base_url = Some(sim.base_url(wire));
            source = Some(Arc::new(crate::credentials::StaticKey::new("sk-simulator")));
        }
        macro_rules! finish {
            ($builder:expr) => {{
                let mut b = $builder.prices(prices.clone());
                if let Some(url) = base_url {
                    b = b.base_url(url);
                }
                if let Some(source) = source {
                    b = b.api_key_source(source);
                }
                Ok(Arc::new(b.build()?) as Arc<dyn ChatProvider>)
            }};
        }
        let missing = |feature: &str| {
            Err(Error::config(format!(
                "kind \"{}\" needs the `{feature}` feature, which this build lacks",
                p.kind.as_str()
            )))
        };
        let _ = name;
        match p.kind {
            #[cfg(feature = "openai")]
            ProviderKind::OpenAi => finish!(crate::providers::OpenAi::builder()),
            #[cfg(feature = "anthropic")]
            ProviderKind::Anthropic => finish!(crate::providers::Anthropic::builder()),
            #[cfg(feature = "gemini")]
            ProviderKind::Gemini => finish!(crate::providers::Gemini::builder()),
            #[cfg(feature = "deepseek")]
            ProviderKind::DeepSeek => finish!(crate::providers::DeepSeek::builder()),
            #[cfg(feature = "compat")]
            ProviderKind::OpenAiCompatible => {
                use crate::providers::{OpenAiCompatible, Preset};
                let builder = match p.preset.as_deref() {
                    Some(preset) => match [
                        Preset::OpenRouter,
                        Preset::Groq,
                        Preset::Together,
                        Preset::Mistral,
                        Preset::Xai,
                        Preset::Fireworks,
                        Preset::Ollama,
                        Preset::Vllm,
                    ]
                    .iter()
                    .find(|x| x.name() == preset)
                    {
                        Some(&preset) => OpenAiCompatible::preset(preset),
                        None => {
                            return Err(Error::config(format!(
                                "preset: unknown preset \"{preset}\""
                            )));
                        }
                    },
                    None => OpenAiCompatible::builder(name),
                };
                finish!(builder)
            }
            #[allow(unreachable_patterns)]
            _ => missing(match p.kind {
                ProviderKind::OpenAi => "openai",
                ProviderKind::Anthropic => "anthropic",
                ProviderKind::Gemini => "gemini",
                ProviderKind::DeepSeek => "deepseek",
                _ => "compat",
            }),
        }
    }
}

/// Whether a key can be read now (for `--simulator`: a provider without one is simulated).
#[cfg(feature = "simulator")]
fn key_available(config: &GatewayConfig, spec: Option<&KeySpec>) -> bool {
    match spec {
        None => false,
        Some(KeySpec::Env(var)) => std::env::var(var).is_ok_and(|v| !v.trim().is_empty()),
        Some(KeySpec::File(path)) => config.resolve_path(path).is_file(),
        Some(KeySpec::Command { .. }) => true,
    }
}

fn target(provider: Arc<dyn ChatProvider>, t: &TargetConfig) -> Target {
    let mut target = Target::new(provider, t.model.clone());
    if let Some(w) = t.context_window {
        target = target.context_window(w);
    }
    if let Some(m) = t.max_tokens {
        target = target.max_tokens(m);
    }
    if let Some(w) = t.weight {
        target = target.weight(w);
    }
    if let Some(d) = t.timeout {
        target = target.timeout(d);
    }
    if let Some(d) = t.first_delta_timeout {
        target = target.first_delta_timeout(d);
    }
    if let Some(temp) = t.temperature {
        target = target.temperature(temp);
    }
    target
}

impl Router {
    /// A router from the gateway config file at `path` (TOML, or JSON when it ends in
    /// `.json`): see [`GatewayConfig`].
    ///
    /// A config with `[state] redis` is refused here, which cannot connect a store: build it
    /// with [`GatewayConfig::connect_state_store`] and [`GatewayConfig::build_router`].
    ///
    /// # Errors
    /// `ErrorKind::Config` naming the file, key path, what was expected and what was found.
    pub fn from_config(path: impl AsRef<std::path::Path>) -> Result<Router, Error> {
        let config = GatewayConfig::load(path)?;
        Ok(config.build_router(&BuildOptions::default())?.router)
    }
}
