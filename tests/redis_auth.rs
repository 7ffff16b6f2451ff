//! Logging in to Redis: an ACL user with a password from a credential source, or in the URL; a
//! wrong password is an unreachable store (as `on_error` says), and no password ever shows in
//! `Debug` or an error.
#![cfg(feature = "redis")]

#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;

use modelgate::ErrorKind;
use modelgate::credentials::StaticKey;
use modelgate::state::{Claim, OnError, RedisOptions, RedisStore, Reservation, StateStore};
use redis_support::RedisServer;

const PASSWORD: &str = "hunter2-redis-secret";

fn acl_server() -> Option<RedisServer> {
    let password = format!(">{PASSWORD}");
    RedisServer::spawn_with(&[
        "--user", "gw", "on", &password, "~*", "&*", "+@all", // the gateway's user
        "--user", "default", "off", // nobody gets in without logging in
    ])
}

fn claims() -> [Claim; 1] {
    [Claim {
        key: "auth".into(),
        window: 0,
        limit: 1_000,
        expires: 0,
    }]
}

#[tokio::test]
async fn an_acl_user_logs_in_with_a_password_from_a_credential_source() {
    let Some(server) = acl_server() else { return };
    let options = RedisOptions::new(server.url())
        .prefix("auth")
        .username("gw")
        .password(Arc::new(StaticKey::new(PASSWORD)))
        .on_error(OnError::FailClosed);
    assert!(!format!("{options:?}").contains(PASSWORD));
    let store = RedisStore::connect(options).await.unwrap();
    store.ping().await.unwrap();
    let granted = store.reserve(&claims(), 10).await.unwrap();
    assert!(matches!(granted, Reservation::Granted { .. }));
    assert_eq!(store.counters("auth", 0).await.unwrap().reserved, 10);
    assert!(!format!("{store:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_password_in_the_url_works_and_is_never_printed() {
    let Some(server) = acl_server() else { return };
    let url = format!("redis://gw:{PASSWORD}@127.0.0.1:{}", server.port());
    let options = RedisOptions::new(url).on_error(OnError::FailClosed);
    let shown = format!("{options:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("gw:[REDACTED]@127.0.0.1"), "{shown}");
    let store = RedisStore::connect(options).await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_an_unavailable_store_and_never_echoed() {
    let Some(server) = acl_server() else { return };
    let wrong = "not-the-password-42";
    let store = RedisStore::connect(
        RedisOptions::new(server.url())
            .username("gw")
            .password(Arc::new(StaticKey::new(wrong)))
            .on_error(OnError::FailClosed),
    )
    .await
    .unwrap();
    let err = store.reserve(&claims(), 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StateUnavailable);
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );
    assert!(store.is_degraded());

    // Without logging in at all, the same.
    let anonymous =
        RedisStore::connect(RedisOptions::new(server.url()).on_error(OnError::FailClosed))
            .await
            .unwrap();
    let err = anonymous.ping().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StateUnavailable);
}

#[tokio::test]
async fn a_tls_url_is_accepted_by_a_build_with_tls() {
    // No TLS server here: the store is made lazily, so building it checks the URL and that this
    // build can speak TLS; calls then fail as an unreachable store.
    let store = RedisStore::connect(
        RedisOptions::new("rediss://127.0.0.1:1/0").on_error(OnError::FailClosed),
    )
    .await;
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    {
        let store = store.unwrap();
        assert_eq!(
            store.reserve(&claims(), 1).await.unwrap_err().kind(),
            ErrorKind::StateUnavailable
        );
    }
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    assert_eq!(store.unwrap_err().kind(), ErrorKind::Config);
}
