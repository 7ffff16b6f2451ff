//! Token counts.

/// Token counts of one request, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache (a subset of `input_tokens`).
    pub cached_input_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic `cache_creation_input_tokens`),
    /// a subset of `input_tokens`.
    pub cache_creation_input_tokens: u64,
    /// The part of `cache_creation_input_tokens` written with a 1-hour TTL (Anthropic
    /// `cache_creation.ephemeral_1h_input_tokens`), priced at the 1-hour write rate; the rest
    /// was written with the default 5-minute TTL.
    pub cache_creation_1h_input_tokens: u64,
    /// Completion tokens spent on reasoning (a subset of `output_tokens`).
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Counts of `input_tokens` prompt and `output_tokens` completion tokens, with no cached,
    /// cache-write or reasoning tokens (add those with the `with_*` setters).
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// Sets the prompt tokens served from the provider's cache (a subset of `input_tokens`).
    #[must_use]
    pub fn with_cached_input_tokens(mut self, tokens: u64) -> Self {
        self.cached_input_tokens = tokens;
        self
    }

    /// Sets the prompt tokens written to the provider's cache.
    #[must_use]
    pub fn with_cache_creation_input_tokens(mut self, tokens: u64) -> Self {
        self.cache_creation_input_tokens = tokens;
        self
    }

    /// Sets the part of the cache-written prompt tokens written with a 1-hour TTL (a subset of
    /// `cache_creation_input_tokens`).
    #[must_use]
    pub fn with_cache_creation_1h_input_tokens(mut self, tokens: u64) -> Self {
        self.cache_creation_1h_input_tokens = tokens;
        self
    }

    /// Sets the completion tokens spent on reasoning (a subset of `output_tokens`).
    #[must_use]
    pub fn with_reasoning_tokens(mut self, tokens: u64) -> Self {
        self.reasoning_tokens = tokens;
        self
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}
