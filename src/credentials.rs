//! Where a provider's API key comes from: a fixed key, an environment variable, a file re-read
//! when it changes, a command re-run when its output is stale, or any async source you write.
//!
//! Every provider builder takes a source with `.api_key_source(..)`; `.api_key(..)` stays the
//! fast path for a fixed key. The provider asks its source for the key once per request (each
//! attempt of a router is a request), so a source must be cheap when nothing changed: the built-in
//! ones cache, and so should yours.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use modelgate::credentials::{CommandKey, FileKey};
//! use modelgate::providers::OpenAi;
//!
//! # fn demo() -> Result<(), modelgate::Error> {
//! // A key rotated on disk takes effect on the next request, without a restart.
//! let openai = OpenAi::builder()
//!     .api_key_source(Arc::new(FileKey::new("/run/secrets/openai")))
//!     .build()?;
//!
//! // A vault CLI, run again once its answer is five minutes old.
//! let vault = CommandKey::new(
//!     vec!["vault".into(), "kv".into(), "get".into(), "-field=key".into(), "secret/openai".into()],
//!     Duration::from_secs(300),
//! );
//! let from_vault = OpenAi::builder().api_key_source(Arc::new(vault)).build()?;
//! # Ok(()) }
//! ```
//!
//! # Failures
//!
//! A key that cannot be had fails the request, never with a panic: a missing or empty variable,
//! an unreadable or empty file, a failing command all give [`ErrorKind::Auth`] with a message
//! naming the variable, the path or the program. A key with characters an HTTP header cannot
//! carry gives [`ErrorKind::Config`]. Keys never appear in errors, logs or `Debug` output, and
//! the key a request was sent with is scrubbed from that request's errors.
//!
//! # Writing a source
//!
//! ```
//! use async_trait::async_trait;
//! use modelgate::credentials::CredentialSource;
//! use modelgate::credentials::SecretString;
//! use modelgate::Error;
//!
//! /// A key from a secrets manager, fetched once and kept.
//! #[derive(Debug)]
//! struct Vault {
//!     key: tokio::sync::OnceCell<SecretString>,
//! }
//!
//! #[async_trait]
//! impl CredentialSource for Vault {
//!     async fn key(&self) -> Result<SecretString, Error> {
//!         let key = self
//!             .key
//!             .get_or_try_init(|| async {
//!                 // Ask the secrets manager here.
//!                 Ok::<_, Error>(SecretString::from("sk-from-vault"))
//!             })
//!             .await?;
//!         Ok(key.clone())
//!     }
//! }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::time::Instant;

/// The key type sources hand out (re-exported from `secrecy`, so a custom source needs no
/// dependency of its own): never printed by `Debug`, zeroed when dropped.
pub use secrecy::SecretString;

/// How to read a [`SecretString`] (`key.expose_secret()`), re-exported from `secrecy`.
pub use secrecy::ExposeSecret;

use crate::error::{Error, ErrorKind};

/// Anything that hands out an API key: a fixed key, a variable, a file, a command, a secrets
/// manager. Object safe: providers keep an `Arc<dyn CredentialSource>`.
///
/// # Contract
/// - [`key`](CredentialSource::key) is called once per request, so it should answer from a cache
///   when nothing changed (the built-in sources do: [`FileKey`] stats its file, [`CommandKey`]
///   keeps its output for a TTL).
/// - A key that cannot be had is an [`Error`] (the built-in sources use [`ErrorKind::Auth`]);
///   the request fails with it and is not sent. The error must not contain the key.
/// - `Debug` must not print the key.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The key to send with the next request.
    ///
    /// # Errors
    /// Whatever the source cannot overcome: a missing variable or file, a failing command, an
    /// unreachable secrets manager. The built-in sources fail with [`ErrorKind::Auth`].
    async fn key(&self) -> Result<SecretString, Error>;
}

fn auth(message: String) -> Error {
    Error::new(ErrorKind::Auth, message)
}

/// The key with surrounding whitespace (a file's trailing newline) removed; `None` if empty.
fn trimmed(text: &str) -> Option<SecretString> {
    let key = text.trim();
    (!key.is_empty()).then(|| SecretString::from(key))
}

// ---------------------------------------------------------------------------------------------

/// A fixed key. A builder's `.api_key(..)` is the same thing on a faster path (the header is
/// built once); use this where a source is needed.
///
/// `Debug` prints `StaticKey([REDACTED])`.
#[derive(Clone)]
pub struct StaticKey(SecretString);

impl StaticKey {
    /// A source that always answers `key`.
    pub fn new(key: impl Into<String>) -> Self {
        StaticKey(SecretString::from(key.into()))
    }
}

impl From<SecretString> for StaticKey {
    fn from(key: SecretString) -> Self {
        StaticKey(key)
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticKey([REDACTED])")
    }
}

#[async_trait]
impl CredentialSource for StaticKey {
    /// The key.
    ///
    /// # Errors
    /// `ErrorKind::Auth` when the key is empty.
    async fn key(&self) -> Result<SecretString, Error> {
        if self.0.expose_secret().is_empty() {
            return Err(auth("the static API key is empty".into()));
        }
        Ok(self.0.clone())
    }
}

// ---------------------------------------------------------------------------------------------

/// A key read from an environment variable at every request (reading one costs about as much as
/// a small allocation), so a variable set after the provider was built is seen. Surrounding
/// whitespace is removed.
///
/// `Debug` prints `EnvKey { var: "OPENAI_API_KEY" }`.
#[derive(Debug, Clone)]
pub struct EnvKey {
    var: String,
}

impl EnvKey {
    /// A source reading the variable `var`.
    pub fn new(var: impl Into<String>) -> Self {
        EnvKey { var: var.into() }
    }

    /// The variable's name.
    pub fn var(&self) -> &str {
        &self.var
    }
}

#[async_trait]
impl CredentialSource for EnvKey {
    /// The variable's value, trimmed.
    ///
    /// # Errors
    /// `ErrorKind::Auth`, naming the variable, when it is not set, not valid Unicode or empty.
    async fn key(&self) -> Result<SecretString, Error> {
        match std::env::var(&self.var) {
            Ok(value) => trimmed(&value)
                .ok_or_else(|| auth(format!("environment variable {} is empty", self.var))),
            Err(std::env::VarError::NotPresent) => Err(auth(format!(
                "environment variable {} is not set",
                self.var
            ))),
            Err(std::env::VarError::NotUnicode(_)) => Err(auth(format!(
                "environment variable {} is not valid Unicode",
                self.var
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A key read from a file, and read again whenever the file changes: a key rotated on disk (a
/// rewritten file, or a Kubernetes secret's symlink swap) takes effect on the next request,
/// without a restart. Surrounding whitespace (the trailing newline) is removed.
///
/// Each request costs one `stat` of the file (a blocking call, microseconds on a local file
/// system); the file is read only when its size, modification time or (on Unix) inode changed.
/// A file rewritten with a key of the same length within the file system's timestamp granularity
/// may go unnoticed until the next change; writing the new key to a temporary file and renaming
/// it over the old one is always seen.
///
/// `Debug` prints `FileKey { path: "/run/secrets/openai" }`.
pub struct FileKey {
    path: PathBuf,
    cache: Mutex<Option<FileCache>>,
}

struct FileCache {
    stamp: FileStamp,
    key: SecretString,
}

/// What tells a changed file apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

impl FileKey {
    /// A source reading the file at `path` (read at the first request, not here).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileKey {
            path: path.into(),
            cache: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self, what: &str, io: Option<std::io::Error>) -> Error {
        let err = auth(format!("key file {}: {what}", self.path.display()));
        match io {
            Some(io) => err.with_source(io),
            None => err,
        }
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey").field("path", &self.path).finish()
    }
}

#[async_trait]
impl CredentialSource for FileKey {
    /// The file's contents, trimmed; cached until the file changes.
    ///
    /// # Errors
    /// `ErrorKind::Auth`, naming the path, when the file cannot be read (missing, no permission,
    /// not UTF-8) or holds only whitespace.
    async fn key(&self) -> Result<SecretString, Error> {
        let meta =
            std::fs::metadata(&self.path).map_err(|e| self.failed("cannot read", Some(e)))?;
        let stamp = FileStamp::of(&meta);
        if let Some(cache) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner())
            && cache.stamp == stamp
        {
            return Ok(cache.key.clone());
        }
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| self.failed("cannot read", Some(e)))?;
        let key = trimmed(&text).ok_or_else(|| self.failed("is empty", None))?;
        // Cached under the stamp taken before reading: a file replaced meanwhile is read again
        // at the next request.
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(FileCache {
            stamp,
            key: key.clone(),
        });
        Ok(key)
    }
}

// ---------------------------------------------------------------------------------------------

/// How long a key command may run before it is killed and the request fails.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A key printed by a command (a vault CLI, `gcloud auth print-access-token`), kept for a TTL
/// and fetched again by running the command once more after it.
///
/// The command is run directly (no shell) with no input; its standard output, trimmed, is the
/// key; its standard error is discarded. Requests that find the key stale while it is being
/// fetched wait for that one run and share its outcome; requests that find it fresh take no
/// lock across an await. The TTL counts from the start of the run, on [`tokio::time::Instant`]
/// (so a paused test clock drives it).
///
/// `Debug` prints the program, TTL and timeout, not the arguments (they may name secrets).
///
/// In a test on tokio's paused clock, resume the clock while the command runs
/// (`tokio::time::resume()`): a paused runtime with nothing else to do jumps straight to the
/// command's timeout.
///
/// # Failures
/// A command that cannot start, exits with a non-zero status, is still running after its
/// timeout ([`DEFAULT_COMMAND_TIMEOUT`] unless set with [`CommandKey::timeout`]; it is then
/// killed) or prints nothing fails the request with [`ErrorKind::Auth`], naming the program and
/// its exit status but never its output. A failure is not cached: the next request runs the
/// command again. An empty `argv` fails with [`ErrorKind::Config`].
pub struct CommandKey {
    argv: Vec<String>,
    ttl: Duration,
    timeout: Duration,
    /// Never held across an await.
    state: Mutex<CommandState>,
    /// Held by the one caller running the command.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CommandState {
    /// The last key and when it goes stale.
    key: Option<(SecretString, Instant)>,
    /// How many runs have finished, so a caller that waited for one can tell.
    runs: u64,
    /// The last run's failure, shared with the callers that waited for it.
    last_error: Option<(ErrorKind, String)>,
}

impl CommandKey {
    /// A source running `argv[0]` with the arguments `argv[1..]`, its output kept for `ttl`.
    /// Nothing runs until the first request.
    pub fn new(argv: Vec<String>, ttl: Duration) -> Self {
        CommandKey {
            argv,
            ttl,
            timeout: DEFAULT_COMMAND_TIMEOUT,
            state: Mutex::new(CommandState::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets how long one run may take (default [`DEFAULT_COMMAND_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program that is run.
    pub fn program(&self) -> Option<&str> {
        self.argv.first().map(String::as_str)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CommandState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached key, if still fresh.
    fn fresh(state: &CommandState) -> Option<SecretString> {
        match &state.key {
            Some((key, stale_at)) if Instant::now() < *stale_at => Some(key.clone()),
            _ => None,
        }
    }

    async fn run(&self) -> Result<SecretString, Error> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(Error::new(ErrorKind::Config, "the key command is empty"));
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| auth(format!("key command `{program}` could not start")).with_source(e))?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(auth(format!("key command `{program}` failed")).with_source(e));
            }
            Err(_) => {
                return Err(auth(format!(
                    "key command `{program}` did not finish within {:?}",
                    self.timeout
                )));
            }
        };
        if !out.status.success() {
            return Err(auth(format!(
                "key command `{program}` failed ({})",
                out.status
            )));
        }
        let text = std::str::from_utf8(&out.stdout).map_err(|_| {
            auth(format!(
                "key command `{program}` printed something that is not UTF-8"
            ))
        })?;
        trimmed(text).ok_or_else(|| auth(format!("key command `{program}` printed no key")))
    }
}

impl fmt::Debug for CommandKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandKey")
            .field("program", &self.program())
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl CredentialSource for CommandKey {
    /// The command's output, trimmed; cached for the TTL.
    ///
    /// # Errors
    /// See [`CommandKey`]'s failures.
    async fn key(&self) -> Result<SecretString, Error> {
        let seen = {
            let state = self.state();
            if let Some(key) = Self::fresh(&state) {
                return Ok(key);
            }
            state.runs
        };
        let _refreshing = self.refresh.lock().await;
        {
            let state = self.state();
            if state.runs != seen {
                // A run finished while this caller waited: share its outcome.
                if let Some(key) = Self::fresh(&state) {
                    return Ok(key);
                }
                if let Some((kind, message)) = &state.last_error {
                    return Err(Error::new(*kind, message.clone()));
                }
            }
        }
        let started = Instant::now();
        let result = self.run().await;
        let mut state = self.state();
        state.runs += 1;
        match &result {
            Ok(key) => {
                state.key = Some((key.clone(), started + self.ttl));
                state.last_error = None;
            }
            Err(e) => state.last_error = Some((e.kind(), e.message().to_owned())),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_object_safe_and_shareable() {
        fn is<T: Send + Sync>() {}
        is::<std::sync::Arc<dyn CredentialSource>>();
        is::<StaticKey>();
        is::<EnvKey>();
        is::<FileKey>();
        is::<CommandKey>();
    }

    #[test]
    fn debug_prints_no_key() {
        let s = format!("{:?}", StaticKey::new("sk-very-secret"));
        assert_eq!(s, "StaticKey([REDACTED])");
        let c = CommandKey::new(
            vec!["vault".into(), "--token=sk-very-secret".into()],
            Duration::from_secs(60),
        );
        let s = format!("{c:?}");
        assert!(s.contains("vault") && !s.contains("sk-very-secret"), "{s}");
    }

    #[tokio::test]
    async fn an_empty_command_is_a_config_error() {
        let err = CommandKey::new(vec![], Duration::from_secs(1))
            .key()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[tokio::test]
    async fn an_empty_static_key_is_an_auth_error() {
        let err = StaticKey::new("").key().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
    }
}
