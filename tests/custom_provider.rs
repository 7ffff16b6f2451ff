//! A provider of the user's own behind the router: it builds full errors (status, Retry-After,
//! provider) that take part in rest and classification, and it is handed the caller's request
//! with only what the target changes beside it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use modelgate::router::{RetryPolicy, Router, Target};
use modelgate::types::AttemptOutcome;
use modelgate::{
    CallOptions, ChatProvider, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Message,
};
use tokio::time::Instant;

/// What one call saw.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    request_at: usize,
    model: String,
    temperature: Option<f32>,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
}

/// Answers from a script of results, recording each call.
struct Scripted {
    name: &'static str,
    /// `true`: implement `chat_with` (borrowed request + options); `false`: only `chat`.
    reads_options: bool,
    script: Mutex<Vec<Result<(), Error>>>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    fn new(name: &'static str, reads_options: bool, script: Vec<Result<(), Error>>) -> Arc<Self> {
        Arc::new(Scripted {
            name,
            reads_options,
            script: Mutex::new(script),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn answer(&self, model: &str) -> Result<ChatResponse, Error> {
        let mut script = self.script.lock().unwrap();
        let next = if script.is_empty() {
            Ok(())
        } else {
            script.remove(0)
        };
        next.map(|()| ChatResponse::new(self.name, model, Message::assistant("ok")))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl ChatProvider for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.seen.lock().unwrap().push(Seen {
            request_at: req as *const ChatRequest as usize,
            model: req.model.clone(),
            temperature: req.temperature,
            deadline: None,
            timeout: req.timeout,
        });
        self.answer(&req.model)
    }

    async fn chat_stream(&self, _req: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::InvalidRequest, "no streams here"))
    }

    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        if !self.reads_options {
            let req = opts.apply(req);
            return self.chat(&req).await;
        }
        let model = opts.model.unwrap_or(&req.model);
        self.seen.lock().unwrap().push(Seen {
            request_at: req as *const ChatRequest as usize,
            model: model.to_owned(),
            temperature: opts.temperature.or(req.temperature),
            deadline: opts.deadline,
            timeout: req.timeout,
        });
        self.answer(model)
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_providers_rate_limit_rests_its_target() {
    let limited = Error::http(429, "slow down")
        .with_provider("mine")
        .with_retry_after(Some(Duration::from_secs(2)))
        .with_request_id(Some("req_7".into()));
    assert_eq!(limited.kind(), ErrorKind::RateLimited);
    assert_eq!(limited.status(), Some(429));
    let mine = Scripted::new("mine", true, vec![Err(limited)]);
    let backup = Scripted::new("backup", true, vec![]);
    let router = Router::builder()
        .route(
            "chat",
            [
                Target::new(mine.clone(), "m1"),
                Target::new(backup.clone(), "b1"),
            ],
        )
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let req = ChatRequest::new("chat").user("hi");

    let first = router.chat(&req).await.unwrap();
    assert_eq!(first.provider, "backup");
    // The second request skips the resting target without calling it.
    let second = router.chat(&req).await.unwrap();
    assert_eq!(second.provider, "backup");
    let route = second.route.unwrap();
    assert_eq!(
        route.attempts[0].outcome,
        AttemptOutcome::Skipped(ErrorKind::RateLimited)
    );
    assert_eq!(mine.seen().len(), 1);
    // Once the Retry-After has passed, it serves again.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(router.chat(&req).await.unwrap().provider, "mine");
}

#[tokio::test(start_paused = true)]
async fn a_custom_error_keeps_every_field() {
    let err = Error::new(ErrorKind::Overloaded, "busy")
        .with_status(503)
        .with_provider("mine")
        .with_code(Some("overloaded".into()))
        .with_body(Some("{\"error\":\"busy\"}".into()))
        .with_should_retry(Some(false))
        .with_source(std::io::Error::other("socket"));
    assert_eq!(err.provider(), Some("mine"));
    assert_eq!(err.code(), Some("overloaded"));
    assert_eq!(err.body(), Some("{\"error\":\"busy\"}"));
    assert!(!err.is_retryable(), "x-should-retry: false wins");
    assert!(err.is_provider_health_failure());
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test(start_paused = true)]
async fn attempts_borrow_the_callers_request() {
    let mine = Scripted::new(
        "mine",
        true,
        vec![Err(Error::http(503, "busy").with_provider("mine"))],
    );
    let router = Router::builder()
        .route("chat", [Target::new(mine.clone(), "m1").temperature(0.3)])
        .retry(RetryPolicy::default().with_max_retries(1))
        .seed(1)
        .build()
        .unwrap();
    let req = ChatRequest::new("chat")
        .user("hi")
        .timeout(Duration::from_secs(10));
    let start = Instant::now();
    let answer = router.chat(&req).await.unwrap();
    assert_eq!(answer.model, "m1");
    let seen = mine.seen();
    assert_eq!(seen.len(), 2, "one failure, one retry");
    for s in &seen {
        // The very request the caller passed: no copy per attempt.
        assert_eq!(s.request_at, &req as *const ChatRequest as usize);
        assert_eq!(s.model, "m1");
        assert_eq!(s.temperature, Some(0.3));
        assert_eq!(s.deadline, Some(start + Duration::from_secs(10)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_provider_with_only_chat_gets_the_targets_request() {
    let plain = Scripted::new("plain", false, vec![]);
    let router = Router::builder()
        .route("chat", [Target::new(plain.clone(), "p1").temperature(0.5)])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    router
        .chat(&ChatRequest::new("chat").user("hi"))
        .await
        .unwrap();
    let seen = plain.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model, "p1");
    assert_eq!(seen[0].temperature, Some(0.5));
    // What is left of the router's deadline.
    assert_eq!(seen[0].timeout, Some(Duration::from_secs(30)));
}

#[tokio::test(start_paused = true)]
async fn a_nested_router_gets_the_outer_deadline_and_route() {
    let leaf = Scripted::new("leaf", true, vec![]);
    let inner = Router::builder()
        .name("inner")
        .route("fast", [Target::new(leaf.clone(), "l1")])
        .build()
        .unwrap();
    let outer = Router::builder()
        .name("outer")
        .route("chat", [Target::new(Arc::new(inner), "fast")])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    let req = ChatRequest::new("chat").user("hi");
    let answer = outer.chat(&req).await.unwrap();
    assert_eq!(answer.provider, "leaf");
    let seen = leaf.seen();
    assert_eq!(seen[0].request_at, &req as *const ChatRequest as usize);
    assert_eq!(seen[0].model, "l1");
    assert_eq!(seen[0].deadline, Some(start + Duration::from_secs(5)));
}
