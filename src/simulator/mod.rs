//! An in-process LLM provider simulator that injects faults, for tests, benchmarks and examples.
//!
//! [`Simulator::start`] serves OpenAI, DeepSeek, Anthropic and Gemini wire formats over plain
//! HTTP/1.1 on `127.0.0.1`, each under its own path prefix ([`Simulator::base_url`]). Each
//! request is answered by the next [`Scenario`] in a queue: a text answer, tool calls, reasoning,
//! or a failure (an HTTP error, a rate limit, an overload), optionally with faults such as a slow
//! first byte, slow or stalled streams, truncation, malformed JSON or a mid-stream error. Every
//! request is recorded for assertions.
//!
//! The server runs as tasks on the tokio runtime that called [`Simulator::start`], and every
//! delay uses [`tokio::time`], so tests under a paused clock (`#[tokio::test(start_paused = true)]`)
//! see exact, instant delays.
//!
//! ```
//! use modelgate::simulator::{Scenario, Simulator, Wire};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start().await?;
//! sim.enqueue(Scenario::text("Hello!").with_usage(12, 3));
//!
//! let url = format!("{}/chat/completions", sim.base_url(Wire::OpenAi));
//! let body = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
//! let answer: serde_json::Value = reqwest::Client::new().post(url).json(&body).send().await?.json().await?;
//!
//! assert_eq!(answer["choices"][0]["message"]["content"], "Hello!");
//! assert_eq!(answer["usage"]["prompt_tokens"], 12);
//! assert_eq!(sim.requests()[0].model.as_deref(), Some("gpt-4o"));
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! | Wire | Endpoints |
//! |---|---|
//! | [`Wire::OpenAi`] | `POST /openai/v1/chat/completions` |
//! | [`Wire::DeepSeek`] | `POST /deepseek/chat/completions` (also `/deepseek/v1/…`) |
//! | [`Wire::Anthropic`] | `POST /anthropic/v1/messages` (needs `x-api-key` and `anthropic-version`) |
//! | [`Wire::Gemini`] | `POST /gemini/v1beta/models/{model}:generateContent`, `…:streamGenerateContent?alt=sse` (needs `x-goog-api-key`) |
//!
//! Requests that the real provider would refuse before reaching a model (unknown path, body
//! that is not JSON or lacks a required field, missing credential header) get that provider's
//! native 4xx error and consume no scenario. OpenAI and DeepSeek accept any or no
//! `Authorization` header, so OpenAI-compatible servers without keys can be simulated too.

mod answer;
mod anthropic;
mod body;
mod gemini;
mod openai;
mod reply;
mod request;
mod scenario;
mod server;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::AbortHandle;

pub use request::{RecordedRequest, Wire};
pub use scenario::Scenario;

use state::State;

/// A running simulator: a cheap, cloneable handle to a loopback HTTP server.
///
/// The server stops when [`Simulator::shutdown`] is called or when the last handle is dropped.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.inner.addr)
            .field("requests", &self.request_count())
            .field("connections_open", &self.connections_open())
            .finish()
    }
}

impl Simulator {
    /// Binds `127.0.0.1` on a free port and starts serving on the current tokio runtime.
    ///
    /// Until scenarios are queued, every request is answered with [`Scenario::echo`].
    ///
    /// # Errors
    ///
    /// If the listening socket cannot be bound.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime (as [`tokio::spawn`] does).
    pub async fn start() -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new());
        let accept = tokio::spawn(server::accept_loop(listener, Arc::clone(&state))).abort_handle();
        Ok(Simulator {
            inner: Arc::new(Inner {
                addr,
                state,
                accept,
            }),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL to give a client of `wire`, in the form its official SDK expects:
    /// `http://127.0.0.1:PORT/openai/v1`, `…/deepseek`, `…/anthropic` or `…/gemini`.
    pub fn base_url(&self, wire: Wire) -> String {
        format!("http://{}{}", self.inner.addr, wire.base_path())
    }

    /// Queues a scenario for the next request to any model (first in, first out).
    pub fn enqueue(&self, scenario: Scenario) {
        self.inner.state.enqueue(scenario);
    }

    /// Queues a scenario for the next request to `model` (first in, first out). A model's
    /// queue is used before the global one, so targets of one route can be scripted apart.
    pub fn enqueue_for_model(&self, model: &str, scenario: Scenario) {
        self.inner.state.enqueue_for_model(model, scenario);
    }

    /// Sets the scenario used, again and again, when the queues are empty (initially
    /// [`Scenario::echo`]).
    pub fn set_default(&self, scenario: Scenario) {
        self.inner.state.set_default(scenario);
    }

    /// Every request received so far, in arrival order, including refused ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.state.requests()
    }

    /// How many requests have been received so far.
    pub fn request_count(&self) -> usize {
        self.inner.state.request_count()
    }

    /// How many TCP connections have been accepted so far. With keep-alive, sequential requests
    /// from one client share a connection, so this stays at 1.
    pub fn connections_accepted(&self) -> usize {
        self.inner.state.connections_accepted()
    }

    /// How many TCP connections are open now. A connection counts until its peer closes it
    /// (including mid-stream or mid-delay) or the simulator shuts down.
    pub fn connections_open(&self) -> usize {
        self.inner.state.connections_open()
    }

    /// Stops accepting connections and closes the open ones (clients see the connection
    /// reset or the body end early). Dropping the last handle does the same. The port is
    /// released once the runtime has run the cancelled tasks.
    pub fn shutdown(&self) {
        self.inner.accept.abort();
    }
}
