//! The one trait every provider, and the router, implements, and the per-call options a caller
//! (usually the router) passes alongside a borrowed request.

use std::borrow::Cow;

use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::Error;
use crate::pricing::PriceTable;
use crate::types::{ChatRequest, ChatResponse, ChatStream, MediaCache};

/// A chat model service: one provider, or a [`Router`](crate::router::Router) over many.
///
/// The trait is object-safe: code that takes `Arc<dyn ChatProvider>` works unchanged with one
/// provider or a whole fleet. A provider of your own implements [`name`](ChatProvider::name),
/// [`chat`](ChatProvider::chat) and [`chat_stream`](ChatProvider::chat_stream); the two `*_with`
/// methods have defaults that apply the [`CallOptions`] to a copy of the request and call those.
#[async_trait]
pub trait ChatProvider: Send + Sync {
    /// A short name for logs and responses (`"openai"`, `"anthropic"`, a router's name).
    fn name(&self) -> &str;

    /// The kind of service behind the name: the built-in provider's name (`"openai"`) when
    /// this one was renamed (a gateway's `eu-openai`), so that prices are found by name first,
    /// then by kind. The default is [`name`](ChatProvider::name).
    fn kind(&self) -> &str {
        self.name()
    }

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

    /// As [`chat`](ChatProvider::chat), with what this one call changes (model, sampling
    /// overrides, extra fields, deadline) passed beside the borrowed request, so that a router's
    /// attempt copies nothing it does not change.
    ///
    /// The built-in providers and the router read the options directly. The default applies
    /// them to a copy of the request ([`CallOptions::apply`]; no copy when they change nothing)
    /// and calls [`chat`](ChatProvider::chat).
    ///
    /// # Errors
    /// As for [`chat`](ChatProvider::chat).
    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        let req = opts.apply(req);
        self.chat(&req).await
    }

    /// As [`chat_stream`](ChatProvider::chat_stream), with per-call options (see
    /// [`chat_with`](ChatProvider::chat_with)).
    ///
    /// # Errors
    /// As for [`chat_stream`](ChatProvider::chat_stream).
    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        let req = opts.apply(req);
        self.chat_stream(&req).await
    }
}

/// What one call changes of a borrowed [`ChatRequest`]: the model to ask for, sampling
/// overrides, extra provider fields and a deadline.
///
/// Every field left at its default changes nothing. Extra fields of the options are merged
/// after the request's own, so they win.
///
/// ```
/// use modelgate::CallOptions;
/// use serde_json::json;
/// let extra = [("safety_identifier".to_owned(), json!("user-42"))];
/// let opts = CallOptions::new().model("gpt-4o-mini").max_tokens(200).extra(&extra);
/// assert_eq!(opts.model, Some("gpt-4o-mini"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CallOptions<'a> {
    /// The model to ask for instead of the request's `model`.
    pub model: Option<&'a str>,
    /// Replaces the request's temperature.
    pub temperature: Option<f32>,
    /// Replaces the request's `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Provider-specific fields merged into the wire body after the request's own `extra`.
    pub extra: &'a [(String, Value)],
    /// The instant by which the whole call (a stream's body included) must end. The earlier of
    /// this and the request's own [`timeout`](ChatRequest::timeout) applies.
    pub deadline: Option<Instant>,
    /// Images fetched from URLs for this request, shared by all its attempts (the router passes
    /// one per request), so that a retry or hedge does not fetch them again.
    pub media: Option<&'a MediaCache>,
    /// The prices a provider computes the response's [`cost`](ChatResponse::cost) from, instead
    /// of its own (its builder's `prices`, else [`PriceTable::builtin`]). A router passes its
    /// table down so that every attempt is priced alike.
    pub prices: Option<&'a PriceTable>,
}

impl<'a> CallOptions<'a> {
    /// Options that change nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for `model` instead of the request's.
    #[must_use]
    pub fn model(mut self, model: &'a str) -> Self {
        self.model = Some(model);
        self
    }

    /// Replaces the request's temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Replaces the request's `max_tokens`.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds provider-specific fields (they win over the request's `extra`).
    #[must_use]
    pub fn extra(mut self, extra: &'a [(String, Value)]) -> Self {
        self.extra = extra;
        self
    }

    /// Sets the instant by which the whole call must end.
    #[must_use]
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Shares fetched images across the attempts of one request.
    #[must_use]
    pub fn media(mut self, media: &'a MediaCache) -> Self {
        self.media = Some(media);
        self
    }

    /// Prices the response from `prices` instead of the provider's own table.
    #[must_use]
    pub fn prices(mut self, prices: &'a PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Whether the options change nothing of the request (a media cache or a price table
    /// changes nothing of it).
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.temperature.is_none()
            && self.max_tokens.is_none()
            && self.extra.is_empty()
            && self.deadline.is_none()
    }

    /// The request as these options change it: `req` itself when they change nothing, else a
    /// copy with the model, overrides and extra fields applied and `timeout` set to what is
    /// left until the deadline (at least 1 ms, so a passed deadline still fails as a timeout).
    pub fn apply<'r>(&self, req: &'r ChatRequest) -> Cow<'r, ChatRequest> {
        if self.is_empty() {
            return Cow::Borrowed(req);
        }
        let mut out = match self.model {
            Some(model) => req.with_model(model),
            None => req.clone(),
        };
        if let Some(t) = self.temperature {
            out.temperature = Some(t);
        }
        if let Some(m) = self.max_tokens {
            out.max_tokens = Some(m);
        }
        for (k, v) in self.extra {
            out.extra.insert(k.clone(), v.clone());
        }
        if let Some(left) = self.timeout_from(Instant::now()) {
            out.timeout = Some(match req.timeout {
                Some(own) => own.min(left),
                None => left,
            });
        }
        Cow::Owned(out)
    }

    /// What is left until the deadline at `now` (at least 1 ms), when there is one.
    pub(crate) fn timeout_from(&self, now: Instant) -> Option<std::time::Duration> {
        self.deadline.map(|d| {
            d.saturating_duration_since(now)
                .max(std::time::Duration::from_millis(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn trait_is_object_safe() {
        fn takes(_: Option<Arc<dyn ChatProvider>>) {}
        takes(None);
    }

    #[test]
    fn empty_options_borrow_the_request() {
        let req = ChatRequest::new("m").user("hi");
        assert!(matches!(CallOptions::new().apply(&req), Cow::Borrowed(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn options_apply_to_a_copy() {
        let req = ChatRequest::new("alias")
            .user("hi")
            .temperature(0.1)
            .timeout(Duration::from_secs(60));
        let extra = [("k".to_owned(), Value::from(1))];
        let opts = CallOptions::new()
            .model("real")
            .temperature(0.7)
            .max_tokens(9)
            .extra(&extra)
            .deadline(Instant::now() + Duration::from_secs(5));
        let out = opts.apply(&req);
        assert_eq!(out.model, "real");
        assert_eq!(out.temperature, Some(0.7));
        assert_eq!(out.max_tokens, Some(9));
        assert_eq!(out.extra.get("k"), Some(&Value::from(1)));
        assert_eq!(out.timeout, Some(Duration::from_secs(5)));
        assert_eq!(out.messages, req.messages);
    }
}
