//! Helpers for tests against a real Redis: the shared server CI starts (`REDIS_URL`), key
//! prefixes that keep tests on that server apart, and private `redis-server` processes that a
//! fault test may kill and restart.
//!
//! A test that needs Redis skips (with a message on stderr) when none is available, unless
//! `MODELGATE_REDIS_REQUIRED=1` (set by `.ci/run`), where a missing Redis fails the test loudly.
//! Include this file with `#[path = "support/redis.rs"] mod redis_support;`; it needs no cargo
//! feature (it speaks RESP over a plain socket).
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether CI demands the Redis tests run (`MODELGATE_REDIS_REQUIRED=1`).
pub fn required() -> bool {
    std::env::var("MODELGATE_REDIS_REQUIRED").is_ok_and(|v| v == "1")
}

/// The shared Redis to test against: `REDIS_URL` if set. Otherwise the test should skip (this
/// says so on stderr and returns `None`), or, when `MODELGATE_REDIS_REQUIRED=1`, fail: this
/// panics.
///
/// ```ignore
/// let Some(url) = redis_url() else { return };
/// ```
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if required() => panic!(
            "\n\n*** MODELGATE_REDIS_REQUIRED=1 but REDIS_URL is not set: this test needs a \
             Redis server. Start one (redis-server --port PORT) and set \
             REDIS_URL=redis://127.0.0.1:PORT, or unset MODELGATE_REDIS_REQUIRED to skip. ***\n"
        ),
        _ => {
            eprintln!(
                "skipping: REDIS_URL is not set (start redis-server and set \
                 REDIS_URL=redis://127.0.0.1:PORT to run this test)"
            );
            None
        }
    }
}

/// A key prefix no other test, and no other test process, uses: the process id, a time this
/// process started at, a counter, and `test` (kept to `[A-Za-z0-9_-]`, so the prefix is also a
/// literal `KEYS` pattern).
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "mgtest-{}-{:x}-{n}-{test}",
        std::process::id(),
        started % 0x1_0000_0000
    )
}

/// A `redis://` URL of a loopback port nothing listens on.
pub fn closed_port_url() -> String {
    format!("redis://127.0.0.1:{}", free_port())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether a Redis answers `PING` with `PONG` at `addr` within `timeout`.
pub fn answers_ping(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    if sock.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut filled = 0;
    while filled < 7 {
        match sock.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
    }
    // A server that wants a login first is up, too.
    &buf[..7] == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH")
}

/// The `redis-server` binary: `MODELGATE_REDIS_SERVER`, else `redis-server` on the `PATH`.
fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MODELGATE_REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// How long a private server may take to answer its first `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A private `redis-server` on a free loopback port, without persistence, killed when dropped.
/// For tests that take Redis away ([`kill`](RedisServer::kill)) and bring it back
/// ([`restart`](RedisServer::restart), on the same port and empty).
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// More `redis-server` arguments (an ACL user, say).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`. `None` (after a message on stderr)
    /// when `redis-server` is not installed; a panic instead when `MODELGATE_REDIS_REQUIRED=1`,
    /// or when the server does not come up.
    pub fn spawn() -> Option<RedisServer> {
        Self::spawn_with(&[])
    }

    /// [`spawn`](Self::spawn) with more `redis-server` arguments, e.g.
    /// `["--user", "gw", "on", ">secret", "~*", "&*", "+@all"]` for an ACL user.
    pub fn spawn_with(extra: &[&str]) -> Option<RedisServer> {
        let Some(binary) = server_binary() else {
            if required() {
                panic!(
                    "\n\n*** MODELGATE_REDIS_REQUIRED=1 but `redis-server` is not on the PATH \
                     (install it, e.g. apt-get install redis-server, or set \
                     MODELGATE_REDIS_SERVER to its path) ***\n"
                );
            }
            eprintln!(
                "skipping: redis-server is not installed (install it, e.g. apt-get install \
                 redis-server, to run this test)"
            );
            return None;
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "modelgate-redis-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut server = RedisServer {
            binary,
            port: 0,
            dir,
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        // Another process may take the free port before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.start() {
                Ok(()) => return Some(server),
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server is running (neither killed nor crashed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server (SIGKILL: no shutdown, connections drop at once) and waits for it to
    /// exit. Its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if it still runs) and waits
    /// until it answers `PING`. It starts empty.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&mut self) {
        self.kill();
        // A client reconnecting in a loop cannot hold the port, but the kernel may still be
        // tearing down the old listener: a few tries.
        let mut last = String::new();
        for _ in 0..5 {
            match self.start() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}: {last}", self.port);
    }

    fn start(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--logfile", &log.to_string_lossy()])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return Err(format!(
                    "it exited on port {}: {}",
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            if answers_ping(addr, Duration::from_millis(250)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        Err(format!(
            "no PONG on port {} within {READY_WITHIN:?}: {}",
            self.port,
            std::fs::read_to_string(&log).unwrap_or_default()
        ))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
