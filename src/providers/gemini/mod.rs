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

mod request;
mod response;
mod schema;
mod stream;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;

use crate::error::Error;
use crate::provider::{CallOptions, ChatProvider};
use crate::providers::common::{Auth, Settings, common_builder_methods};
use crate::transport::images::{self, ImageFetcher, ImageOptions};
use crate::transport::{Call, Dialect, Endpoint, ErrorDetail, StreamDecoder, WireRequest};
use crate::types::media::InlineImages;
use crate::types::{ChatRequest, ChatResponse, ChatStream, MediaCache};

/// The Gemini API's base URL (without the API version, which the paths carry).
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The provider name on responses and errors.
const PROVIDER: &str = "gemini";

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
///   and `data:` URLs are sent as they are. Gemini cannot read an `http(s)` image URL itself:
///   by default such a URL fails the request with `ErrorKind::InvalidRequest` (fetching URLs
///   for a caller is server-side request forgery in a gateway). With
///   [`GeminiBuilder::fetch_image_urls`] the provider fetches each image first, without the API
///   key, from public addresses only (see [`GeminiBuilder::allow_private_image_hosts`]), within
///   caps on count and size ([`GeminiBuilder::max_image_urls`],
///   [`GeminiBuilder::max_image_bytes`], [`GeminiBuilder::max_total_image_bytes`]) and time
///   ([`GeminiBuilder::image_fetch_timeout`]), and sends the bytes inline. A failed fetch is
///   `InvalidRequest` too: it is not retried and does not count against Gemini's health.
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
    endpoint: Endpoint,
    images: ImageFetcher,
}

/// Builds a [`Gemini`] provider. Setters never fail; [`GeminiBuilder::build`] checks.
#[must_use]
#[derive(Debug)]
pub struct GeminiBuilder {
    settings: Settings,
    images: ImageOptions,
}

impl Default for GeminiBuilder {
    fn default() -> Self {
        GeminiBuilder {
            settings: Settings::default(),
            images: ImageOptions::new(PROVIDER, "GeminiBuilder"),
        }
    }
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

    /// The dialect for one call of `req`: its `http(s)` image URLs fetched (through `cache`
    /// when given, so that all attempts of one request share one fetch of each image).
    ///
    /// # Errors
    /// `ErrorKind::InvalidRequest` when an image URL is refused or cannot be fetched.
    async fn dialect(
        &self,
        req: &ChatRequest,
        cache: Option<&MediaCache>,
    ) -> Result<GeminiDialect, Error> {
        let images = images::resolve_images(&self.images, req, cache)
            .await
            .map_err(|e| e.with_provider(PROVIDER))?;
        Ok(GeminiDialect { images })
    }
}

impl GeminiBuilder {
    common_builder_methods!();

    /// Whether `http(s)` image URLs are fetched and sent inline (default `false`: such a URL
    /// fails the request with `ErrorKind::InvalidRequest`, whose message says to send the bytes
    /// or a `data:` URL instead). Fetching is done with a dedicated HTTP client (not the one
    /// given to `http_client`), without the API key, proxies or `Referer`, following at most 5
    /// redirects, from public addresses only unless [`GeminiBuilder::allow_private_image_hosts`]
    /// says otherwise. Turn it on only when the callers may make the server fetch URLs.
    pub fn fetch_image_urls(mut self, fetch: bool) -> Self {
        self.images.enabled = fetch;
        self
    }

    /// Whether image URLs may point at non-public addresses (default `false`): private
    /// (`10/8`, `172.16/12`, `192.168/16`, `fc00::/7`), loopback, link-local (`169.254/16`,
    /// `fe80::/10`), shared/CGNAT (`100.64/10`), unspecified, multicast, documentation and
    /// other reserved addresses, also inside IPv6 (`::ffff:10.0.0.1`). The check applies to
    /// the addresses a host name resolves to, to IP literals and to every redirect; a refused
    /// image fails the request with `ErrorKind::InvalidRequest` before any connection to it.
    /// Allow them only when every caller is trusted (tests, an internal deployment).
    pub fn allow_private_image_hosts(mut self, allow: bool) -> Self {
        self.images.allow_private = allow;
        self
    }

    /// Caps how many distinct image URLs one request may have (default 16). A request with
    /// more fails with `ErrorKind::InvalidRequest` before anything is fetched. Checked by
    /// `build()` (must not be 0).
    pub fn max_image_urls(mut self, max: usize) -> Self {
        self.images.max_urls = max;
        self
    }

    /// Caps the size of one image fetched from an `http(s)` URL (default 20 MiB). A larger
    /// image fails the request with `ErrorKind::InvalidRequest`; reading stops as soon as the
    /// cap is passed. Checked by `build()` (must not be 0).
    pub fn max_image_bytes(mut self, max: usize) -> Self {
        self.images.max_image_bytes = max;
        self
    }

    /// Caps the size of all the images fetched for one request together (default 20 MiB,
    /// Gemini's limit for a whole request with inline data). More fails the request with
    /// `ErrorKind::InvalidRequest`; reading stops as soon as the cap is passed. Checked by
    /// `build()` (must not be 0).
    pub fn max_total_image_bytes(mut self, max: usize) -> Self {
        self.images.max_total_bytes = max;
        self
    }

    /// Limits the time one image fetch may take, body included (default 30 s; a request's own
    /// [`ChatRequest::timeout`](crate::ChatRequest::timeout) shortens it). A slower image fails
    /// the request with `ErrorKind::InvalidRequest`. Checked by `build()` (must not be 0).
    pub fn image_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.images.timeout = timeout;
        self
    }

    /// Builds the provider. A base URL ending in `/v1beta` is accepted and the suffix dropped.
    ///
    /// # Errors
    /// `ErrorKind::Config` when no API key was given, the base URL is not an http(s) URL, a
    /// header is invalid, a timeout (`image_fetch_timeout` included) is zero, an image cap is
    /// zero, or the image-fetching client cannot be built.
    pub fn build(mut self) -> Result<Gemini, Error> {
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
        let images = ImageFetcher::new(ImageOptions {
            connect_timeout: endpoint.timeouts.connect,
            ..self.images
        })?;
        Ok(Gemini { endpoint, images })
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

    /// Fetches the request's image URLs (once per request when the options carry the router's
    /// [`MediaCache`]), then sends the call.
    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        let dialect = self.dialect(req, opts.media).await?;
        self.endpoint.chat(&dialect, &Call::new(req, opts)).await
    }

    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        let dialect = self.dialect(req, opts.media).await?;
        self.endpoint
            .chat_stream(&dialect, &Call::new(req, opts))
            .await
    }
}

/// The Gemini wire format: pure translation, for one call (it holds that call's fetched
/// images).
#[derive(Debug, Default)]
struct GeminiDialect {
    images: InlineImages,
}

impl Dialect for GeminiDialect {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn encode(&self, call: &Call<'_>, stream: bool) -> Result<WireRequest, Error> {
        request::encode_call(call, stream, &self.images)
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
