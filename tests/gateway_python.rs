//! The end-to-end test of the gateway with the official `openai` Python package: runs the
//! `modelgate` binary (`serve --config tests/e2e/gateway.toml --simulator`) and drives it with
//! `tests/e2e/gateway_e2e.py`.
//!
//! The interpreter is `$MODELGATE_PYTHON`, else `.venv-e2e/bin/python` when it exists, else
//! `python3`; it must import `openai` (`python3 -m venv .venv-e2e && .venv-e2e/bin/pip install
//! openai`). Without one the test prints a skip notice and passes, unless
//! `MODELGATE_E2E_REQUIRED=1` (CI sets it), where it fails.
#![cfg(feature = "server")]

#[path = "support/serve.rs"]
mod serve_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const KEY: &str = "sk-e2e-gateway-key";
const POOR_KEY: &str = "sk-e2e-poor-gateway-key";

/// The server process; killed (and reaped) when dropped, whatever the test's outcome.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The interpreter to use, or why there is none.
fn python(root: &Path) -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("MODELGATE_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let venv = root.join(".venv-e2e/bin/python");
            if venv.exists() {
                venv
            } else {
                PathBuf::from("python3")
            }
        }
    };
    match Command::new(&candidate)
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => Ok(candidate),
        Ok(out) => Err(format!(
            "`{} -c 'import openai'` failed: {}",
            candidate.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `{}`: {e}", candidate.display())),
    }
}

#[test]
fn openai_python_client_against_the_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = match python(root) {
        Ok(p) => p,
        Err(why) => {
            let setup = "python3 -m venv .venv-e2e && .venv-e2e/bin/pip install openai";
            assert!(
                std::env::var("MODELGATE_E2E_REQUIRED").as_deref() != Ok("1"),
                "MODELGATE_E2E_REQUIRED=1 but no Python with `openai`: {why} (set MODELGATE_PYTHON, or run `{setup}`)"
            );
            eprintln!(
                "SKIPPED gateway_python: no Python with `openai` ({why}); run `{setup}` or set MODELGATE_PYTHON"
            );
            return;
        }
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_modelgate"))
        .args(["serve", "--config", "tests/e2e/gateway.toml", "--simulator"])
        .current_dir(root)
        .env("MODELGATE_E2E_KEY", KEY)
        .env("MODELGATE_E2E_POOR_KEY", POOR_KEY)
        .env("MODELGATE_E2E_DEAD_KEY", "sk-e2e-dead-provider")
        // The simulated providers' variables stay unset, so `--simulator` takes them over.
        .env_remove("MODELGATE_E2E_UNSET_OPENAI_KEY")
        .env_remove("MODELGATE_E2E_UNSET_ANTHROPIC_KEY")
        .env_remove("MODELGATE_E2E_UNSET_GEMINI_KEY")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the modelgate binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let server = Server(child);

    // The server's log, collected on a thread and shown when something fails.
    let (log_tx, log_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        let _ = log_tx.send(log);
    });
    let server_log = |server: Server| {
        drop(server);
        log_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default()
    };

    // The first stdout line names the address; wait for it with a deadline.
    let line_rx = serve_support::first_line(stdout);
    let first = line_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    let Some(url) = first
        .trim()
        .strip_prefix("modelgate listening on ")
        .map(str::to_owned)
    else {
        panic!(
            "the server's first stdout line is {first:?}, not `modelgate listening on http://…`; its log:\n{}",
            server_log(server)
        );
    };

    let output = Command::new(&python)
        .arg(root.join("tests/e2e/gateway_e2e.py"))
        .arg(&url)
        .current_dir(root)
        .env("MODELGATE_E2E_KEY", KEY)
        .env("MODELGATE_E2E_POOR_KEY", POOR_KEY)
        // The gateway is on loopback: never through a proxy from the environment.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .output()
        .expect("the Python script runs");
    let script_out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{script_out}");
    if !output.status.success() {
        panic!(
            "tests/e2e/gateway_e2e.py failed ({}):\n{script_out}\nthe server's log:\n{}",
            output.status,
            server_log(server)
        );
    }
    let log = server_log(server);
    // The keys never reach a log line.
    for key in [KEY, POOR_KEY] {
        assert!(
            !log.contains(key),
            "a gateway key in the server's log:\n{log}"
        );
    }
}
