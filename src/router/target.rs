//! A route's target: a provider and a model, with per-target options.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::pricing::ModelPrice;
use crate::provider::CallOptions;
use crate::provider::ChatProvider;
use crate::types::MediaCache;

/// One place a route can send a request: a provider and the model to ask it for.
///
/// ```
/// # use std::sync::Arc;
/// # use modelgate::ChatProvider;
/// use modelgate::router::Target;
/// # fn demo(openai: Arc<dyn ChatProvider>) {
/// let target = Target::new(openai, "gpt-4o-mini")
///     .context_window(128_000)
///     .timeout(std::time::Duration::from_secs(30))
///     .max_tokens(1_000);
/// # }
/// ```
#[derive(Clone)]
pub struct Target {
    pub(crate) provider: Arc<dyn ChatProvider>,
    pub(crate) model: String,
    pub(crate) context_window: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) first_delta_timeout: Option<Duration>,
    pub(crate) temperature: Option<f32>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) extra: Vec<(String, Value)>,
    pub(crate) weight: u32,
    pub(crate) price: Option<Arc<ModelPrice>>,
}

impl Target {
    /// A target asking `provider` for `model`.
    pub fn new(provider: Arc<dyn ChatProvider>, model: impl Into<String>) -> Self {
        Target {
            provider,
            model: model.into(),
            context_window: None,
            timeout: None,
            first_delta_timeout: None,
            temperature: None,
            max_tokens: None,
            extra: Vec::new(),
            weight: 1,
            price: None,
        }
    }

    /// The model's context window in tokens. A request that fails with `ErrorKind::ContextLength`
    /// moves on to a later target of the route with a larger window.
    pub fn context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// The longest one attempt on this target may take (the request's deadline still applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The longest a stream from this target may take to send its first delta (replaces the
    /// router's default).
    pub fn first_delta_timeout(mut self, timeout: Duration) -> Self {
        self.first_delta_timeout = Some(timeout);
        self
    }

    /// Overrides the request's temperature on this target.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Overrides the request's `max_tokens` on this target.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds a provider-specific field to requests sent to this target.
    pub fn extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.push((key.into(), value));
        self
    }

    /// The target's share of requests under [`Strategy::weighted`](crate::router::Strategy::weighted)
    /// (default 1; 0 keeps it for fallback only).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The price of this target's calls, instead of the router's price table entry for its
    /// provider and model (a model of your own, or a nested router as a target).
    pub fn price(mut self, price: ModelPrice) -> Self {
        self.price = Some(Arc::new(price));
        self
    }

    /// The provider's name.
    pub fn provider_name(&self) -> &str {
        self.provider.name()
    }

    /// The model asked for.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// What this target changes of a request: its model and its overrides, and the deadline.
    pub(crate) fn call_options<'a>(
        &'a self,
        deadline: Option<tokio::time::Instant>,
        media: Option<&'a MediaCache>,
    ) -> CallOptions<'a> {
        CallOptions {
            model: Some(&self.model),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            extra: &self.extra,
            deadline,
            media,
            prices: None,
        }
    }

    /// Whether two targets are the same provider object and model (they then share health state).
    pub(crate) fn same_as(&self, other: &Target) -> bool {
        Arc::ptr_eq(&self.provider, &other.provider) && self.model == other.model
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("context_window", &self.context_window)
            .field("timeout", &self.timeout)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
