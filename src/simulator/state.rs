//! What the server shares between connections: the scripted scenarios, the recorded requests
//! and the connection counters. Locks here are never held across an await.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::request::RecordedRequest;
use super::scenario::Scenario;

#[derive(Debug)]
pub(super) struct State {
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    serial: AtomicU64,
}

/// Which scenario answers the next request.
#[derive(Debug)]
struct Script {
    per_model: HashMap<String, VecDeque<Scenario>>,
    global: VecDeque<Scenario>,
    default: Scenario,
}

/// A poisoned lock only means a test thread panicked while holding it; the data is still
/// consistent (every critical section is a single push or pop), so keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(super) fn new() -> Self {
        State {
            script: Mutex::new(Script {
                per_model: HashMap::new(),
                global: VecDeque::new(),
                default: Scenario::echo(),
            }),
            requests: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
        }
    }

    pub(super) fn enqueue(&self, scenario: Scenario) {
        lock(&self.script).global.push_back(scenario);
    }

    pub(super) fn enqueue_for_model(&self, model: &str, scenario: Scenario) {
        lock(&self.script)
            .per_model
            .entry(model.to_owned())
            .or_default()
            .push_back(scenario);
    }

    pub(super) fn set_default(&self, scenario: Scenario) {
        lock(&self.script).default = scenario;
    }

    /// Takes the scenario for a request to `model`: its own queue first, then the global
    /// queue, then (without consuming it) the default.
    pub(super) fn next_scenario(&self, model: &str) -> Scenario {
        let mut script = lock(&self.script);
        if let Some(scenario) = script
            .per_model
            .get_mut(model)
            .and_then(VecDeque::pop_front)
        {
            return scenario;
        }
        match script.global.pop_front() {
            Some(scenario) => scenario,
            None => script.default.clone(),
        }
    }

    pub(super) fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    pub(super) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(super) fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    /// A fresh number for ids (response ids, request ids).
    pub(super) fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn connections_accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub(super) fn connections_open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Counts one accepted connection as open for as long as it lives. Held by the connection
/// task, so the count drops however the task ends: peer gone, protocol error or abort.
#[derive(Debug)]
pub(super) struct OpenConnection(Arc<State>);

impl OpenConnection {
    pub(super) fn new(state: Arc<State>) -> Self {
        state.accepted.fetch_add(1, Ordering::SeqCst);
        state.open.fetch_add(1, Ordering::SeqCst);
        OpenConnection(state)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(s: &Scenario) -> String {
        format!("{:?}", s.answer.text)
    }

    #[test]
    fn per_model_queue_first_then_global_then_default() {
        let state = State::new();
        state.enqueue(Scenario::text("global"));
        state.enqueue_for_model("m", Scenario::text("m1"));
        state.set_default(Scenario::text("default"));
        assert!(text_of(&state.next_scenario("m")).contains("m1"));
        assert!(text_of(&state.next_scenario("m")).contains("global"));
        assert!(text_of(&state.next_scenario("m")).contains("default"));
        assert!(text_of(&state.next_scenario("other")).contains("default"));
    }

    #[test]
    fn open_count_follows_guards() {
        let state = Arc::new(State::new());
        let a = OpenConnection::new(Arc::clone(&state));
        let b = OpenConnection::new(Arc::clone(&state));
        assert_eq!(
            (state.connections_accepted(), state.connections_open()),
            (2, 2)
        );
        drop(a);
        drop(b);
        assert_eq!(
            (state.connections_accepted(), state.connections_open()),
            (2, 0)
        );
    }
}
