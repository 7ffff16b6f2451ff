//! Google Gemini through the Gemini API (`generateContent`, `streamGenerateContent?alt=sse`).
//!
//! API reference: <https://ai.google.dev/api/generate-content>.
//! Function calling: <https://ai.google.dev/gemini-api/docs/function-calling>.
//! Thinking: <https://ai.google.dev/gemini-api/docs/thinking>; thought signatures:
//! <https://ai.google.dev/gemini-api/docs/thought-signatures>.
//! Structured output: <https://ai.google.dev/gemini-api/docs/structured-output>.
//! Errors: <https://ai.google.dev/gemini-api/docs/troubleshooting>; rate limits:
//! <https://ai.google.dev/gemini-api/docs/rate-limits>.
//! Pricing: <https://ai.google.dev/gemini-api/docs/pricing>.
//!
//! How requests and answers are mapped is documented on [`Gemini`].

mod fetch;
mod request;
mod response;
mod schema;
mod stream;

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::error::Error;
use crate::provider::{CallOptions, ChatProvider};
use crate::providers::common::{Auth, Settings, common_builder_methods};
use crate::providers::http::HttpProvider;
use crate::transport::{Call, Dialect, ErrorDetail, StreamDecoder, WireRequest};
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// The Gemini API's base URL (without the API version, which the paths carry).
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The provider name on responses and errors.
const PROVIDER: &str = "gemini";

/// The default cap on one fetched image: 20 MiB (Gemini's limit for a whole inline request).
const DEFAULT_MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// Google's Gemini models (`gemini-2.5-flash`, `gemini-2.5-pro`, `gemini-3-pro-preview`, …)
/// through the Gemini API, with the key in the `x-goog-api-key` header.
///
/// ```no_run
/// # async fn demo() -> Result<(), modelgate::Error> {
/// use modelgate::{ChatProvider, ChatRequest};
/// use modelgate::providers::Gemini;
/// let gemini = Gemini::from_env()?;
/// let answer = gemini
///     .chat(&ChatRequest::new("gemini-2.5-flash").system("Be brief.").user("Hi!"))
///     .await?;
/// println!("{} ({:?})", answer.text(), answer.usage);
/// # Ok(()) }
/// ```
///
/// # How requests and answers map
///
/// - **Roles.** `user` and `model` turns; system and developer messages (wherever they are)
///   become `systemInstruction`; tool results become `functionResponse` parts of a `user` turn.
///   Consecutive turns of one role are merged into one, and empty turns are left out.
/// - **Media.** Images and audio go as `inlineData` (audio as `audio/<format>`). Base64 data
///   and `data:` URLs are sent as they are; an `http(s)` image URL is fetched first with the
///   provider's client, without the API key, within the request's deadline (see
///   [`GeminiBuilder::max_image_bytes`] and [`GeminiBuilder::fetch_image_urls`]).
/// - **Tools.** `functionDeclarations` with the JSON Schema cleaned to the OpenAPI subset
///   Gemini accepts: `$schema`, `$id`, `additionalProperties`, `default`, `examples`, `strict`
///   and other unknown keywords are dropped; local `$ref`s are inlined (a recursive one becomes
///   `{"type": "object"}`), `allOf` is merged, `oneOf` becomes `anyOf`, `null` types become
///   `nullable`, a string `const` becomes an `enum`, non-string enums and unsupported `format`s
///   are dropped. A function without parameters has no `parameters`. The same cleaning applies
///   to a [`ResponseFormat::JsonSchema`](crate::ResponseFormat::JsonSchema), sent as
///   `responseSchema` with `responseMimeType: application/json` (`JsonObject` sets the MIME
///   type only). [`ToolChoice`](crate::ToolChoice) becomes
///   `functionCallingConfig.mode` `AUTO`/`NONE`/`ANY` (`allowedFunctionNames` for one
///   function). `parallel_tool_calls` has no Gemini equivalent and is ignored.
/// - **Function calls.** Gemini's calls usually have no id: each gets `call_<n>_<random>`, or the
///   server's `functionCall.id` when it sends one. Ids are not sent back (Gemini pairs calls and
///   responses by name and order); a tool result finds its function name through the id of
///   the earlier assistant call it answers (or the tool message's `name`). The response is the
///   tool's JSON object, or `{"result": …}` (`{"error": …}` for a failed tool) around anything
///   else.
/// - **Thinking.** `Reasoning::Budget(n)` is `thinkingConfig{thinkingBudget: n,
///   includeThoughts: true}` (0 turns thinking off). `Reasoning::Effort` is `thinkingLevel`
///   `low`/`high` on Gemini 3 and later and a budget of 1024/24576 tokens before; `Medium`
///   keeps the model's default. Thought parts come back as reasoning. A `thoughtSignature`
///   on a `functionCall` part is kept on that [`ToolCall`](crate::ToolCall)'s `signature` (in
///   streams, a [`Delta::ToolCallSignature`](crate::Delta::ToolCallSignature)); one on a text
///   part is [`Message::reasoning_signature`](crate::Message::reasoning_signature) (the first
///   such signature of the answer). Both are sent back on the same kind of part; thought text
///   is not sent back.
/// - **Usage.** `input_tokens` is `promptTokenCount + toolUsePromptTokenCount`,
///   `output_tokens` is `candidatesTokenCount + thoughtsTokenCount` (Gemini counts thoughts
///   apart but bills them as output), `reasoning_tokens` is `thoughtsTokenCount`,
///   `cached_input_tokens` is `cachedContentTokenCount`. Streams pass on the totals whenever
///   they change.
/// - **Finish.** `STOP` is `Stop` (`ToolCalls` when the turn called functions), `MAX_TOKENS` is
///   `Length`, the safety reasons are `ContentFilter`, others `Other(name)`. A prompt blocked
///   outright (`promptFeedback.blockReason`) is an `ErrorKind::ContentFilter` error.
/// - **Sampling.** `temperature`, `topP`, `maxOutputTokens`, `stopSequences` and `seed` go in
///   `generationConfig` (Gemini's seed is an int32: larger seeds are reduced modulo 2³¹).
///   [`ChatRequest::extra`](crate::ChatRequest::extra) fields are merged into the top level of
///   the body and win over the library's (`safetySettings`, `cachedContent`, …).
/// - **Errors.** The body's `status`, `details` (`ErrorInfo` reason, `RetryInfo` delay,
///   `QuotaFailure`) and message decide the kind; a per-minute rate limit is `RateLimited` and
///   only a hard quota (per day, zero, out of credit) is `QuotaExceeded`.
#[derive(Debug)]
pub struct Gemini {
    http: HttpProvider,
    fetch_images: bool,
    max_image_bytes: usize,
}

/// Builds a [`Gemini`] provider. Setters never fail; [`GeminiBuilder::build`] checks.
#[must_use]
#[derive(Debug, Default)]
pub struct GeminiBuilder {
    settings: Settings,
    fetch_images: Option<bool>,
    max_image_bytes: Option<usize>,
}

impl Gemini {
    /// A builder with no key and the official base URL.
    pub fn builder() -> GeminiBuilder {
        GeminiBuilder::default()
    }

    /// A provider configured from `GEMINI_API_KEY` and, when set, `GEMINI_BASE_URL`.
    ///
    /// # Errors
    /// `ErrorKind::Config` when `GEMINI_API_KEY` is not set or a value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        GeminiBuilder {
            settings: Settings::from_env("GEMINI_API_KEY", "GEMINI_BASE_URL", true)?,
            ..GeminiBuilder::default()
        }
        .build()
    }

    /// The request to send: `req` itself, or a copy whose `http(s)` image URLs are replaced by
    /// the images' bytes. Fetching counts against the request's overall deadline; the copy
    /// carries what is left of it.
    async fn prepare<'r>(&self, req: &'r ChatRequest) -> Result<Cow<'r, ChatRequest>, Error> {
        if !self.fetch_images || !fetch::has_remote_images(req) {
            return Ok(Cow::Borrowed(req));
        }
        let total = req.timeout.or(self.http.endpoint.timeouts.total);
        let started = Instant::now();
        let fetch = fetch::inline_remote_images(
            &self.http.endpoint.client,
            req,
            self.max_image_bytes,
            self.http.endpoint.timeouts.first_byte,
        );
        let mut prepared = match total {
            Some(limit) => tokio::time::timeout(limit, fetch)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::timeout(format!(
                        "the images were not fetched within {limit:?}"
                    )))
                }),
            None => fetch.await,
        }
        .map_err(|e| e.with_provider(PROVIDER))?;
        if let Some(limit) = total {
            let left = limit.saturating_sub(started.elapsed());
            prepared.timeout = Some(left.max(Duration::from_millis(1)));
        }
        Ok(Cow::Owned(prepared))
    }
}

impl GeminiBuilder {
    common_builder_methods!();

    /// Caps the size of an image fetched from an `http(s)` URL (default 20 MiB). A larger image
    /// fails the request with `ErrorKind::InvalidRequest`. Checked by `build()` (must not be 0).
    pub fn max_image_bytes(mut self, max: usize) -> Self {
        self.max_image_bytes = Some(max);
        self
    }

    /// Whether `http(s)` image URLs are fetched and sent inline (the default), or refused with
    /// `ErrorKind::InvalidRequest`. A gateway that serves untrusted callers may turn fetching
    /// off so that it never requests URLs on their behalf.
    pub fn fetch_image_urls(mut self, fetch: bool) -> Self {
        self.fetch_images = Some(fetch);
        self
    }

    /// Builds the provider. A base URL ending in `/v1beta` is accepted and the suffix dropped.
    ///
    /// # Errors
    /// `ErrorKind::Config` when no API key was given, the base URL is not an http(s) URL, a
    /// header is invalid, a timeout is zero or `max_image_bytes` is zero.
    pub fn build(mut self) -> Result<Gemini, Error> {
        let max_image_bytes = self.max_image_bytes.unwrap_or(DEFAULT_MAX_IMAGE_BYTES);
        if max_image_bytes == 0 {
            return Err(Error::config(
                "gemini: max_image_bytes must be greater than zero",
            ));
        }
        if let Some(base) = &mut self.settings.base_url {
            let trimmed = base.trim().trim_end_matches('/');
            if let Some(stripped) = trimmed.strip_suffix("/v1beta") {
                *base = stripped.to_owned();
            }
        }
        let endpoint = self.settings.endpoint(
            PROVIDER,
            GEMINI_BASE_URL,
            Auth::Header("x-goog-api-key"),
            true,
            HeaderMap::new(),
        )?;
        Ok(Gemini {
            http: HttpProvider::new(endpoint, GeminiDialect),
            fetch_images: self.fetch_images.unwrap_or(true),
            max_image_bytes,
        })
    }
}

#[async_trait]
impl ChatProvider for Gemini {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.chat_with(req, &CallOptions::default()).await
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, Error> {
        self.chat_stream_with(req, &CallOptions::default()).await
    }

    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        let req = self.prepare(req).await?;
        self.http.chat(&req, opts).await
    }

    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        let req = self.prepare(req).await?;
        self.http.chat_stream(&req, opts).await
    }
}

/// The Gemini wire format: pure translation.
#[derive(Debug, Clone, Copy)]
struct GeminiDialect;

impl Dialect for GeminiDialect {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn encode(&self, call: &Call<'_>, stream: bool) -> Result<WireRequest, Error> {
        request::encode_call(call, stream)
    }

    fn decode(&self, body: &[u8]) -> Result<ChatResponse, Error> {
        response::decode(body)
    }

    fn stream_decoder(&self, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::<stream::GeminiStream>::default()
    }

    fn error_detail(&self, status: u16, body: &[u8]) -> ErrorDetail {
        response::error_detail(status, body)
    }
}
