//! The one trait every provider, and the router, implements.

use async_trait::async_trait;

use crate::error::Error;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// A chat model service: one provider, or a [`Router`](crate::router::Router) over many.
///
/// The trait is object-safe: code that takes `Arc<dyn ChatProvider>` works unchanged with one
/// provider or a whole fleet.
#[async_trait]
pub trait ChatProvider: Send + Sync {
    /// A short name for logs and responses (`"openai"`, `"anthropic"`, a router's name).
    fn name(&self) -> &str;

    /// Sends the request and waits for the whole answer.
    ///
    /// # Errors
    /// An [`Error`] whose [`kind`](Error::kind) says what failed: the provider's status mapped to
    /// a kind, a timeout, a connection failure, or an answer that could not be decoded.
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error>;

    /// Sends the request and returns the answer as a stream of deltas once the provider has
    /// accepted it (status 200).
    ///
    /// # Errors
    /// As for [`chat`](ChatProvider::chat), for failures before the stream starts; later failures
    /// are `Err` items of the stream.
    async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn trait_is_object_safe() {
        fn takes(_: Option<Arc<dyn ChatProvider>>) {}
        takes(None);
    }
}
