//! The second pass over a config: references between its parts and the values serde cannot
//! judge alone. Each error names the key path.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    ConditionConfig, GatewayConfig, KeySpec, PRESETS, ProviderKind, RedisConfig, RouteConfig,
    config_error,
};
use crate::Error;
use crate::router::BudgetScope;

/// `a, b, c`, or `none` when empty.
fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl GatewayConfig {
    /// Checks what the file's shape cannot: every reference (a target's provider, a rule's,
    /// default's, budget's or key's route, a budget's target), the absence of rule cycles,
    /// unique budget and key names, a route with exactly one of `targets` and `rules`, presets
    /// on `openai-compatible` only, `soft_limit` with `downgrade_to`, non-zero timeouts and the
    /// router policies' own checks. The constructors call it; call it again after changing a
    /// config in code.
    ///
    /// # Errors
    /// `ErrorKind::Config` for the first mistake, in the file's order, naming its key path.
    pub fn validate(&self) -> Result<(), Error> {
        self.check_server()?;
        self.check_providers()?;
        self.check_routes()?;
        self.check_rule_cycles()?;
        self.check_router()?;
        self.check_budgets()?;
        self.check_keys()?;
        self.check_state()?;
        if let Some(p) = &self.prices
            && p.file.as_os_str().is_empty()
        {
            return Err(self.err("prices.file", "expected a path, found an empty string"));
        }
        Ok(())
    }

    fn err(&self, path: &str, message: impl AsRef<str>) -> Error {
        config_error(&self.file_name, Some(path), message.as_ref(), None)
    }

    fn positive(&self, path: &str, d: Option<Duration>) -> Result<(), Error> {
        match d {
            Some(d) if d.is_zero() => {
                Err(self.err(path, "expected a duration longer than zero, found 0"))
            }
            _ => Ok(()),
        }
    }

    fn no_route(&self, path: &str, name: &str) -> Error {
        self.err(
            path,
            format!("no route {name:?} (defined: {})", list(self.routes.keys())),
        )
    }

    fn check_route_ref(&self, path: &str, name: &str) -> Result<(), Error> {
        if self.routes.contains_key(name) {
            Ok(())
        } else {
            Err(self.no_route(path, name))
        }
    }

    fn check_key_spec(&self, path: &str, spec: &KeySpec) -> Result<(), Error> {
        match spec {
            KeySpec::Env(var) if var.is_empty() || var.contains('=') || var.contains('\0') => Err(
                self.err(&format!("{path}.env"), "expected an environment variable's name"),
            ),
            KeySpec::File(p) if p.as_os_str().is_empty() => {
                Err(self.err(&format!("{path}.file"), "expected a path, found an empty string"))
            }
            KeySpec::Command { argv, .. } if argv.first().is_none_or(|p| p.is_empty()) => {
                Err(self.err(
                    &format!("{path}.command"),
                    "expected a program and its arguments, like [\"vault\", \"read\", \"-field=key\", \"secret/openai\"]",
                ))
            }
            KeySpec::Command { ttl, .. } => self.positive(&format!("{path}.ttl"), *ttl),
            _ => Ok(()),
        }
    }

    fn check_server(&self) -> Result<(), Error> {
        let s = &self.server;
        if s.max_body == 0 {
            return Err(self.err("server.max_body", "expected a size above zero, found 0"));
        }
        if s.max_concurrent == 0 {
            return Err(self.err("server.max_concurrent", "expected at least 1, found 0"));
        }
        self.positive("server.timeout", Some(s.timeout))
    }

    fn check_providers(&self) -> Result<(), Error> {
        if self.providers.is_empty() {
            return Err(self.err("providers", "expected at least one [providers.NAME] table"));
        }
        for (name, p) in &self.providers {
            let at = format!("providers.{name}");
            if name.is_empty() || name.contains('/') {
                return Err(self.err(&at, "a provider's name must be non-empty and without '/'"));
            }
            if let Some(preset) = &p.preset {
                if p.kind != ProviderKind::OpenAiCompatible {
                    return Err(self.err(
                        &format!("{at}.preset"),
                        format!(
                            "a preset applies to kind \"openai-compatible\" only, found kind {:?}",
                            p.kind.as_str()
                        ),
                    ));
                }
                if !PRESETS.contains(&preset.as_str()) {
                    return Err(self.err(
                        &format!("{at}.preset"),
                        format!("no preset {preset:?} (known: {})", PRESETS.join(", ")),
                    ));
                }
            } else if p.kind == ProviderKind::OpenAiCompatible && p.base_url.is_none() {
                return Err(self.err(
                    &at,
                    "an openai-compatible provider needs a `preset` or a `base_url`",
                ));
            }
            if let Some(url) = &p.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(self.err(
                    &format!("{at}.base_url"),
                    format!("expected an http:// or https:// URL, found {url:?}"),
                ));
            }
            if let Some(spec) = &p.api_key {
                self.check_key_spec(&format!("{at}.api_key"), spec)?;
            }
        }
        Ok(())
    }

    fn check_routes(&self) -> Result<(), Error> {
        if self.routes.is_empty() {
            return Err(self.err("routes", "expected at least one [routes.NAME] table"));
        }
        for (name, route) in &self.routes {
            let at = format!("routes.{name}");
            match (&route.targets, &route.rules) {
                (Some(_), Some(_)) => {
                    return Err(self.err(&at, "expected either `targets` or `rules`, found both"));
                }
                (None, None) => {
                    return Err(self.err(&at, "expected `targets` or `rules`, found neither"));
                }
                (Some(targets), None) => self.check_targets(&at, route, targets)?,
                (None, Some(_)) => self.check_rules(&at, route)?,
            }
        }
        Ok(())
    }

    fn check_targets(
        &self,
        at: &str,
        route: &RouteConfig,
        targets: &[super::TargetConfig],
    ) -> Result<(), Error> {
        if route.default.is_some() {
            return Err(self.err(
                &format!("{at}.default"),
                "a default applies to a route of rules, and this one has targets",
            ));
        }
        if targets.is_empty() {
            return Err(self.err(
                &format!("{at}.targets"),
                "expected at least one target, found none",
            ));
        }
        for (i, t) in targets.iter().enumerate() {
            let tat = format!("{at}.targets[{i}]");
            if !self.providers.contains_key(&t.provider) {
                return Err(self.err(
                    &format!("{tat}.provider"),
                    format!(
                        "no provider {:?} (defined: {})",
                        t.provider,
                        list(self.providers.keys())
                    ),
                ));
            }
            if t.model.is_empty() {
                return Err(self.err(
                    &format!("{tat}.model"),
                    "expected a model name, found an empty string",
                ));
            }
            self.positive(&format!("{tat}.timeout"), t.timeout)?;
            self.positive(&format!("{tat}.first_delta_timeout"), t.first_delta_timeout)?;
            if t.max_tokens == Some(0) {
                return Err(self.err(&format!("{tat}.max_tokens"), "expected at least 1, found 0"));
            }
            if t.context_window == Some(0) {
                return Err(self.err(
                    &format!("{tat}.context_window"),
                    "expected at least 1, found 0",
                ));
            }
            if let Some(temp) = t.temperature
                && !(0.0..=2.0).contains(&temp)
            {
                return Err(self.err(
                    &format!("{tat}.temperature"),
                    format!("expected a number from 0 to 2, found {temp}"),
                ));
            }
        }
        Ok(())
    }

    fn check_rules(&self, at: &str, route: &RouteConfig) -> Result<(), Error> {
        if route.strategy.is_some() {
            return Err(self.err(
                &format!("{at}.strategy"),
                "a strategy orders a route's targets, and this route has rules",
            ));
        }
        let rules = route.rules.as_deref().unwrap_or_default();
        if rules.is_empty() {
            return Err(self.err(
                &format!("{at}.rules"),
                "expected at least one rule, found none",
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            let rat = format!("{at}.rules[{i}]");
            check_condition(&rule.condition).map_err(|m| self.err(&format!("{rat}.if"), m))?;
            self.check_route_ref(&format!("{rat}.route"), &rule.route)?;
        }
        if let Some(d) = &route.default {
            self.check_route_ref(&format!("{at}.default"), d)?;
        }
        Ok(())
    }

    /// A route of rules that leads back to itself, through any number of rule routes.
    fn check_rule_cycles(&self) -> Result<(), Error> {
        // 0 unvisited, 1 on the current path, 2 done.
        let mut state: HashMap<&str, u8> = HashMap::new();
        for start in self.routes.keys() {
            let mut path: Vec<&str> = Vec::new();
            if let Some(cycle) = visit(self, start, &mut state, &mut path) {
                return Err(self.err(
                    &format!("routes.{}", cycle[0]),
                    format!("rule routes lead back to themselves: {}", cycle.join(" → ")),
                ));
            }
        }
        Ok(())
    }

    /// The routes a route of rules leads to (none for a route of targets).
    fn rule_edges(&self, name: &str) -> Vec<&str> {
        match self.routes.get(name) {
            Some(r) if r.rules.is_some() => r
                .rules
                .iter()
                .flatten()
                .map(|rule| rule.route.as_str())
                .chain(r.default.as_deref())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn check_router(&self) -> Result<(), Error> {
        let r = &self.router;
        self.positive("router.timeout", r.timeout)?;
        self.positive("router.first_delta_timeout", r.first_delta_timeout)?;
        if let Some(retry) = &r.retry {
            self.positive("router.retry.max_delay", retry.max_delay)?;
            retry
                .to_policy()
                .validate()
                .map_err(|e| self.err("router.retry", e.message()))?;
        }
        if let Some(hedge) = &r.hedge {
            match hedge {
                super::HedgeSpec::After(d) => self.positive("router.hedge.after", Some(*d))?,
                super::HedgeSpec::Percentile(p) if !(*p > 0.0 && *p < 1.0) => {
                    return Err(self.err(
                        "router.hedge.percentile",
                        format!("expected a fraction between 0 and 1 (0.95 for p95), found {p}"),
                    ));
                }
                super::HedgeSpec::Percentile(_) => {}
            }
            hedge
                .to_policy()
                .validate()
                .map_err(|e| self.err("router.hedge", e.message()))?;
        }
        if let Some(cb) = &r.circuit_breaker {
            if let Some(rate) = cb.failure_rate
                && !(rate > 0.0 && rate <= 1.0)
            {
                return Err(self.err(
                    "router.circuit_breaker.failure_rate",
                    format!("expected a fraction in (0, 1], found {rate}"),
                ));
            }
            self.positive("router.circuit_breaker.window", cb.window)?;
            self.positive("router.circuit_breaker.cool_down", cb.cool_down)?;
            cb.to_breaker()
                .validate()
                .map_err(|e| self.err("router.circuit_breaker", e.message()))?;
        }
        Ok(())
    }

    fn check_budgets(&self) -> Result<(), Error> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, b) in self.budgets.iter().enumerate() {
            let at = format!("budgets[{i}]");
            if b.name.is_empty() {
                return Err(self.err(
                    &format!("{at}.name"),
                    "expected a name, found an empty string",
                ));
            }
            if let Some(first) = seen.insert(&b.name, i) {
                return Err(self.err(
                    &format!("{at}.name"),
                    format!(
                        "a budget {:?} is already defined (budgets[{first}])",
                        b.name
                    ),
                ));
            }
            if !b.usd.is_finite() || b.usd < 0.0 {
                return Err(self.err(
                    &format!("{at}.usd"),
                    format!("expected a non-negative number of dollars, found {}", b.usd),
                ));
            }
            if let Some(soft) = b.soft_limit {
                if !(soft > 0.0 && soft <= 1.0) {
                    return Err(self.err(
                        &format!("{at}.soft_limit"),
                        format!("expected a fraction in (0, 1] of usd, found {soft}"),
                    ));
                }
                if b.downgrade_to.is_none() {
                    return Err(self.err(
                        &format!("{at}.soft_limit"),
                        "a soft_limit needs downgrade_to (the route to use past it)",
                    ));
                }
            }
            if let Some(to) = &b.downgrade_to {
                self.check_route_ref(&format!("{at}.downgrade_to"), to)?;
            }
            match &b.scope {
                BudgetScope::Route(r) => self.check_route_ref(&format!("{at}.scope.route"), r)?,
                BudgetScope::Target { provider, model } => {
                    let known = self
                        .routes
                        .values()
                        .flat_map(|r| r.targets.iter().flatten());
                    if !known
                        .clone()
                        .any(|t| &t.provider == provider && &t.model == model)
                    {
                        let mut names: Vec<String> = known
                            .map(|t| format!("{}/{}", t.provider, t.model))
                            .collect();
                        names.dedup();
                        return Err(self.err(
                            &format!("{at}.scope.target"),
                            format!(
                                "no route has the target \"{provider}/{model}\" (targets: {})",
                                list(names.iter())
                            ),
                        ));
                    }
                }
                _ => {}
            }
            b.to_budget()
                .validate()
                .map_err(|e| self.err(&at, e.message()))?;
        }
        Ok(())
    }

    fn check_keys(&self) -> Result<(), Error> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, k) in self.keys.iter().enumerate() {
            let at = format!("keys[{i}]");
            if k.name.is_empty() {
                return Err(self.err(
                    &format!("{at}.name"),
                    "expected a name, found an empty string",
                ));
            }
            if let Some(first) = seen.insert(&k.name, i) {
                return Err(self.err(
                    &format!("{at}.name"),
                    format!("a key {:?} is already defined (keys[{first}])", k.name),
                ));
            }
            self.check_key_spec(&format!("{at}.key"), &k.key)?;
            for (j, r) in k.routes.iter().flatten().enumerate() {
                self.check_route_ref(&format!("{at}.routes[{j}]"), r)?;
            }
            if let Some(b) = &k.budget
                && (!b.usd.is_finite() || b.usd < 0.0)
            {
                return Err(self.err(
                    &format!("{at}.budget.usd"),
                    format!("expected a non-negative number of dollars, found {}", b.usd),
                ));
            }
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), Error> {
        let Some(redis) = self.state.as_ref().and_then(|s| s.redis.as_ref()) else {
            return Ok(());
        };
        let at = "state.redis";
        check_redis_url(redis).map_err(|m| self.err(&format!("{at}.url"), m))?;
        if redis.prefix.is_empty() || redis.prefix.chars().any(char::is_whitespace) {
            return Err(self.err(
                &format!("{at}.prefix"),
                format!(
                    "expected a non-empty prefix without spaces, like \"modelgate\", found {:?}",
                    redis.prefix
                ),
            ));
        }
        self.positive(&format!("{at}.timeout"), Some(redis.timeout))?;
        self.positive(
            &format!("{at}.reservation_ttl"),
            Some(redis.reservation_ttl),
        )?;
        self.positive(&format!("{at}.sync_interval"), Some(redis.sync_interval))?;
        // A reservation that lapses while its request still runs frees money the request will
        // spend: the fleet could overshoot. The server's timeout bounds every request.
        let (longest, key) = match self.router.timeout {
            Some(t) if t > self.server.timeout => (t, "router.timeout"),
            _ => (self.server.timeout, "server.timeout"),
        };
        if redis.reservation_ttl <= longest {
            return Err(self.err(
                &format!("{at}.reservation_ttl"),
                format!(
                    "expected a duration longer than {key} ({}), the longest a request runs, found {}",
                    humantime::format_duration(longest),
                    humantime::format_duration(redis.reservation_ttl)
                ),
            ));
        }
        if let Some(user) = &redis.username {
            if user.is_empty() {
                return Err(self.err(
                    &format!("{at}.username"),
                    "expected a user name, found an empty string",
                ));
            }
            if redis.url_has_userinfo() {
                return Err(self.err(
                    &format!("{at}.username"),
                    "the url already names a user (user:password@); give it in one place",
                ));
            }
        }
        if let Some(spec) = &redis.password {
            self.check_key_spec(&format!("{at}.password"), spec)?;
            if redis.url_has_userinfo() {
                return Err(self.err(
                    &format!("{at}.password"),
                    "the url already carries credentials (user:password@); give them in one place",
                ));
            }
        }
        Ok(())
    }
}

/// A `redis://` or `rediss://` URL with a host, an optional port and an optional database
/// number. The message never repeats the URL's credentials.
fn check_redis_url(redis: &RedisConfig) -> Result<(), String> {
    let shown = redis.redacted_url();
    let expected = "expected a URL like \"redis://127.0.0.1:6379\" or \"rediss://HOST:PORT/DB\"";
    if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
        return Err(format!(
            "{expected} (scheme redis or rediss), found {shown:?}"
        ));
    }
    let url =
        reqwest::Url::parse(&redis.url).map_err(|e| format!("{expected}: {e}, found {shown:?}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{expected}: no host, found {shown:?}"));
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(format!(
            "{expected}: the path names a database by number (/0, /1, …), found {shown:?}"
        ));
    }
    Ok(())
}

fn check_condition(c: &ConditionConfig) -> Result<(), String> {
    if c.is_empty() {
        return Err("expected at least one condition (has_images, has_audio, has_tools, min_input_tokens, max_input_tokens, tag), found none".into());
    }
    if let (Some(min), Some(max)) = (c.min_input_tokens, c.max_input_tokens)
        && min > max
    {
        return Err(format!(
            "min_input_tokens ({min}) is above max_input_tokens ({max}): no request can match"
        ));
    }
    Ok(())
}

/// Depth-first search; returns the cycle (first name repeated at the end) if one is reachable.
fn visit<'a>(
    config: &'a GatewayConfig,
    name: &'a str,
    state: &mut HashMap<&'a str, u8>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    match state.get(name).copied().unwrap_or(0) {
        2 => return None,
        1 => {
            let from = path.iter().position(|n| *n == name).unwrap_or(0);
            let mut cycle = path[from..].to_vec();
            cycle.push(name);
            return Some(cycle);
        }
        _ => {}
    }
    state.insert(name, 1);
    path.push(name);
    for to in config.rule_edges(name) {
        if let Some(c) = visit(config, to, state, path) {
            return Some(c);
        }
    }
    path.pop();
    state.insert(name, 2);
    None
}
