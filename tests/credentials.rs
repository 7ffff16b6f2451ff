//! Credential sources through the public API: a file key rotated on disk, a command kept for a
//! TTL (paused clock), failing commands and variables, a custom source, `Debug` without keys, and
//! scrubbing with a key that changes.
#![cfg(feature = "openai")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use modelgate::credentials::{
    CommandKey, CredentialSource, EnvKey, ExposeSecret, FileKey, SecretString, StaticKey,
};
use modelgate::providers::OpenAi;
use modelgate::{ChatProvider, ChatRequest, Error, ErrorKind};
use support::{Canned, MockServer};

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

fn ok() -> Canned {
    Canned::json(200, ANSWER)
}

/// A 401 whose body echoes `key`, as OpenAI's does.
fn echoing_401(key: &str) -> Canned {
    Canned::json(
        401,
        &format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {key}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
        ),
    )
}

fn req() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini").user("hi")
}

fn openai(server: &MockServer, source: Arc<dyn CredentialSource>) -> OpenAi {
    OpenAi::builder()
        .api_key_source(source)
        .base_url(format!("{}/v1", server.url()))
        .build()
        .unwrap()
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("modelgate-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bearer(server: &MockServer, i: usize) -> String {
    server.received()[i]
        .header("authorization")
        .expect("an authorization header")
        .to_owned()
}

fn assert_no_secret(err: &Error, secrets: &[&str]) {
    let shown = format!("{err} {err:?} {}", err.body().unwrap_or(""));
    for secret in secrets {
        assert!(!shown.contains(secret), "`{secret}` leaked: {shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// FileKey
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_key_rotated_on_disk_is_used_by_the_next_request() {
    let dir = TempDir::new("file-rotation");
    let file = dir.path("openai-key");
    std::fs::write(&file, "sk-first-key-0001\n").unwrap();
    let server = MockServer::start(vec![ok(), ok(), ok()]).await;
    let openai = openai(&server, Arc::new(FileKey::new(&file)));

    openai.chat(&req()).await.unwrap();
    assert_eq!(bearer(&server, 0), "Bearer sk-first-key-0001");

    // Rewritten in place (a longer key, so the size tells the change even on coarse clocks).
    std::fs::write(&file, "sk-second-key-000002\n").unwrap();
    openai.chat(&req()).await.unwrap();
    assert_eq!(bearer(&server, 1), "Bearer sk-second-key-000002");

    // Replaced by a rename, as secret mounts do: a key of the same length is seen too.
    let staged = dir.path("staged");
    std::fs::write(&staged, "sk-third--key-000003\r\n").unwrap();
    std::fs::rename(&staged, &file).unwrap();
    openai.chat(&req()).await.unwrap();
    assert_eq!(bearer(&server, 2), "Bearer sk-third--key-000003");
}

#[tokio::test]
async fn a_missing_or_empty_file_is_an_auth_error_naming_it() {
    let dir = TempDir::new("file-errors");
    let file = dir.path("key");
    let source = FileKey::new(&file);

    let err = source.key().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains(&*file.to_string_lossy()), "{err}");

    std::fs::write(&file, "  \n").unwrap();
    let err = source.key().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("is empty"), "{err}");

    std::fs::write(&file, "sk-file-key-1234\n").unwrap();
    assert_eq!(
        source.key().await.unwrap().expose_secret(),
        "sk-file-key-1234"
    );
    assert_eq!(
        source.key().await.unwrap().expose_secret(),
        "sk-file-key-1234"
    );

    // Through a provider, a missing file fails the request before anything is sent.
    let server = MockServer::start(vec![ok()]).await;
    let missing = FileKey::new(dir.path("nope"));
    let err = openai(&server, Arc::new(missing))
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.provider(), Some("openai"));
    assert!(err.message().contains("nope"), "{err}");
    assert!(server.received().is_empty());
}

// ---------------------------------------------------------------------------------------------
// CommandKey
// ---------------------------------------------------------------------------------------------

/// A command that appends a line to `counter` at each run and prints `sk-cmd-<runs>`.
fn counting_command(counter: &Path) -> Vec<String> {
    let script = r#"echo run >> "$1"; printf 'sk-cmd-%s\n' "$(wc -l < "$1" | tr -d ' ')""#;
    vec![
        "sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        counter.to_string_lossy().into_owned(),
    ]
}

fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Moves the paused clock forward. The clock runs between the jumps, because a child process
/// is waited for on the real clock: with a paused clock the runtime would skip to the command's
/// timeout while the child runs.
async fn advance(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

#[tokio::test]
async fn a_command_key_is_kept_for_its_ttl_then_run_again() {
    let dir = TempDir::new("command-ttl");
    let counter = dir.path("runs");
    let source = CommandKey::new(counting_command(&counter), Duration::from_secs(60));

    assert_eq!(source.key().await.unwrap().expose_secret(), "sk-cmd-1");
    advance(Duration::from_secs(59)).await;
    assert_eq!(source.key().await.unwrap().expose_secret(), "sk-cmd-1");
    assert_eq!(runs(&counter), 1, "re-run within the TTL");

    advance(Duration::from_secs(2)).await;
    assert_eq!(source.key().await.unwrap().expose_secret(), "sk-cmd-2");
    assert_eq!(source.key().await.unwrap().expose_secret(), "sk-cmd-2");
    assert_eq!(runs(&counter), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_run() {
    let dir = TempDir::new("command-concurrent");
    let counter = dir.path("runs");
    let source = CommandKey::new(counting_command(&counter), Duration::from_secs(60));
    let keys = futures::future::join_all((0..8).map(|_| source.key())).await;
    for key in keys {
        assert_eq!(key.unwrap().expose_secret(), "sk-cmd-1");
    }
    assert_eq!(runs(&counter), 1);
}

#[tokio::test]
async fn a_provider_sends_the_commands_key_and_the_new_one_after_the_ttl() {
    let dir = TempDir::new("command-provider");
    let counter = dir.path("runs");
    let source = CommandKey::new(counting_command(&counter), Duration::from_secs(300));
    let server = MockServer::start(vec![ok(), ok(), ok()]).await;
    let openai = openai(&server, Arc::new(source));

    openai.chat(&req()).await.unwrap();
    openai.chat(&req()).await.unwrap();
    advance(Duration::from_secs(301)).await;
    openai.chat(&req()).await.unwrap();
    assert_eq!(bearer(&server, 0), "Bearer sk-cmd-1");
    assert_eq!(bearer(&server, 1), "Bearer sk-cmd-1");
    assert_eq!(bearer(&server, 2), "Bearer sk-cmd-2");
    assert_eq!(runs(&counter), 2);
}

#[tokio::test]
async fn a_failing_command_is_an_auth_error_without_its_output() {
    let server = MockServer::start(vec![ok()]).await;
    let failing = CommandKey::new(
        vec![
            "sh".into(),
            "-c".into(),
            "echo sk-printed-before-failing; echo sk-on-stderr >&2; exit 3".into(),
        ],
        Duration::from_secs(60),
    );
    let err = openai(&server, Arc::new(failing))
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.provider(), Some("openai"));
    assert!(err.message().contains("`sh`"), "{err}");
    assert!(err.message().contains("exit status: 3"), "{err}");
    assert_no_secret(&err, &["sk-printed-before-failing", "sk-on-stderr"]);
    assert!(
        server.received().is_empty(),
        "a request went out without a key"
    );

    let silent = CommandKey::new(vec!["true".into()], Duration::from_secs(60));
    let err = silent.key().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("printed no key"), "{err}");

    let slow = CommandKey::new(
        vec!["sh".into(), "-c".into(), "sleep 5; echo sk-too-late".into()],
        Duration::from_secs(60),
    )
    .timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = slow.key().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not killed at its timeout"
    );
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("did not finish"), "{err}");

    let missing = CommandKey::new(
        vec!["/nonexistent/modelgate-vault".into()],
        Duration::from_secs(60),
    );
    let err = missing.key().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("could not start"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// EnvKey
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_variable_is_an_auth_error_naming_it() {
    let server = MockServer::start(vec![ok()]).await;
    let var = "MODELGATE_TEST_KEY_THAT_IS_NEVER_SET";
    let err = openai(&server, Arc::new(EnvKey::new(var)))
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains(var), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_set_variable_is_sent() {
    // Cargo sets this one for every test run (setting a variable here would need `unsafe`).
    let expected = std::env::var("CARGO_PKG_NAME").unwrap();
    let server = MockServer::start(vec![ok()]).await;
    openai(&server, Arc::new(EnvKey::new("CARGO_PKG_NAME")))
        .chat(&req())
        .await
        .unwrap();
    assert_eq!(bearer(&server, 0), format!("Bearer {expected}"));
}

// ---------------------------------------------------------------------------------------------
// A custom source; scrubbing with a key that changes
// ---------------------------------------------------------------------------------------------

/// A new key at every call: `sk-rotating-<n>`.
#[derive(Debug, Default)]
struct Rotating {
    calls: AtomicUsize,
}

#[async_trait]
impl CredentialSource for Rotating {
    async fn key(&self) -> Result<SecretString, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(SecretString::from(format!("sk-rotating-{n:04}")))
    }
}

#[tokio::test]
async fn a_custom_source_is_asked_at_each_request() {
    let server = MockServer::start(vec![ok(), ok()]).await;
    let source = Arc::new(Rotating::default());
    let openai = openai(&server, source.clone());
    openai.chat(&req()).await.unwrap();
    let mut stream = openai.chat_stream(&req()).await.unwrap();
    while stream.next().await.is_some() {}
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    assert_eq!(bearer(&server, 0), "Bearer sk-rotating-0001");
    assert_eq!(bearer(&server, 1), "Bearer sk-rotating-0002");
}

#[tokio::test]
async fn an_error_echoing_a_rotated_key_is_scrubbed_of_it() {
    let dir = TempDir::new("scrub-rotation");
    let file = dir.path("key");
    let (first, second) = ("sk-before-rotation-1", "sk-after-rotation-22");
    std::fs::write(&file, first).unwrap();
    let stream_error = format!(
        "data: {{\"error\":{{\"message\":\"bad key {second}\",\"type\":\"server_error\"}}}}\n\n"
    );
    let server = MockServer::start(vec![
        echoing_401(first),
        echoing_401(second),
        Canned::sse(&stream_error),
    ])
    .await;
    let openai = openai(&server, Arc::new(FileKey::new(&file)));

    let err = openai.chat(&req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("[REDACTED]"), "{err}");
    assert_no_secret(&err, &[first]);

    std::fs::write(&file, second).unwrap();
    let err = openai.chat(&req()).await.unwrap_err();
    assert!(err.message().contains("[REDACTED]"), "{err}");
    assert_no_secret(&err, &[second]);

    let mut stream = openai.chat_stream(&req()).await.unwrap();
    let mut errors = Vec::new();
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            errors.push(e);
        }
    }
    assert!(!errors.is_empty());
    for err in &errors {
        assert_no_secret(err, &[second]);
    }
}

// ---------------------------------------------------------------------------------------------
// Debug
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_shows_no_key() {
    let dir = TempDir::new("debug");
    let file = dir.path("key");
    std::fs::write(&file, "sk-debug-file-key").unwrap();
    let file_key = FileKey::new(&file);
    file_key.key().await.unwrap();
    let shown = format!("{file_key:?}");
    assert_eq!(shown, format!("FileKey {{ path: {file:?} }}"));

    assert_eq!(
        format!("{:?}", StaticKey::new("sk-debug-static")),
        "StaticKey([REDACTED])"
    );
    assert_eq!(
        format!("{:?}", EnvKey::new("OPENAI_API_KEY")),
        r#"EnvKey { var: "OPENAI_API_KEY" }"#
    );
    let command = CommandKey::new(
        vec!["printf".into(), "sk-debug-command".into()],
        Duration::from_secs(60),
    );
    command.key().await.unwrap();
    let shown = format!("{command:?}");
    assert!(
        shown.starts_with("CommandKey { program: Some(\"printf\")"),
        "{shown}"
    );

    let server = MockServer::start(vec![]).await;
    let providers = [
        openai(&server, Arc::new(file_key)),
        openai(&server, Arc::new(command)),
        OpenAi::builder().api_key("sk-debug-fixed").build().unwrap(),
    ];
    for provider in &providers {
        let shown = format!("{provider:?}");
        assert!(!shown.contains("sk-debug"), "{shown}");
    }
    assert!(format!("{:?}", providers[0]).contains("FileKey"));
}

#[tokio::test]
async fn a_key_a_header_cannot_carry_is_a_config_error_without_the_key() {
    let dir = TempDir::new("bad-header");
    let file = dir.path("key");
    std::fs::write(&file, "sk-line-one\nsk-line-two\n").unwrap();
    let server = MockServer::start(vec![ok()]).await;
    let err = openai(&server, Arc::new(FileKey::new(&file)))
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_no_secret(&err, &["sk-line-one", "sk-line-two"]);
    assert!(server.received().is_empty());
}

#[cfg(feature = "anthropic")]
#[tokio::test]
async fn a_header_keyed_provider_gets_the_sources_key_in_its_header() {
    let body = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: sk-rotating-0001"}}"#;
    let server = MockServer::start(vec![Canned::json(401, body)]).await;
    let claude = modelgate::providers::Anthropic::builder()
        .api_key_source(Arc::new(Rotating::default()))
        .base_url(server.url())
        .build()
        .unwrap();
    let err = claude
        .chat(&ChatRequest::new("claude-sonnet-4-5").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_no_secret(&err, &["sk-rotating-0001"]);
    let sent = server.last();
    assert_eq!(sent.header("x-api-key"), Some("sk-rotating-0001"));
    assert_eq!(sent.header("authorization"), None);
}
