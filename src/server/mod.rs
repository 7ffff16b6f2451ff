//! The gateway's building blocks (feature `server`): OpenAI's wire format on the server side.
//!
//! [`openai`] translates a client's chat-completions request into a [`ChatRequest`] for the
//! router, and the router's answers, stream deltas and errors back into OpenAI's format, so that
//! any OpenAI client sees OpenAI's shapes whatever provider answered.
//!
//! [`ChatRequest`]: crate::ChatRequest

pub mod openai;
