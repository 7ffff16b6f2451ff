//! The HTTP side: accepting connections, serving each with hyper, and turning one request into
//! one response (record → pick a scenario → render → apply faults).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::answer::Answer;
use super::body::{self, Body};
use super::reply::{Problem, Reply, ReplyBody};
use super::request::{self, Call, Wire};
use super::scenario::{Faults, Outcome, Scenario};
use super::state::{OpenConnection, State};
use super::{anthropic, gemini, openai};

/// Accepts connections until this task is aborted.
///
/// The connection tasks live in a `JoinSet` owned by this task, so aborting it (shutdown, or
/// the last `Simulator` handle dropped) drops the set, which aborts every connection too.
pub(super) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow with every one ever served.
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // Small SSE events must leave at once, not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let open = OpenConnection::new(Arc::clone(&state));
                connections.spawn(serve(stream, Arc::clone(&state), open));
            }
            // Accept errors are transient (e.g. out of file descriptors); back off rather than
            // spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves HTTP/1.1 (keep-alive) on one connection until the peer closes it.
async fn serve(stream: TcpStream, state: Arc<State>, _open: OpenConnection) {
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(respond(&state, request).await) }
    });
    // hyper watches for EOF even while a response body is pending (half-close is off), so a
    // client that goes away mid-stream or mid-stall ends this future, which drops the body.
    // The error it returns then, or on a malformed request, only means the connection is over.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(state: &State, request: Request<Incoming>) -> Response<Body> {
    let serial = state.next_serial();
    let (head, body) = request.into_parts();
    // A body that fails to arrive means the connection broke; answer as if it were empty.
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers = head
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let (recorded, call) = request::read(head.method.as_str(), path, headers, &bytes, serial);
    let wire = recorded.wire;
    state.record(recorded);

    // Refused requests consume no scenario, so a test's script stays aligned with the calls
    // that really reached the "model".
    let (reply, scenario) = match call {
        Ok(call) => {
            let scenario = state.next_scenario(&call.model);
            (render(&scenario, &call), Some(scenario))
        }
        Err(problem) => (render_problem(wire, &problem, serial), None),
    };
    let (faults, extra_headers) = scenario.map(|s| (s.faults, s.headers)).unwrap_or_default();
    if !faults.first_byte_delay.is_zero() {
        tokio::time::sleep(faults.first_byte_delay).await;
    }
    into_response(reply, &extra_headers, &faults)
}

fn render(scenario: &Scenario, call: &Call) -> Reply {
    match &scenario.outcome {
        Outcome::Answer => {
            let answer = Answer::resolve(&scenario.answer, call);
            let reply = match call.wire {
                Wire::OpenAi | Wire::DeepSeek => openai::answer(call, &answer),
                Wire::Anthropic => anthropic::answer(call, &answer),
                Wire::Gemini => gemini::answer(call, &answer),
            };
            match &scenario.rate_limit {
                Some(spec) => match call.wire {
                    Wire::OpenAi | Wire::DeepSeek => openai::rate_limit_headers(reply, spec),
                    Wire::Anthropic => anthropic::rate_limit_headers(reply, spec),
                    Wire::Gemini => reply,
                },
                None => reply,
            }
        }
        Outcome::Error { status, body } => Reply {
            status: *status,
            headers: Vec::new(),
            body: ReplyBody::Whole {
                content_type: "application/json",
                bytes: body.clone().into_bytes(),
            },
        },
        Outcome::RateLimited(delay) => {
            render_problem(call.wire, &Problem::RateLimited(*delay), call.serial)
        }
        Outcome::Overloaded => render_problem(call.wire, &Problem::Overloaded, call.serial),
    }
}

fn render_problem(wire: Wire, problem: &Problem, serial: u64) -> Reply {
    match wire {
        Wire::OpenAi | Wire::DeepSeek => openai::problem(problem, serial),
        Wire::Anthropic => anthropic::problem(problem, serial),
        Wire::Gemini => gemini::problem(problem),
    }
}

fn into_response(
    reply: Reply,
    extra_headers: &[(HeaderName, HeaderValue)],
    faults: &Faults,
) -> Response<Body> {
    let (content_type, steps, length) = match reply.body {
        ReplyBody::Whole {
            content_type,
            bytes,
        } => {
            let length = bytes.len();
            (content_type, body::whole_steps(bytes, faults), Some(length))
        }
        ReplyBody::Stream(stream) => (
            stream.content_type,
            body::stream_steps(stream, faults),
            None,
        ),
    };
    let mut response = Response::new(body::body(steps));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    match length {
        // Explicit, so a body written in pieces is still length-delimited like a real one.
        Some(length) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        None => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
    }
    for (name, value) in reply.headers {
        // Renderers only produce valid values; skipping is the safe answer to a bug there.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    for (name, value) in extra_headers {
        headers.append(name.clone(), value.clone());
    }
    response
}
