//! The gateway (feature `server`): a [`Router`](crate::router::Router) served over HTTP in
//! OpenAI's format ([`Gateway`]), and OpenAI's wire format on the server side.
//!
//! [`openai`] translates a client's chat-completions request into a [`ChatRequest`] for the
//! router, and the router's answers, stream deltas and errors back into OpenAI's format, so that
//! any OpenAI client sees OpenAI's shapes whatever provider answered.
//!
//! [`ChatRequest`]: crate::ChatRequest

mod app;
pub mod openai;

pub use app::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENT, Gateway, GatewayKey, KEEP_ALIVE, KEY_TAG,
    prometheus_builder, serve,
};
