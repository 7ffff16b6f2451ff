//! What a provider says about its remaining quota on a successful answer.

use std::time::Duration;

/// The quota a provider announced on a successful answer, read from its response headers:
/// OpenAI, DeepSeek, Groq and other OpenAI-compatible services send `x-ratelimit-remaining-*`
/// and `x-ratelimit-reset-*` (Go durations such as `6m0s`), Anthropic sends
/// `anthropic-ratelimit-*-remaining` and `anthropic-ratelimit-*-reset` (RFC 3339 times).
///
/// Found on [`ChatResponse::rate_limit`](crate::ChatResponse::rate_limit) and
/// [`ChatStream::rate_limit`](crate::ChatStream::rate_limit); `None` there when the answer
/// carried no such header (Gemini sends none). Each field is `None` when its header was absent
/// or malformed.
///
/// Resets are durations from when the answer arrived: an absolute reset time is converted with
/// the answer's `date` header (or the system clock without one), clamped to zero when it is
/// already past, and capped at 24 hours. For Anthropic, `remaining_tokens` is its `tokens`
/// window (the most restrictive one in force), or the smaller of the input and output token
/// windows when only those are sent.
///
/// ```
/// use std::time::Duration;
/// use modelgate::RateLimitStatus;
///
/// let status = RateLimitStatus::new()
///     .with_remaining_requests(10)
///     .with_remaining_tokens(500)
///     .with_tokens_reset(Duration::from_secs(6));
/// assert!(status.is_nearly_exhausted(2_000)); // a 2,000-token prompt would not fit
/// assert!(!status.is_nearly_exhausted(100));
/// assert_eq!(status.reset(), Some(Duration::from_secs(6)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// Requests left in the current window.
    pub remaining_requests: Option<u64>,
    /// Tokens left in the current window.
    pub remaining_tokens: Option<u64>,
    /// How long until the request window is full again.
    pub requests_reset: Option<Duration>,
    /// How long until the token window is full again.
    pub tokens_reset: Option<Duration>,
}

impl RateLimitStatus {
    /// A status that knows nothing yet; set what is known with the `with_*` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the requests left.
    #[must_use]
    pub fn with_remaining_requests(mut self, n: u64) -> Self {
        self.remaining_requests = Some(n);
        self
    }

    /// Sets the tokens left.
    #[must_use]
    pub fn with_remaining_tokens(mut self, n: u64) -> Self {
        self.remaining_tokens = Some(n);
        self
    }

    /// Sets when the request window resets.
    #[must_use]
    pub fn with_requests_reset(mut self, after: Duration) -> Self {
        self.requests_reset = Some(after);
        self
    }

    /// Sets when the token window resets.
    #[must_use]
    pub fn with_tokens_reset(mut self, after: Duration) -> Self {
        self.tokens_reset = Some(after);
        self
    }

    /// Whether a request of `needed_tokens` (prompt and answer) would likely be refused: no
    /// request is left, or fewer tokens than needed. Unknown quantities never count as
    /// exhausted.
    pub fn is_nearly_exhausted(&self, needed_tokens: u64) -> bool {
        self.requests_exhausted() || self.remaining_tokens.is_some_and(|t| t < needed_tokens)
    }

    /// When the quota that holds requests back is restored: the later reset of the windows
    /// with nothing left (no request left, or no token), or, when neither is at zero but
    /// tokens are short (see [`RateLimitStatus::is_nearly_exhausted`]), the token window's.
    /// `None` when that reset is unknown.
    pub fn reset(&self) -> Option<Duration> {
        let requests = self.requests_reset.filter(|_| self.requests_exhausted());
        let tokens = self
            .tokens_reset
            .filter(|_| self.remaining_tokens == Some(0));
        match (requests, tokens) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (None, None) => self.tokens_reset.or(self.requests_reset),
            (a, b) => a.or(b),
        }
    }

    fn requests_exhausted(&self) -> bool {
        self.remaining_requests == Some(0)
    }

    /// Whether nothing is known.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn reset_is_the_exhausted_windows() {
        let both = RateLimitStatus::new()
            .with_requests_reset(S(5))
            .with_tokens_reset(S(60));
        // Requests out: their window; tokens out: theirs; both: the later one.
        assert_eq!(both.with_remaining_requests(0).reset(), Some(S(5)));
        assert_eq!(
            both.with_remaining_requests(3)
                .with_remaining_tokens(0)
                .reset(),
            Some(S(60))
        );
        let out = both.with_remaining_requests(0).with_remaining_tokens(0);
        assert_eq!(out.reset(), Some(S(60)));
        assert!(out.is_nearly_exhausted(0));
        // Nothing at zero: the token window's.
        assert_eq!(both.with_remaining_tokens(10).reset(), Some(S(60)));
        assert_eq!(RateLimitStatus::new().reset(), None);
    }

    #[test]
    fn unknown_quantities_are_not_exhausted() {
        assert!(!RateLimitStatus::new().is_nearly_exhausted(u64::MAX));
        let s = RateLimitStatus::new().with_remaining_requests(1);
        assert!(!s.is_nearly_exhausted(1_000_000));
        assert!(s.with_remaining_tokens(999).is_nearly_exhausted(1_000));
        assert!(!s.with_remaining_tokens(1_000).is_nearly_exhausted(1_000));
    }
}
