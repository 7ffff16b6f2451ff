//! The gateway config: every class of mistake is an `ErrorKind::Config` naming the file and the
//! key path; TOML and JSON read the same; the example file passes.
#![cfg(feature = "config")]

use std::time::Duration;

use modelgate::ErrorKind;
use modelgate::config::{GatewayConfig, HedgeSpec, KeySpec, ProviderKind, StrategyKind};
use modelgate::router::{BudgetScope, BudgetWindow};

const BASE: &str = r#"
[providers.openai]
kind = "openai"
api_key = { env = "OPENAI_API_KEY" }

[providers.deepseek]
kind = "deepseek"
api_key = { env = "DEEPSEEK_API_KEY" }

[routes.chat]
targets = [
  { provider = "openai", model = "gpt-4o-mini" },
  { provider = "deepseek", model = "deepseek-chat" },
]
"#;

/// The error message of a config that must fail, checked to be `ErrorKind::Config`.
fn error(text: &str) -> String {
    let err = GatewayConfig::from_toml_str(text, "gateway.toml").expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let msg = err.message().to_owned();
    println!("{msg}");
    assert!(msg.starts_with("gateway.toml: "), "{msg}");
    msg
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn the_base_config_is_valid_and_has_defaults() {
    let c = GatewayConfig::from_toml_str(BASE, "gateway.toml").unwrap();
    assert_eq!(c.server.listen, modelgate::config::DEFAULT_LISTEN);
    assert_eq!(c.server.max_body, 4 << 20);
    assert_eq!(c.server.timeout, modelgate::config::DEFAULT_SERVER_TIMEOUT);
    assert_eq!(
        c.providers.keys().collect::<Vec<_>>(),
        ["openai", "deepseek"],
        "file order is kept"
    );
    assert_eq!(c.providers["openai"].kind, ProviderKind::OpenAi);
    assert_eq!(
        c.providers["openai"].api_key,
        Some(KeySpec::Env("OPENAI_API_KEY".into()))
    );
    assert!(c.budgets.is_empty() && c.keys.is_empty() && c.prices.is_none());
}

#[test]
fn unknown_keys_are_errors_at_every_depth() {
    let top = error(&with("[sever]\nlisten = \"127.0.0.1:1\""));
    assert!(top.contains("unknown field `sever`"), "{top}");
    let server = error(&with("[server]\nlisten_on = \"127.0.0.1:1\""));
    assert!(server.contains("server"), "{server}");
    assert!(server.contains("unknown field `listen_on`"), "{server}");
    let target = error(&BASE.replace(
        r#"{ provider = "deepseek", model"#,
        r#"{ provder = "deepseek", model"#,
    ));
    assert!(target.contains("routes.chat.targets[1]"), "{target}");
    assert!(
        target.contains("unknown field `provder`, expected one of"),
        "{target}"
    );
    let retry = error(&with("[router]\nretry = { max_retry = 2 }"));
    assert!(retry.contains("router.retry"), "{retry}");
    assert!(retry.contains("unknown field `max_retry`"), "{retry}");
    let key = error(&BASE.replace(r#"{ env = "OPENAI_API_KEY" }"#, r#"{ environment = "X" }"#));
    assert!(key.contains("providers.openai.api_key"), "{key}");
    assert!(key.contains("unknown field `environment`"), "{key}");
    let cond = error(&with(
        "[routes.auto]\nrules = [{ if = { has_image = true }, route = \"chat\" }]",
    ));
    assert!(cond.contains("routes.auto.rules[0].if"), "{cond}");
}

#[test]
fn wrong_types_name_what_was_expected_and_found() {
    let m = error(&with("[server]\nmax_concurrent = \"lots\""));
    assert!(
        m.contains("server.max_concurrent: invalid type: string \"lots\", expected"),
        "{m}"
    );
    let m = error(&BASE.replace("model = \"gpt-4o-mini\"", "model = 4"));
    assert!(
        m.contains("routes.chat.targets[0].model: invalid type: integer `4`"),
        "{m}"
    );
}

#[test]
fn bad_durations_are_named() {
    let m = error(&with("[router]\nretry = { base_delay = \"fast\" }"));
    assert!(
        m.starts_with(
            "gateway.toml: router.retry.base_delay: expected a duration like \"500ms\", \"30s\" or \"1d\", found \"fast\""
        ),
        "{m}"
    );
    let m = error(&with("[router]\ntimeout = 30"));
    assert!(
        m.contains(
            "router.timeout: invalid type: integer `30`, expected a duration like \"500ms\""
        ),
        "{m}"
    );
}

#[test]
fn zero_timeouts_are_refused() {
    let m = error(&with("[router]\ntimeout = \"0s\""));
    assert!(
        m.contains("router.timeout: expected a duration longer than zero"),
        "{m}"
    );
    let m = error(&BASE.replace(
        "model = \"gpt-4o-mini\"",
        "model = \"gpt-4o-mini\", timeout = \"0ms\"",
    ));
    assert!(m.contains("routes.chat.targets[0].timeout"), "{m}");
}

#[test]
fn bad_sizes_are_named() {
    let m = error(&with("[server]\nmax_body = \"4 megs\""));
    assert!(
        m.starts_with(
            "gateway.toml: server.max_body: expected a size like \"4MiB\", \"512KiB\" or \"1MB\", found \"4 megs\""
        ),
        "{m}"
    );
    let ok =
        GatewayConfig::from_toml_str(&with("[server]\nmax_body = \"512KiB\""), "g.toml").unwrap();
    assert_eq!(ok.server.max_body, 512 * 1024);
}

#[test]
fn unknown_kind_lists_the_kinds() {
    let m = error(&BASE.replace("kind = \"openai\"", "kind = \"opnai\""));
    assert!(m.contains("providers.openai.kind: unknown variant `opnai`, expected one of `openai`, `anthropic`, `gemini`, `deepseek`, `openai-compatible`"), "{m}");
}

#[test]
fn presets_belong_to_openai_compatible() {
    let m = error(&BASE.replace(
        "kind = \"deepseek\"",
        "kind = \"deepseek\"\npreset = \"groq\"",
    ));
    assert!(
        m.contains(
            "providers.deepseek.preset: a preset applies to kind \"openai-compatible\" only"
        ),
        "{m}"
    );
    let m = error(&with("[providers.local]\nkind = \"openai-compatible\""));
    assert!(
        m.contains(
            "providers.local: an openai-compatible provider needs a `preset` or a `base_url`"
        ),
        "{m}"
    );
    let ok = with(
        "[providers.groq]\nkind = \"openai-compatible\"\npreset = \"groq\"\napi_key = { env = \"GROQ_API_KEY\" }",
    );
    GatewayConfig::from_toml_str(&ok, "g.toml").unwrap();
}

#[test]
fn a_target_naming_an_undefined_provider() {
    let m = error(&BASE.replace("provider = \"deepseek\"", "provider = \"opnai\""));
    assert_eq!(
        m,
        "gateway.toml: routes.chat.targets[1].provider: no provider \"opnai\" (defined: openai, deepseek)"
    );
}

#[test]
fn a_rule_naming_an_undefined_route() {
    let m = error(&with(
        "[routes.auto]\nrules = [{ if = { has_images = true }, route = \"vison\" }]\ndefault = \"chat\"",
    ));
    assert_eq!(
        m,
        "gateway.toml: routes.auto.rules[0].route: no route \"vison\" (defined: chat, auto)"
    );
    let m = error(&with(
        "[routes.auto]\nrules = [{ if = { has_images = true }, route = \"chat\" }]\ndefault = \"gtp\"",
    ));
    assert!(m.contains("routes.auto.default: no route \"gtp\""), "{m}");
}

#[test]
fn a_cycle_of_rule_routes_is_named() {
    let m = error(&with(
        r#"
[routes.a]
rules = [{ if = { has_tools = true }, route = "b" }]
default = "chat"
[routes.b]
rules = [{ if = { max_input_tokens = 10 }, route = "chat" }]
default = "a"
"#,
    ));
    assert_eq!(
        m,
        "gateway.toml: routes.a: rule routes lead back to themselves: a → b → a"
    );
}

#[test]
fn a_route_needs_exactly_one_of_targets_and_rules() {
    let m = error(&with(
        "[routes.both]\ntargets = [{ provider = \"openai\", model = \"x\" }]\nrules = [{ if = { has_tools = true }, route = \"chat\" }]",
    ));
    assert_eq!(
        m,
        "gateway.toml: routes.both: expected either `targets` or `rules`, found both"
    );
    let m = error(&with("[routes.none]\nstrategy = \"ordered\""));
    assert_eq!(
        m,
        "gateway.toml: routes.none: expected `targets` or `rules`, found neither"
    );
    let m = error(&BASE.replace("[routes.chat]", "[routes.chat]\nstrategy = \"fastest\""));
    assert!(
        m.contains("routes.chat.strategy: unknown variant `fastest`"),
        "{m}"
    );
}

#[test]
fn duplicate_budget_and_key_names() {
    let m = error(&with(
        "[[budgets]]\nname = \"daily\"\nusd = 5\n[[budgets]]\nname = \"daily\"\nusd = 6",
    ));
    assert_eq!(
        m,
        "gateway.toml: budgets[1].name: a budget \"daily\" is already defined (budgets[0])"
    );
    let m = error(&with(
        "[[keys]]\nname = \"a\"\nkey = { env = \"A\" }\n[[keys]]\nname = \"a\"\nkey = { env = \"B\" }",
    ));
    assert!(
        m.contains("keys[1].name: a key \"a\" is already defined (keys[0])"),
        "{m}"
    );
}

#[test]
fn budget_scopes_and_downgrades_are_checked() {
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nscope = { route = \"chta\" }",
    ));
    assert!(
        m.contains("budgets[0].scope.route: no route \"chta\""),
        "{m}"
    );
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nscope = { target = \"openai/gpt-5\" }",
    ));
    assert!(m.contains("budgets[0].scope.target: no route has the target \"openai/gpt-5\" (targets: openai/gpt-4o-mini, deepseek/deepseek-chat)"), "{m}");
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nscope = { target = \"gpt-5\" }",
    ));
    assert!(
        m.contains("budgets[0].scope: expected a target like \"provider/model\", found \"gpt-5\""),
        "{m}"
    );
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nscope = { route = \"chat\", tag = { a = \"b\" } }",
    ));
    assert!(
        m.contains("budgets[0].scope: expected exactly one of"),
        "{m}"
    );
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nscope = { team = \"x\" }",
    ));
    assert!(
        m.contains("budgets[0].scope") && m.contains("unknown field `team`"),
        "{m}"
    );
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\nsoft_limit = 0.8",
    ));
    assert!(
        m.contains("budgets[0].soft_limit: a soft_limit needs downgrade_to"),
        "{m}"
    );
    let m = error(&with(
        "[[budgets]]\nname = \"b\"\nusd = 5\ndowngrade_to = \"cheep\"",
    ));
    assert!(
        m.contains("budgets[0].downgrade_to: no route \"cheep\""),
        "{m}"
    );
    let m = error(&with(
        "[[keys]]\nname = \"k\"\nkey = { env = \"K\" }\nroutes = [\"chat\", \"nope\"]",
    ));
    assert!(m.contains("keys[0].routes[1]: no route \"nope\""), "{m}");
}

#[test]
fn a_literal_key_is_refused_without_being_repeated() {
    let m = error(&BASE.replace(r#"{ env = "OPENAI_API_KEY" }"#, r#""sk-live-secret""#));
    assert!(
        m.contains("providers.openai.api_key: expected a key source like { env = \"VAR\" }"),
        "{m}"
    );
    assert!(!m.contains("sk-live-secret"), "{m}");
    let m = error(&with("[[keys]]\nname = \"k\"\nkey = \"sk-gateway-secret\""));
    assert!(!m.contains("sk-gateway-secret"), "{m}");
}

#[test]
fn key_sources_and_hedges_parse() {
    let c = GatewayConfig::from_toml_str(
        &with(
            r#"
[router]
hedge = { percentile = 0.95 }
[[keys]]
name = "vault"
key = { command = ["vault", "read", "-field=key", "secret/gw"], ttl = "5m" }
[[keys]]
name = "disk"
key = { file = "keys/gw.key" }
"#,
        ),
        "g.toml",
    )
    .unwrap();
    assert_eq!(c.router.hedge, Some(HedgeSpec::Percentile(0.95)));
    assert_eq!(
        c.keys[0].key,
        KeySpec::Command {
            argv: vec![
                "vault".into(),
                "read".into(),
                "-field=key".into(),
                "secret/gw".into()
            ],
            ttl: Some(Duration::from_secs(300)),
        }
    );
    assert_eq!(c.keys[1].key, KeySpec::File("keys/gw.key".into()));
    // describe() names a command's program, never its arguments (they may hold a secret's path).
    let text = c.describe();
    assert!(
        text.contains("vault: from command vault (re-run every 5m)"),
        "{text}"
    );
    assert!(!text.contains("secret/gw"), "{text}");
    assert!(text.contains("disk: from file keys/gw.key"), "{text}");
    let m = error(&with(
        "[router]\nhedge = { after = \"2s\", percentile = 0.9 }",
    ));
    assert!(
        m.contains("router.hedge: expected exactly one of `after`"),
        "{m}"
    );
    let m = error(&with("[[keys]]\nname = \"k\"\nkey = { command = [] }"));
    assert!(m.contains("keys[0].key.command: expected a program"), "{m}");
}

#[test]
fn toml_syntax_errors_have_a_position() {
    let m = error("[providers.openai\nkind = \"openai\"");
    assert!(m.contains("(line 1, column"), "{m}");
}

#[test]
fn toml_and_json_read_the_same() {
    let toml_text = std::fs::read_to_string("examples/gateway.toml").unwrap();
    let from_toml = GatewayConfig::from_toml_str(&toml_text, "gateway").unwrap();
    let value: toml::Value = toml::from_str(&toml_text).unwrap();
    let json_text = serde_json::to_string_pretty(&value).unwrap();
    let from_json = GatewayConfig::from_json_str(&json_text, "gateway").unwrap();
    assert_eq!(from_toml, from_json);

    let err = GatewayConfig::from_json_str(
        r#"{"providers": {"openai": {"kind": "openai", "api_key": {"env": "K"}}},
            "routes": {"chat": {"targets": [{"provider": "openai", "model": "m", "modle": 1}]}}}"#,
        "gateway.json",
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    println!("{}", err.message());
    assert!(
        err.message()
            .starts_with("gateway.json: routes.chat.targets[0]"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("unknown field `modle`"),
        "{}",
        err.message()
    );
}

#[test]
fn load_picks_the_format_by_extension_and_refuses_non_utf8() {
    let dir = std::env::temp_dir().join(format!("modelgate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("gw.json");
    std::fs::write(
        &json,
        r#"{"providers": {"openai": {"kind": "openai"}},
            "routes": {"chat": {"targets": [{"provider": "openai", "model": "m"}]}},
            "prices": {"file": "prices.json"}}"#,
    )
    .unwrap();
    let c = GatewayConfig::load(&json).unwrap();
    assert_eq!(
        c.resolve_path(&c.prices.as_ref().unwrap().file),
        dir.join("prices.json")
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, b"[providers.openai]\nkind = \"open\xffai\"\n").unwrap();
    let err = GatewayConfig::load(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    println!("{}", err.message());
    assert!(
        err.message().contains(
            "bad.toml: the config file is not UTF-8 text (invalid byte at offset 31, line 2)"
        ),
        "{}",
        err.message()
    );

    let missing = GatewayConfig::load(dir.join("missing.toml")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    assert!(
        missing
            .message()
            .contains("missing.toml: cannot read the config file")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_file_loads_and_describes_itself() {
    let c = GatewayConfig::load("examples/gateway.toml").unwrap();
    assert_eq!(
        c.providers.keys().collect::<Vec<_>>(),
        ["openai", "anthropic", "gemini", "deepseek"]
    );
    assert_eq!(c.routes["auto"].default.as_deref(), Some("gpt"));
    assert_eq!(c.routes["cheap"].strategy, Some(StrategyKind::LowestCost));
    assert_eq!(
        c.budgets[0].window,
        BudgetWindow::Every(Duration::from_secs(86_400))
    );
    assert_eq!(c.budgets[0].downgrade_to.as_deref(), Some("cheap"));
    assert_eq!(
        c.budgets[1].scope,
        BudgetScope::Target {
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into()
        }
    );
    assert_eq!(c.keys.len(), 2);
    assert!(c.keys.iter().all(|k| k.budget.is_some()));
    // The mappings onto the router's own types hold their checks.
    assert!(
        c.router
            .retry
            .as_ref()
            .unwrap()
            .to_policy()
            .validate()
            .is_ok()
    );
    assert!(c.routes["auto"].to_rules().is_some());
    assert!(c.budgets[0].to_budget().validate().is_ok());

    let text = c.describe();
    println!("{text}");
    assert!(
        text.contains("  auto: rules, first match wins\n    if images → vision\n"),
        "{text}"
    );
    assert!(text.contains("    otherwise → gpt\n"), "{text}");
    assert!(
        text.contains("  cheap: lowest-cost targets\n    1. deepseek/deepseek-chat"),
        "{text}"
    );
    assert!(
        text.contains("retry: max_retries 2, base_delay 500ms, max_delay 8s"),
        "{text}"
    );
    assert!(
        text.contains(
            "team-search: from env MODELGATE_KEY_SEARCH, routes auto, cheap, budget $20.00 per day"
        ),
        "{text}"
    );
}
