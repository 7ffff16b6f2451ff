//! A fleet: three `modelgate serve` processes with one config sharing one Redis (`[state]
//! redis`), in front of the in-test simulator. Together they keep one budget exactly, and a
//! target that one of them saw rate limited, or whose circuit one of them opened, is skipped by
//! the other two.
//!
//! Redis comes from `REDIS_URL` (`redis-server --port 6379 & REDIS_URL=redis://127.0.0.1:6379`).
//! Without it the tests print a skip notice and pass, unless `MODELGATE_REDIS_REQUIRED=1` (CI
//! sets it), where they fail. Each test uses a prefix of its own, and deletes its keys at the
//! end.
#![cfg(all(feature = "server", feature = "redis"))]

#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/serve.rs"]
mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::state::{RedisOptions, RedisStore, StateStore, usd_to_nanos};
use serde_json::{Value, json};

use redis_support::{redis_url, unique_prefix};

/// One `modelgate serve` process; killed (and reaped) when dropped, whatever the test's outcome.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The fleet's config directory and the Redis keys under its prefix: both removed when dropped
/// (after the servers, which are declared after it).
struct Cleanup {
    dir: PathBuf,
    redis_url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let Ok(client) = redis::Client::open(self.redis_url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

struct Fleet {
    // Field order is drop order: the servers die before their config and keys are removed.
    servers: Vec<Server>,
    sim: Simulator,
    http: reqwest::Client,
    redis_url: String,
    prefix: String,
    _cleanup: Cleanup,
}

/// What one request got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    model: Option<String>,
    attempts: Option<u32>,
    cost_usd: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

const PRICES: &str = r#"{ "models": {
    "sim/m1": { "input": 0.0, "output": 20.0 },
    "sim/m2": { "input": 0.0, "output": 20.0 } } }"#;

impl Fleet {
    /// Three servers of one config: provider `sim` (the simulator's OpenAI wire), route `chat`
    /// over `targets`, `extra` TOML (policies, budgets), and `[state] redis` on a fresh prefix.
    async fn start(test: &str, redis_url: String, targets: &[&str], extra: &str) -> Fleet {
        let sim = Simulator::start().await.unwrap();
        let prefix = unique_prefix(test);
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let cleanup = Cleanup {
            dir: dir.clone(),
            redis_url: redis_url.clone(),
            prefix: prefix.clone(),
        };
        let targets: Vec<String> = targets
            .iter()
            .map(|m| format!("{{ provider = \"sim\", model = \"{m}\", max_tokens = 50 }}"))
            .collect();
        let config = format!(
            r#"[server]
listen = "127.0.0.1:0"

[providers.sim]
kind = "openai"
api_key = {{ env = "MODELGATE_FLEET_SIM_KEY" }}
base_url = "{base}"

[routes.chat]
targets = [{targets}]

[prices]
file = "prices.json"

{extra}

[state]
redis = {{ url = "{redis_url}", prefix = "{prefix}", sync_interval = "100ms" }}
"#,
            base = sim.base_url(Wire::OpenAi),
            targets = targets.join(", "),
        );
        std::fs::write(dir.join("prices.json"), PRICES).unwrap();
        let file = dir.join("fleet.toml");
        std::fs::write(&file, config).unwrap();

        let mut servers = Vec::new();
        let mut first_lines = Vec::new();
        for _ in 0..3 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_modelgate"))
                .args(["serve", "--config"])
                .arg(&file)
                .env("RUST_LOG", "info")
                .env("MODELGATE_FLEET_SIM_KEY", "sk-fleet-simulated")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the modelgate binary starts");
            let stdout = child.stdout.take().expect("piped stdout");
            let stderr = child.stderr.take().expect("piped stderr");
            let log = Arc::new(Mutex::new(String::new()));
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
            // The first stdout line names the address; read it with a deadline.
            first_lines.push(serve_support::first_line(stdout));
            servers.push(Server {
                child,
                url: String::new(),
                log,
            });
        }
        for (server, rx) in servers.iter_mut().zip(first_lines) {
            let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
            match line.trim().strip_prefix("modelgate listening on ") {
                Some(url) => server.url = url.to_owned(),
                None => panic!(
                    "a server's first stdout line is {line:?}, not `modelgate listening on http://…`; its log:\n{}",
                    server.log()
                ),
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Fleet {
            servers,
            sim,
            http,
            redis_url,
            prefix,
            _cleanup: cleanup,
        }
    }

    /// One non-streaming request to the route `chat` through server `i`.
    async fn ask(&self, i: usize) -> Answer {
        let resp = self
            .http
            .post(format!("{}/v1/chat/completions", self.servers[i].url))
            .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("server {i} did not answer: {e}\n{}", self.logs()));
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = resp.status().as_u16();
        let model = header("x-modelgate-model");
        let attempts = header("x-modelgate-attempts").and_then(|a| a.parse().ok());
        let cost_usd = header("x-modelgate-cost-usd");
        let body = resp.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            model,
            attempts,
            cost_usd,
            body,
        }
    }

    /// How many requests the simulator received for `model`.
    fn requests_for(&self, model: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.model.as_deref() == Some(model))
            .count()
    }

    /// Asks server `i` until an answer comes from `m2` in one attempt (it skips `m1`), within
    /// 5 s; panics with what it got otherwise.
    async fn until_it_skips_m1(&self, i: usize, why: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen: Vec<(String, usize)> = Vec::new();
        loop {
            let a = self.ask(i).await;
            if a.status == 200 && a.model.as_deref() == Some("m2") && a.attempts == Some(1) {
                return;
            }
            let what = format!(
                "{} from {} in {} attempts",
                a.status,
                a.model.as_deref().unwrap_or("?"),
                a.attempts.map_or("?".into(), |n| n.to_string())
            );
            match seen.iter_mut().find(|(w, _)| *w == what) {
                Some((_, n)) => *n += 1,
                None => seen.push((what, 1)),
            }
            assert!(
                Instant::now() < deadline,
                "server {i} still calls m1 5 s after {why} (answers, with how many times: {seen:?}); \
                 the servers' last log lines:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// After every server skips `m1`: `n` more requests to each, all served by `m2` at once,
    /// and none reaches `m1`.
    async fn assert_nobody_calls_m1(&self, n: usize) {
        let m1_before = self.requests_for("m1");
        for i in 0..self.servers.len() {
            for _ in 0..n {
                let a = self.ask(i).await;
                assert_eq!(
                    (a.status, a.model.as_deref(), a.attempts),
                    (200, Some("m2"), Some(1)),
                    "server {i}: {a:?}"
                );
            }
        }
        assert_eq!(
            self.requests_for("m1"),
            m1_before,
            "a server called m1 after the fleet learnt to skip it"
        );
    }

    /// A store on the fleet's Redis and prefix, to read its counters.
    async fn store(&self) -> Arc<RedisStore> {
        RedisStore::connect(RedisOptions::new(self.redis_url.clone()).prefix(self.prefix.clone()))
            .await
            .unwrap()
    }

    fn logs(&self) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let log = s.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("--- server {i} ---\n{tail}\n")
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_keep_one_budget_exactly() {
    let Some(url) = redis_url() else {
        return;
    };
    // Each answer costs 30 output tokens at $20 per million ($0.0006) and reserves its worst,
    // 50 tokens ($0.001): $0.02 pays for 20 to 33 of them, however they interleave.
    let limit_usd = 0.02;
    let fleet = Fleet::start(
        "budget",
        url,
        &["m1"],
        &format!("[[budgets]]\nname = \"fleet\"\nusd = {limit_usd}\n"),
    )
    .await;
    fleet
        .sim
        .set_default(Scenario::text("ok").with_usage(7, 30));

    let answers = futures::future::join_all((0..60).map(|n| fleet.ask(n % 3))).await;
    let mut spent_by_headers = 0u64;
    let (mut served, mut refused) = (0, 0);
    for a in &answers {
        match (a.status, a.code()) {
            (200, _) => {
                let cost = a
                    .cost_usd
                    .as_deref()
                    .unwrap_or_else(|| panic!("no x-modelgate-cost-usd: {a:?}"));
                spent_by_headers += usd_to_nanos(cost.parse::<f64>().unwrap());
                served += 1;
            }
            (429, Some("budget_exceeded")) => refused += 1,
            _ => panic!(
                "neither served nor refused by the budget: {a:?}\n{}",
                fleet.logs()
            ),
        }
    }
    println!("served {served}, refused {refused} by the budget");
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );

    // Settlement runs after the answer is sent: wait (briefly) until nothing is reserved.
    let store = fleet.store().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let counters = loop {
        let c = store.counters("fleet", 0).await.unwrap();
        if c.reserved == 0 || Instant::now() >= deadline {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        counters.reserved, 0,
        "reservations left in Redis after every request finished: {counters:?}"
    );
    assert_eq!(
        counters.spent, spent_by_headers,
        "Redis counts {} nanos, the {served} answers' x-modelgate-cost-usd add up to {spent_by_headers}",
        counters.spent
    );
    assert!(
        counters.spent <= usd_to_nanos(limit_usd),
        "the fleet overshot its budget: {counters:?}"
    );
    assert_eq!(
        fleet.requests_for("m1"),
        served,
        "only admitted requests went upstream"
    );

    // Each process says where its state is, and never a password.
    for (i, s) in fleet.servers.iter().enumerate() {
        let log = s.log();
        assert!(
            log.contains("state store: Redis") && log.contains(&fleet.prefix),
            "server {i} did not log its state store:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_seen_by_one_process_rests_the_target_for_all() {
    let Some(url) = redis_url() else {
        return;
    };
    let fleet = Fleet::start(
        "rest",
        url,
        &["m1", "m2"],
        "[router]\nretry = { max_retries = 0 }\n",
    )
    .await;
    fleet.sim.set_default(Scenario::text("ok").with_usage(7, 3));
    fleet
        .sim
        .enqueue_for_model("m1", Scenario::rate_limited(Duration::from_secs(60)));

    let a = fleet.ask(0).await;
    assert_eq!(
        (a.status, a.model.as_deref(), a.attempts),
        (200, Some("m2"), Some(2)),
        "server 0 should fall back from the 429'd m1: {a:?}"
    );
    assert_eq!(fleet.requests_for("m1"), 1);

    fleet
        .until_it_skips_m1(1, "server 0 saw m1 rate limited")
        .await;
    fleet
        .until_it_skips_m1(2, "server 0 saw m1 rate limited")
        .await;
    fleet.assert_nobody_calls_m1(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_opened_by_one_process_is_open_for_all() {
    let Some(url) = redis_url() else {
        return;
    };
    let fleet = Fleet::start(
        "circuit",
        url,
        &["m1", "m2"],
        "[router]\nretry = { max_retries = 0 }\n\
         circuit_breaker = { failure_rate = 0.5, min_requests = 2, window = \"30s\", cool_down = \"60s\" }\n",
    )
    .await;
    fleet.sim.set_default(Scenario::text("ok").with_usage(7, 3));
    // Exactly the failures that open server 0's circuit (min_requests): afterwards m1 answers
    // again, so servers 1 and 2 can only skip it by hearing of the circuit from the fleet.
    for _ in 0..2 {
        fleet.sim.enqueue_for_model(
            "m1",
            Scenario::error(
                500,
                r#"{"error":{"message":"boom","type":"server_error","code":null}}"#,
            ),
        );
    }
    for n in 0..2 {
        let a = fleet.ask(0).await;
        assert_eq!(
            (a.status, a.model.as_deref(), a.attempts),
            (200, Some("m2"), Some(2)),
            "server 0, request {n}: m1 fails and m2 serves: {a:?}"
        );
    }
    let a = fleet.ask(0).await;
    assert_eq!(
        (a.status, a.model.as_deref(), a.attempts),
        (200, Some("m2"), Some(1)),
        "server 0's circuit on m1 should be open after 2 failures of 2: {a:?}\n{}",
        fleet.logs()
    );
    assert_eq!(fleet.requests_for("m1"), 2);

    fleet
        .until_it_skips_m1(1, "server 0 opened m1's circuit")
        .await;
    fleet
        .until_it_skips_m1(2, "server 0 opened m1's circuit")
        .await;
    fleet.assert_nobody_calls_m1(5).await;
}

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_prefix(test));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_prints_the_state_store_without_its_credentials() {
    // No Redis needed: `check` only reads the config.
    let dir = TempDir::new("check");
    let file = dir.0.join("fleet.toml");
    std::fs::write(
        &file,
        r#"[providers.openai]
kind = "openai"
api_key = { env = "OPENAI_API_KEY" }

[routes.chat]
targets = [{ provider = "openai", model = "gpt-4o-mini" }]

[state]
redis = { url = "redis://gw:hunter2@redis.internal:6380/3", prefix = "eu-fleet", on_error = "fail-closed" }
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "state: redis redis://redis.internal:6380/3, prefix eu-fleet, fail-closed, timeout 250ms"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stdout}{stderr}"
    );
}

#[test]
fn chat_connects_the_store_and_its_spend_reaches_redis() {
    let Some(url) = redis_url() else {
        return;
    };
    let dir = TempDir::new("chat");
    let prefix = unique_prefix("chat");
    let _keys = Cleanup {
        dir: dir.0.join("unused"),
        redis_url: url.clone(),
        prefix: prefix.clone(),
    };
    let file = dir.0.join("fleet.toml");
    std::fs::write(
        &file,
        format!(
            r#"[providers.openai]
kind = "openai"
api_key = {{ env = "MODELGATE_FLEET_UNSET_KEY" }}

[routes.chat]
targets = [{{ provider = "openai", model = "gpt-4o-mini" }}]

[[budgets]]
name = "cli"
usd = 1.0

[state]
redis = {{ url = "{url}", prefix = "{prefix}" }}
"#
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["chat", "--simulator", "-m", "chat", "--config"])
        .arg(&file)
        .arg("hello fleet")
        .env_remove("MODELGATE_FLEET_UNSET_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "You said: hello fleet");
    assert!(
        stderr.contains("state store: Redis") && stderr.contains(&prefix),
        "chat did not log its state store:\n{stderr}"
    );

    // The answer's cost was settled into the shared counter before the command exited.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counters = rt.block_on(async {
        let store = RedisStore::connect(RedisOptions::new(url).prefix(prefix))
            .await
            .unwrap();
        store.counters("cli", 0).await.unwrap()
    });
    assert!(
        counters.spent > 0 && counters.reserved == 0,
        "after `modelgate chat` the shared budget reads {counters:?}"
    );
}
