//! What `modelgate check --config FILE` prints: a config in plain words. Key sources show the
//! variable, file or program they read, never a key.

use std::fmt::Write as _;
use std::time::Duration;

use super::{GatewayConfig, HedgeSpec, KeySpec, TargetConfig};
use crate::router::{BudgetScope, BudgetWindow, RetryPolicy};

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

fn key_source(spec: &KeySpec) -> String {
    match spec {
        KeySpec::Env(var) => format!("env {var}"),
        KeySpec::File(path) => format!("file {}", path.display()),
        KeySpec::Command { argv, ttl } => {
            let prog = argv.first().map_or("", String::as_str);
            match ttl {
                Some(t) => format!("command {prog} (re-run every {})", dur(*t)),
                None => format!("command {prog} (run once)"),
            }
        }
    }
}

fn window(w: &BudgetWindow) -> String {
    match w {
        BudgetWindow::Total => "in total".into(),
        BudgetWindow::Every(d) if d.as_secs() == 86_400 => "per day".into(),
        BudgetWindow::Every(d) if d.as_secs() == 3_600 => "per hour".into(),
        BudgetWindow::Every(d) => format!("per {}", dur(*d)),
        BudgetWindow::Monthly => "per calendar month".into(),
    }
}

fn scope(s: &BudgetScope) -> String {
    match s {
        BudgetScope::All => "every request".into(),
        BudgetScope::Route(r) => format!("route {r}"),
        BudgetScope::Target { provider, model } => format!("target {provider}/{model}"),
        BudgetScope::Tag { key, value } => format!("tag {key}={value}"),
        BudgetScope::EachTagValue(key) => format!("each value of tag {key}"),
    }
}

fn target(t: &TargetConfig) -> String {
    let mut out = format!("{}/{}", t.provider, t.model);
    let mut extra = Vec::new();
    if let Some(n) = t.context_window {
        extra.push(format!("context_window {n}"));
    }
    if let Some(n) = t.max_tokens {
        extra.push(format!("max_tokens {n}"));
    }
    if let Some(n) = t.weight {
        extra.push(format!("weight {n}"));
    }
    if let Some(d) = t.timeout {
        extra.push(format!("timeout {}", dur(d)));
    }
    if let Some(d) = t.first_delta_timeout {
        extra.push(format!("first_delta_timeout {}", dur(d)));
    }
    if let Some(x) = t.temperature {
        extra.push(format!("temperature {x}"));
    }
    if !extra.is_empty() {
        let _ = write!(out, " ({})", extra.join(", "));
    }
    out
}

impl GatewayConfig {
    /// The config in plain words, as `modelgate check` prints it: the server, providers, routes
    /// with their targets and strategy or rules, the router's policies (defaults filled in),
    /// budgets, keys, prices and the state store. Keys appear by name and source (a variable, a file, a program), never
    /// by value; the state store's URL appears without its `user:password@`.
    pub fn describe(&self) -> String {
        let mut o = String::new();
        let s = &self.server;
        let _ = writeln!(
            o,
            "server: listen {}, max_body {}, max_concurrent {}, timeout {}",
            s.listen,
            size(s.max_body),
            s.max_concurrent,
            dur(s.timeout)
        );

        let _ = writeln!(o, "providers:");
        for (name, p) in &self.providers {
            let _ = write!(o, "  {name}: {}", p.kind.as_str());
            if let Some(preset) = &p.preset {
                let _ = write!(o, " (preset {preset})");
            }
            if let Some(url) = &p.base_url {
                let _ = write!(o, ", base_url {url}");
            }
            match &p.api_key {
                Some(k) => {
                    let _ = writeln!(o, ", key from {}", key_source(k));
                }
                None => {
                    let _ = writeln!(o, ", no key");
                }
            }
        }

        let _ = writeln!(o, "routes:");
        for (name, r) in &self.routes {
            if let Some(targets) = &r.targets {
                let strategy = r.strategy.unwrap_or_default();
                let _ = writeln!(o, "  {name}: {} targets", strategy.as_str());
                for (i, t) in targets.iter().enumerate() {
                    let _ = writeln!(o, "    {}. {}", i + 1, target(t));
                }
            } else if let Some(rules) = &r.rules {
                let _ = writeln!(o, "  {name}: rules, first match wins");
                for rule in rules {
                    let _ = writeln!(o, "    if {} → {}", condition(&rule.condition), rule.route);
                }
                match &r.default {
                    Some(d) => {
                        let _ = writeln!(o, "    otherwise → {d}");
                    }
                    None => {
                        let _ = writeln!(o, "    otherwise: not found");
                    }
                }
            }
        }

        let r = &self.router;
        let _ = writeln!(o, "router:");
        let _ = writeln!(
            o,
            "  timeout {}, first_delta_timeout {}",
            r.timeout.map_or("none".into(), dur),
            dur(r
                .first_delta_timeout
                .unwrap_or(crate::router::DEFAULT_FIRST_DELTA_TIMEOUT))
        );
        let retry = r
            .retry
            .as_ref()
            .map_or_else(RetryPolicy::default, |c| c.to_policy());
        let _ = writeln!(
            o,
            "  retry: max_retries {}, base_delay {}, max_delay {}",
            retry.max_retries(),
            dur(retry.base_delay()),
            dur(retry.max_delay())
        );
        match r.hedge {
            Some(HedgeSpec::After(d)) => {
                let _ = writeln!(o, "  hedge: after {}", dur(d));
            }
            Some(HedgeSpec::Percentile(p)) => {
                let _ = writeln!(o, "  hedge: at the p{} latency", p * 100.0);
            }
            None => {
                let _ = writeln!(o, "  hedge: off");
            }
        }
        match &r.circuit_breaker {
            Some(c) => {
                let c = c.to_breaker();
                let _ = writeln!(
                    o,
                    "  circuit breaker: opens at failure_rate {} over {} requests in {}, cool_down {}",
                    c.failure_rate_threshold(),
                    c.min_requests(),
                    dur(c.window()),
                    dur(c.cool_down())
                );
            }
            None => {
                let _ = writeln!(o, "  circuit breaker: off");
            }
        }

        if !self.budgets.is_empty() {
            let _ = writeln!(o, "budgets:");
        }
        for b in &self.budgets {
            let _ = write!(
                o,
                "  {}: ${} {}, {}",
                b.name,
                usd(b.usd),
                window(&b.window),
                scope(&b.scope)
            );
            match (&b.downgrade_to, b.soft_limit) {
                (Some(to), Some(soft)) => {
                    let _ = write!(o, ", downgrades to {to} past {}%", soft * 100.0);
                }
                (Some(to), None) => {
                    let _ = write!(o, ", downgrades to {to} when spent");
                }
                _ => {
                    let _ = write!(o, ", refuses when spent");
                }
            }
            o.push('\n');
        }

        if self.keys.is_empty() {
            let _ = writeln!(o, "keys: none (the server listens on loopback only)");
        } else {
            let _ = writeln!(o, "keys:");
        }
        for k in &self.keys {
            let _ = write!(o, "  {}: from {}", k.name, key_source(&k.key));
            match &k.routes {
                Some(routes) => {
                    let _ = write!(o, ", routes {}", routes.join(", "));
                }
                None => {
                    let _ = write!(o, ", every route");
                }
            }
            if let Some(b) = &k.budget {
                let _ = write!(o, ", budget ${} {}", usd(b.usd), window(&b.window));
            }
            o.push('\n');
        }

        match &self.prices {
            Some(p) => {
                let _ = writeln!(
                    o,
                    "prices: built-in table, extended by {}",
                    p.file.display()
                );
            }
            None => {
                let _ = writeln!(o, "prices: built-in table");
            }
        }

        match self.state.as_ref().and_then(|s| s.redis.as_ref()) {
            Some(r) => {
                let _ = write!(
                    o,
                    "state: redis {}, prefix {}, {}, timeout {}, reservation_ttl {}, sync_interval {}",
                    r.redacted_url(),
                    r.prefix,
                    r.on_error.as_str(),
                    dur(r.timeout),
                    dur(r.reservation_ttl),
                    dur(r.sync_interval)
                );
                if let Some(user) = &r.username {
                    let _ = write!(o, ", user {user}");
                }
                if let Some(p) = &r.password {
                    let _ = write!(o, ", password from {}", key_source(p));
                }
                o.push('\n');
            }
            None => {
                let _ = writeln!(o, "state: this process only (no [state] redis)");
            }
        }
        o
    }
}

fn condition(c: &super::ConditionConfig) -> String {
    let mut parts = Vec::new();
    let flag = |name: &str, on: Option<bool>| {
        on.map(|on| {
            if on {
                name.to_owned()
            } else {
                format!("no {name}")
            }
        })
    };
    parts.extend(flag("images", c.has_images));
    parts.extend(flag("audio", c.has_audio));
    parts.extend(flag("tools", c.has_tools));
    if let Some(n) = c.min_input_tokens {
        parts.push(format!("input tokens ≥ {n}"));
    }
    if let Some(n) = c.max_input_tokens {
        parts.push(format!("input tokens ≤ {n}"));
    }
    for (k, v) in &c.tag {
        parts.push(format!("tag {k}={v}"));
    }
    parts.join(" and ")
}

/// Dollars with cents, or every digit for an amount under a cent (a test's `0.0001`, not `0.00`).
fn usd(amount: f64) -> String {
    if amount == 0.0 || amount.abs() >= 0.01 {
        format!("{amount:.2}")
    } else {
        format!("{amount}")
    }
}
