//! `[state] redis = { … }`: its keys, defaults and checks, each mistake naming its key path, and
//! credentials kept out of every message, `Debug` and `describe()`.
#![cfg(feature = "config")]

use std::time::Duration;

use modelgate::ErrorKind;
use modelgate::config::{BuildOptions, GatewayConfig, KeySpec, RedisConfig, RedisOnError};

const BASE: &str = r#"
[providers.openai]
kind = "openai"
api_key = { env = "OPENAI_API_KEY" }

[routes.chat]
targets = [{ provider = "openai", model = "gpt-4o-mini" }]
"#;

fn with(state: &str) -> String {
    format!("{BASE}\n[state]\n{state}\n")
}

fn redis(config: &GatewayConfig) -> &RedisConfig {
    config
        .state
        .as_ref()
        .and_then(|s| s.redis.as_ref())
        .expect("a [state] redis")
}

/// The error message of a config that must fail, checked to be `ErrorKind::Config`.
fn error(text: &str) -> String {
    let err = GatewayConfig::from_toml_str(text, "fleet.toml").expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let msg = err.message().to_owned();
    assert!(msg.starts_with("fleet.toml: "), "{msg}");
    msg
}

#[test]
fn every_key_parses_and_omitted_ones_have_defaults() {
    let c = GatewayConfig::from_toml_str(
        &with(
            r#"redis = { url = "rediss://redis.internal:6380/2", prefix = "prod-gw", timeout = "100ms",
                      on_error = "fail-closed", username = "gw", password = { env = "REDIS_PASSWORD" },
                      reservation_ttl = "15m", sync_interval = "500ms" }"#,
        ),
        "fleet.toml",
    )
    .unwrap();
    let r = redis(&c);
    assert_eq!(r.url, "rediss://redis.internal:6380/2");
    assert_eq!(r.prefix, "prod-gw");
    assert_eq!(r.timeout, Duration::from_millis(100));
    assert_eq!(r.on_error, RedisOnError::FailClosed);
    assert_eq!(r.username.as_deref(), Some("gw"));
    assert_eq!(r.password, Some(KeySpec::Env("REDIS_PASSWORD".into())));
    assert_eq!(r.reservation_ttl, Duration::from_secs(900));
    assert_eq!(r.sync_interval, Duration::from_millis(500));
    assert_eq!(r.endpoint(), "redis.internal:6380");

    let c = GatewayConfig::from_toml_str(&with("redis = { url = \"redis://127.0.0.1\" }"), "f")
        .unwrap();
    let r = redis(&c);
    assert_eq!(r.prefix, modelgate::config::DEFAULT_REDIS_PREFIX);
    assert_eq!(r.timeout, modelgate::config::DEFAULT_REDIS_TIMEOUT);
    assert_eq!(r.on_error, RedisOnError::FailOpen);
    assert_eq!(
        r.reservation_ttl,
        modelgate::config::DEFAULT_RESERVATION_TTL
    );
    assert_eq!(r.sync_interval, modelgate::config::DEFAULT_SYNC_INTERVAL);
    assert_eq!((r.username.as_ref(), r.password.as_ref()), (None, None));
    assert_eq!(r.endpoint(), "127.0.0.1:6379");

    // Without `[state]`, or with an empty one, the state stays in the process.
    let c = GatewayConfig::from_toml_str(BASE, "f").unwrap();
    assert!(c.state.is_none());
    let c = GatewayConfig::from_toml_str(&with(""), "f").unwrap();
    assert!(c.state.unwrap().redis.is_none());
}

#[test]
fn toml_and_json_read_the_same() {
    let toml = GatewayConfig::from_toml_str(
        &with(r#"redis = { url = "redis://h:1/0", prefix = "p", password = { file = "pw" } }"#),
        "f.toml",
    )
    .unwrap();
    let json = GatewayConfig::from_json_str(
        r#"{ "providers": { "openai": { "kind": "openai", "api_key": { "env": "OPENAI_API_KEY" } } },
             "routes": { "chat": { "targets": [{ "provider": "openai", "model": "gpt-4o-mini" }] } },
             "state": { "redis": { "url": "redis://h:1/0", "prefix": "p", "password": { "file": "pw" } } } }"#,
        "f.json",
    )
    .unwrap();
    assert_eq!(toml.state, json.state);
}

#[test]
fn unknown_keys_and_bad_values_name_their_path() {
    let m = error(&with("redis = { url = \"redis://h\", prefx = \"p\" }"));
    assert!(
        m.contains("state.redis") && m.contains("unknown field `prefx`"),
        "{m}"
    );
    let m = error(&with("memcached = {}"));
    assert!(m.contains("unknown field `memcached`"), "{m}");
    let m = error(&with("redis = { prefix = \"p\" }"));
    assert!(
        m.contains("state.redis") && m.contains("missing field `url`"),
        "{m}"
    );
    let m = error(&with(
        "redis = { url = \"redis://h\", on_error = \"fail-later\" }",
    ));
    assert!(
        m.contains("state.redis.on_error: unknown variant `fail-later`, expected `fail-open` or `fail-closed`"),
        "{m}"
    );
    let m = error(&with("redis = { url = \"redis://h\", timeout = \"soon\" }"));
    assert!(
        m.contains("state.redis.timeout: expected a duration like \"500ms\""),
        "{m}"
    );
    for key in ["timeout", "reservation_ttl", "sync_interval"] {
        let m = error(&with(&format!(
            "redis = {{ url = \"redis://h\", {key} = \"0s\" }}"
        )));
        assert!(
            m.contains(&format!(
                "state.redis.{key}: expected a duration longer than zero"
            )),
            "{m}"
        );
    }
    for prefix in ["", "my prefix", "tab\tbed"] {
        let m = error(&with(&format!(
            "redis = {{ url = \"redis://h\", prefix = {prefix:?} }}"
        )));
        assert!(
            m.contains("state.redis.prefix: expected a non-empty prefix without spaces"),
            "{m}"
        );
    }
    let m = error(&with("redis = { url = \"redis://h\", username = \"\" }"));
    assert!(m.contains("state.redis.username"), "{m}");
    let m = error(&with(
        "redis = { url = \"redis://h\", password = { env = \"\" } }",
    ));
    assert!(m.contains("state.redis.password.env"), "{m}");
}

#[test]
fn the_url_must_be_redis_and_is_never_echoed_with_its_password() {
    for url in [
        "http://h:6379",
        "redis:/h",
        "127.0.0.1:6379",
        "unix:///tmp/redis.sock",
    ] {
        let m = error(&with(&format!("redis = {{ url = {url:?} }}")));
        assert!(
            m.contains("state.redis.url: expected a URL like \"redis://127.0.0.1:6379\""),
            "{m}"
        );
    }
    for url in ["redis://", "redis://h:notaport", "redis://h:6379/zero"] {
        let m = error(&with(&format!("redis = {{ url = {url:?} }}")));
        assert!(m.contains("state.redis.url: "), "{m}");
    }
    let m = error(&with(
        "redis = { url = \"https://gw:hunter2@redis.internal:6379\" }",
    ));
    assert!(
        m.contains("state.redis.url") && m.contains("redis.internal:6379"),
        "{m}"
    );
    assert!(!m.contains("hunter2") && !m.contains("gw:"), "{m}");
    let m = error(&with("redis = { url = \"redis://gw:hunter2@h:bad\" }"));
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn credentials_go_in_one_place_and_a_literal_password_is_refused() {
    let m = error(&with(
        "redis = { url = \"redis://gw:pw@h\", password = { env = \"REDIS_PASSWORD\" } }",
    ));
    assert!(
        m.contains("state.redis.password: the url already carries credentials"),
        "{m}"
    );
    let m = error(&with(
        "redis = { url = \"redis://gw:pw@h\", username = \"gw\" }",
    ));
    assert!(
        m.contains("state.redis.username: the url already names a user"),
        "{m}"
    );
    let m = error(&with(
        "redis = { url = \"redis://h\", password = \"hunter2\" }",
    ));
    assert!(m.contains("state.redis.password"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn a_reservation_must_outlive_the_longest_request() {
    let m = error(&with(
        "redis = { url = \"redis://h\", reservation_ttl = \"60s\" }",
    ));
    assert!(
        m.contains(
            "state.redis.reservation_ttl: expected a duration longer than server.timeout (2m)"
        ),
        "{m}"
    );
    let m = error(&format!(
        "{BASE}\n[router]\ntimeout = \"20m\"\n[state]\nredis = {{ url = \"redis://h\" }}\n"
    ));
    assert!(
        m.contains(
            "state.redis.reservation_ttl: expected a duration longer than router.timeout (20m)"
        ),
        "{m}"
    );
    let ok = format!(
        "[server]\ntimeout = \"30s\"\n{BASE}\n[state]\nredis = {{ url = \"redis://h\", reservation_ttl = \"31s\" }}\n"
    );
    GatewayConfig::from_toml_str(&ok, "f").unwrap();
}

#[test]
fn describe_and_debug_show_the_store_without_its_password() {
    let c = GatewayConfig::from_toml_str(
        &with(
            r#"redis = { url = "redis://gw:hunter2@redis.internal:6379/1", prefix = "eu", on_error = "fail-closed" }"#,
        ),
        "f",
    )
    .unwrap();
    let text = c.describe();
    let line = text
        .lines()
        .find(|l| l.starts_with("state:"))
        .unwrap_or_else(|| panic!("no state line in\n{text}"));
    assert_eq!(
        line,
        "state: redis redis://redis.internal:6379/1, prefix eu, fail-closed, timeout 250ms, reservation_ttl 10m, sync_interval 1s"
    );
    let debug = format!("{c:?}");
    assert!(
        !text.contains("hunter2") && !debug.contains("hunter2"),
        "{debug}"
    );
    assert!(debug.contains("redis://redis.internal:6379/1"), "{debug}");
    assert_eq!(redis(&c).endpoint(), "redis.internal:6379");

    let c = GatewayConfig::from_toml_str(
        &with(r#"redis = { url = "redis://h", username = "gw", password = { env = "REDIS_PW" } }"#),
        "f",
    )
    .unwrap();
    assert!(
        c.describe()
            .contains(", user gw, password from env REDIS_PW\n"),
        "{}",
        c.describe()
    );
    let c = GatewayConfig::from_toml_str(BASE, "f").unwrap();
    assert!(c.describe().contains("state: this process only"));
}

#[test]
fn a_redis_config_does_not_build_without_its_store() {
    let c = GatewayConfig::from_toml_str(
        &with("redis = { url = \"redis://127.0.0.1:1\" }"),
        "fleet.toml",
    )
    .unwrap();
    let err = c.build_router(&BuildOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let m = err.message();
    assert!(m.starts_with("fleet.toml: state.redis: "), "{m}");
    if cfg!(feature = "redis") {
        assert!(m.contains("connect it first"), "{m}");
    } else {
        assert!(m.contains("`redis` feature"), "{m}");
    }
    // Without `[state] redis` the router keeps its own state.
    let c = GatewayConfig::from_toml_str(BASE, "f").unwrap();
    c.build_router(&BuildOptions::default()).unwrap();
}

#[tokio::test]
async fn connecting_needs_no_store_without_state_and_the_feature_with_it() {
    let c = GatewayConfig::from_toml_str(BASE, "f").unwrap();
    assert!(c.connect_state_store().await.unwrap().is_none());
    #[cfg(not(feature = "redis"))]
    {
        let c =
            GatewayConfig::from_toml_str(&with("redis = { url = \"redis://h\" }"), "f").unwrap();
        let err = c.connect_state_store().await.unwrap_err();
        assert!(err.message().contains("state.redis") && err.message().contains("`redis` feature"));
    }
}

#[test]
fn the_fleet_example_loads_and_describes_its_store() {
    let c = GatewayConfig::load("examples/fleet.toml").unwrap();
    let r = redis(&c);
    assert_eq!(r.on_error, RedisOnError::FailClosed);
    assert_eq!(r.prefix, "modelgate-example");
    assert!(
        c.describe().contains(
            "state: redis redis://127.0.0.1:6379/0, prefix modelgate-example, fail-closed"
        ),
        "{}",
        c.describe()
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_connected_store_builds_the_router_and_a_failing_password_is_named() {
    // Redis need not be up: the store connects lazily.
    let c = GatewayConfig::from_toml_str(
        &with("redis = { url = \"redis://127.0.0.1:1\", prefix = \"config-test\" }"),
        "fleet.toml",
    )
    .unwrap();
    let store = c.connect_state_store().await.unwrap().expect("a store");
    let mut options = BuildOptions::default();
    options.state_store = Some(store);
    c.build_router(&options).unwrap();

    let c = GatewayConfig::from_toml_str(
        &with(
            "redis = { url = \"redis://127.0.0.1:1\", password = { env = \"MODELGATE_TEST_UNSET_REDIS_PASSWORD\" } }",
        ),
        "fleet.toml",
    )
    .unwrap();
    let err = c.connect_state_store().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.message().starts_with("fleet.toml: state.redis: ")
            && err
                .message()
                .contains("MODELGATE_TEST_UNSET_REDIS_PASSWORD"),
        "{err}"
    );
}
