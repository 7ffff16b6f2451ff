//! Streaming answers: [`Delta`] items, the [`ChatStream`] that yields them, and the fold of a stream
//! into a [`ChatResponse`].

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use std::sync::Arc;

use crate::pricing::ModelPrice;

use crate::error::Error;
use crate::types::message::{ContentPart, Message, ReasoningBlock, Role};
use crate::types::rate_limit::RateLimitStatus;
use crate::types::response::{ChatResponse, FinishReason};
use crate::types::route::RouteInfo;
use crate::types::tool::ToolCall;
use crate::types::usage::Usage;

/// One increment of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delta {
    /// A piece of the answer's text.
    Text(String),
    /// A piece of the model's reasoning.
    Reasoning(String),
    /// The whole opaque signature of the reasoning block just streamed (Anthropic's
    /// `signature_delta`, Gemini's `thoughtSignature`), to send back. A turn may reason in
    /// several blocks, each followed by its signature: reasoning after a signature starts a
    /// new block (see [`Message::reasoning_blocks`](crate::Message::reasoning_blocks)).
    ReasoningSignature(String),
    /// A fragment of a tool call. The first fragment of each `index` carries `id` and `name`;
    /// later ones append to `arguments`. Providers that send whole calls send one fragment.
    ToolCall {
        /// Which call of the turn this fragment belongs to.
        index: usize,
        /// The call's id (first fragment only).
        id: Option<String>,
        /// The function's name (first fragment only).
        name: Option<String>,
        /// A piece of the JSON arguments.
        arguments: String,
    },
    /// The opaque signature of the tool call `index` (Gemini's `thoughtSignature` on a
    /// `functionCall` part), to send back with the call: it becomes [`ToolCall::signature`].
    ToolCallSignature {
        /// Which call of the turn the signature belongs to.
        index: usize,
        /// The signature, whole.
        signature: String,
    },
    /// Token counts so far. Each `Usage` delta replaces the previous one (totals, not increments).
    Usage(Usage),
    /// Why the model stopped.
    Finish(FinishReason),
}

/// What a stream learns about itself as it goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamMeta {
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    /// The cost the provider reported (OpenRouter's `usage.cost`), for the folded response.
    pub(crate) cost: Option<f64>,
}

/// A source of deltas that may also fill in the stream's id and model as it learns them.
pub(crate) trait DeltaSource: Send {
    fn poll_delta(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        meta: &mut StreamMeta,
    ) -> Poll<Option<Result<Delta, Error>>>;
}

/// How a stream ended, as an end hook sees it.
#[derive(Debug)]
pub(crate) enum StreamEnd<'a> {
    /// The provider's terminal marker arrived.
    Complete,
    /// The stream yielded this error and stopped.
    Failed(&'a Error),
    /// The reader dropped the stream before its end.
    Dropped,
}

/// What a stream had delivered when it ended, as an end hook sees it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamSummary {
    /// The last usage it reported.
    pub(crate) usage: Option<Usage>,
    /// Its cost: reported by the provider, else its usage at the stream's price.
    pub(crate) cost: Option<f64>,
    /// Bytes of text, reasoning and tool-call arguments it yielded (to estimate what a stream
    /// dropped before its usage arrived has used).
    pub(crate) output_bytes: u64,
}

/// Called once when a stream ends, however it ends, with what it had delivered: where a router
/// records a stream's health and latency, and a budget settles its cost.
pub(crate) type EndHook = Box<dyn FnOnce(StreamEnd<'_>, &StreamSummary) + Send>;

/// Adapts any stream of deltas (a user's own provider, a test) to a [`DeltaSource`].
struct PlainSource<S>(S);

impl<S> DeltaSource for PlainSource<S>
where
    S: Stream<Item = Result<Delta, Error>> + Send + Unpin,
{
    fn poll_delta(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _meta: &mut StreamMeta,
    ) -> Poll<Option<Result<Delta, Error>>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}

/// A streamed answer: a `Stream` of `Result<Delta, Error>`.
///
/// It ends after the provider's terminal marker, or after the first `Err` item. A stream that stops
/// without its terminal marker yields an `ErrorKind::StreamTruncated` error, never a clean end.
/// Dropping it aborts the HTTP request.
pub struct ChatStream {
    provider: String,
    requested_model: String,
    meta: StreamMeta,
    route: Option<RouteInfo>,
    rate_limit: Option<RateLimitStatus>,
    queued: VecDeque<Delta>,
    source: Option<Pin<Box<dyn DeltaSource>>>,
    last_usage: Option<Usage>,
    output_bytes: u64,
    price: Option<Arc<ModelPrice>>,
    end_hooks: Vec<EndHook>,
}

impl ChatStream {
    /// A stream over any source of deltas, for implementing [`ChatProvider`](crate::ChatProvider)
    /// yourself. The source must end only after the answer is complete; an incomplete answer must
    /// end with an `Err` item.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        deltas: impl Stream<Item = Result<Delta, Error>> + Send + 'static,
    ) -> Self {
        Self::from_source(
            provider.into(),
            model.into(),
            Box::pin(PlainSource(Box::pin(deltas))),
        )
    }

    pub(crate) fn from_source(
        provider: String,
        model: String,
        source: Pin<Box<dyn DeltaSource>>,
    ) -> Self {
        ChatStream {
            provider,
            requested_model: model,
            meta: StreamMeta::default(),
            route: None,
            rate_limit: None,
            queued: VecDeque::new(),
            source: Some(source),
            last_usage: None,
            output_bytes: 0,
            price: None,
            end_hooks: Vec::new(),
        }
    }

    /// Sets the price the stream's cost is computed from (the provider resolves it when it
    /// opens the stream).
    pub(crate) fn set_price(&mut self, price: Option<Arc<ModelPrice>>) {
        self.price = price;
    }

    /// Gives the stream a price when its provider found none (a router's target priced by hand,
    /// or a provider of the user's own).
    pub(crate) fn set_price_if_none(&mut self, price: &Arc<ModelPrice>) {
        if self.price.is_none() {
            self.price = Some(Arc::clone(price));
        }
    }

    /// The cost in US dollars so far: the cost the provider reported (OpenRouter's
    /// `usage.cost`), else, once the stream has reported its usage, that usage priced at the
    /// model's price. `None` before any usage, and for a model with no known price.
    pub fn cost(&self) -> Option<f64> {
        self.meta
            .cost
            .or_else(|| self.cost_of(self.last_usage.as_ref()))
    }

    fn cost_of(&self, usage: Option<&Usage>) -> Option<f64> {
        Some(self.price.as_ref()?.cost(usage?))
    }

    /// Adds a hook called once when the stream ends (completes, fails or is dropped).
    pub(crate) fn on_end(&mut self, hook: EndHook) {
        self.end_hooks.push(hook);
    }

    fn fire_end_hooks(&mut self, end: StreamEnd<'_>) {
        let summary = StreamSummary {
            usage: self.last_usage,
            cost: self.cost(),
            output_bytes: self.output_bytes,
        };
        for hook in self.end_hooks.drain(..) {
            hook(
                match &end {
                    StreamEnd::Complete => StreamEnd::Complete,
                    StreamEnd::Failed(e) => StreamEnd::Failed(e),
                    StreamEnd::Dropped => StreamEnd::Dropped,
                },
                &summary,
            );
        }
    }

    /// The provider streaming the answer.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model streaming the answer: the name the provider reported once its first event has
    /// arrived, the requested name before that.
    pub fn model(&self) -> &str {
        self.meta.model.as_deref().unwrap_or(&self.requested_model)
    }

    /// The provider's id for the answer, once its first event has arrived.
    pub fn id(&self) -> Option<&str> {
        self.meta.id.as_deref()
    }

    /// How a router served the stream; `None` when a provider was called directly.
    pub fn route(&self) -> Option<&RouteInfo> {
        self.route.as_ref()
    }

    /// Names the stream's provider (a renamed provider's stream).
    pub(crate) fn set_provider(&mut self, provider: String) {
        self.provider = provider;
    }

    pub(crate) fn set_route(&mut self, route: RouteInfo) {
        self.route = Some(route);
    }

    /// The quota the provider announced in the headers that opened the stream
    /// (`x-ratelimit-*`, `anthropic-ratelimit-*`); `None` when it sent none. Known as soon as
    /// the stream is returned, before its first delta.
    pub fn rate_limit(&self) -> Option<&RateLimitStatus> {
        self.rate_limit.as_ref()
    }

    pub(crate) fn set_rate_limit(&mut self, status: Option<RateLimitStatus>) {
        self.rate_limit = status;
    }

    /// Puts a delta back at the front, to be yielded next (a router's pre-flight does this with
    /// the first delta it held back).
    pub(crate) fn push_front(&mut self, delta: Delta) {
        self.queued.push_front(delta);
    }

    /// Reads the whole stream and folds it into one response.
    ///
    /// # Errors
    /// The first `Err` item of the stream, such as `ErrorKind::StreamTruncated`.
    pub async fn into_response(mut self) -> Result<ChatResponse, Error> {
        use futures::StreamExt;
        let mut fold = ResponseFold::default();
        while let Some(item) = self.next().await {
            fold.push(item?);
        }
        let mut response = fold.finish(
            self.meta.id.take().unwrap_or_default(),
            self.provider.clone(),
            self.model().to_owned(),
            self.route.take(),
        );
        response.cost = self
            .meta
            .cost
            .or_else(|| self.cost_of(response.usage.as_ref()));
        response.rate_limit = self.rate_limit;
        Ok(response)
    }
}

impl Stream for ChatStream {
    type Item = Result<Delta, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(delta) = this.queued.pop_front() {
            return Poll::Ready(Some(Ok(delta)));
        }
        let Some(source) = this.source.as_mut() else {
            return Poll::Ready(None);
        };
        match source.as_mut().poll_delta(cx, &mut this.meta) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(delta))) => {
                match &delta {
                    Delta::Text(t) | Delta::Reasoning(t) => this.output_bytes += t.len() as u64,
                    Delta::ToolCall { arguments, .. } => {
                        this.output_bytes += arguments.len() as u64;
                    }
                    Delta::Usage(u) => this.last_usage = Some(*u),
                    _ => {}
                }
                Poll::Ready(Some(Ok(delta)))
            }
            Poll::Ready(Some(Err(err))) => {
                // An error ends the stream; dropping the source closes the connection now.
                this.source = None;
                this.fire_end_hooks(StreamEnd::Failed(&err));
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.source = None;
                this.fire_end_hooks(StreamEnd::Complete);
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        if !self.end_hooks.is_empty() {
            self.fire_end_hooks(StreamEnd::Dropped);
        }
    }
}

impl futures::stream::FusedStream for ChatStream {
    fn is_terminated(&self) -> bool {
        self.source.is_none() && self.queued.is_empty()
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("provider", &self.provider)
            .field("model", &self.model())
            .field("id", &self.meta.id)
            .field("finished", &self.source.is_none())
            .finish()
    }
}

/// Folds deltas into a response.
#[derive(Debug, Default)]
pub(crate) struct ResponseFold {
    text: String,
    reasoning: String,
    reasoning_signature: Option<String>,
    reasoning_blocks: Vec<ReasoningBlock>,
    tool_calls: Vec<(usize, ToolCall)>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl ResponseFold {
    pub(crate) fn push(&mut self, delta: Delta) {
        match delta {
            Delta::Text(t) => self.text.push_str(&t),
            Delta::Reasoning(t) => {
                self.reasoning.push_str(&t);
                match self.reasoning_blocks.last_mut() {
                    Some(block) if block.signature.is_none() => block.text.push_str(&t),
                    // The first reasoning, or reasoning after a signed block: a new block.
                    _ => self.reasoning_blocks.push(ReasoningBlock::new(t, None)),
                }
            }
            Delta::ReasoningSignature(s) => {
                match self.reasoning_blocks.last_mut() {
                    Some(block) if block.signature.is_none() => block.signature = Some(s.clone()),
                    // A signature with no reasoning of its own (an empty block).
                    _ => self
                        .reasoning_blocks
                        .push(ReasoningBlock::new("", Some(s.clone()))),
                }
                match &mut self.reasoning_signature {
                    Some(sig) => sig.push_str(&s),
                    None => self.reasoning_signature = Some(s),
                }
            }
            Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let call = self.call_mut(index);
                if let Some(id) = id {
                    call.id = id;
                }
                if let Some(name) = name {
                    call.name.push_str(&name);
                }
                call.arguments.push_str(&arguments);
            }
            Delta::ToolCallSignature { index, signature } => {
                self.call_mut(index).signature = Some(signature);
            }
            Delta::Usage(u) => self.usage = Some(u),
            Delta::Finish(f) => self.finish = Some(f),
        }
    }

    /// The call of `index`, created empty on its first fragment.
    fn call_mut(&mut self, index: usize) -> &mut ToolCall {
        let pos = match self.tool_calls.iter().position(|(i, _)| *i == index) {
            Some(pos) => pos,
            None => {
                self.tool_calls.push((index, ToolCall::new("", "", "")));
                self.tool_calls.len() - 1
            }
        };
        &mut self.tool_calls[pos].1
    }

    pub(crate) fn finish(
        mut self,
        id: String,
        provider: String,
        model: String,
        route: Option<RouteInfo>,
    ) -> ChatResponse {
        self.tool_calls.sort_by_key(|(i, _)| *i);
        let mut message = Message::new(Role::Assistant);
        if !self.text.is_empty() {
            message.content.push(ContentPart::Text(self.text));
        }
        message.tool_calls = self.tool_calls.into_iter().map(|(_, c)| c).collect();
        let reasoning = (!self.reasoning.is_empty()).then_some(self.reasoning);
        message.reasoning = reasoning.clone();
        message.reasoning_signature = self.reasoning_signature;
        // Blocks matter only when signed: plain reasoning stays in `reasoning` alone.
        if self.reasoning_blocks.iter().any(|b| b.signature.is_some()) {
            message.reasoning_blocks = self.reasoning_blocks;
        }
        let finish_reason = self.finish.unwrap_or(if message.tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        ChatResponse {
            id,
            provider,
            model,
            message,
            reasoning,
            finish_reason,
            usage: self.usage,
            cost: None,
            route,
            rate_limit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[tokio::test]
    async fn fold_joins_text_and_tool_call_fragments() {
        let deltas = vec![
            Ok(Delta::Text("Hel".into())),
            Ok(Delta::ToolCall {
                index: 1,
                id: Some("b".into()),
                name: Some("two".into()),
                arguments: "{\"x\"".into(),
            }),
            Ok(Delta::Text("lo".into())),
            Ok(Delta::ToolCall {
                index: 0,
                id: Some("a".into()),
                name: Some("one".into()),
                arguments: "{}".into(),
            }),
            Ok(Delta::ToolCall {
                index: 1,
                id: None,
                name: None,
                arguments: ":1}".into(),
            }),
            Ok(Delta::ToolCallSignature {
                index: 1,
                signature: "sig".into(),
            }),
            Ok(Delta::Usage(Usage {
                input_tokens: 3,
                ..Usage::default()
            })),
            Ok(Delta::Usage(Usage {
                input_tokens: 3,
                output_tokens: 5,
                ..Usage::default()
            })),
            Ok(Delta::Finish(FinishReason::ToolCalls)),
        ];
        let s = ChatStream::new("p", "m", stream::iter(deltas));
        let r = s.into_response().await.unwrap();
        assert_eq!(r.text(), "Hello");
        assert_eq!(r.tool_calls()[0], ToolCall::new("a", "one", "{}"));
        let mut signed = ToolCall::new("b", "two", "{\"x\":1}");
        signed.signature = Some("sig".into());
        assert_eq!(r.tool_calls()[1], signed);
        assert_eq!(r.usage.unwrap().output_tokens, 5);
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.model, "m");
    }

    fn recording_stream(
        deltas: Vec<Result<Delta, Error>>,
    ) -> (ChatStream, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut s = ChatStream::new("p", "m", stream::iter(deltas));
        let log = seen.clone();
        s.on_end(Box::new(move |end, summary| {
            let usage = summary.usage;
            let end = match end {
                StreamEnd::Complete => "complete".to_owned(),
                StreamEnd::Failed(e) => format!("failed:{}", e.kind()),
                StreamEnd::Dropped => "dropped".to_owned(),
            };
            log.lock()
                .unwrap()
                .push(format!("{end} {:?}", usage.map(|u| u.output_tokens)));
        }));
        (s, seen)
    }

    #[tokio::test]
    async fn end_hooks_fire_once_however_the_stream_ends() {
        use futures::StreamExt;
        let usage = Usage {
            output_tokens: 7,
            ..Usage::default()
        };
        let (s, seen) =
            recording_stream(vec![Ok(Delta::Usage(usage)), Ok(Delta::Text("a".into()))]);
        s.into_response().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["complete Some(7)"]);

        let (s, seen) = recording_stream(vec![
            Ok(Delta::Text("a".into())),
            Err(Error::truncated("cut")),
        ]);
        assert!(s.into_response().await.is_err());
        assert_eq!(*seen.lock().unwrap(), ["failed:stream_truncated None"]);

        let (mut s, seen) = recording_stream(vec![
            Ok(Delta::Text("a".into())),
            Ok(Delta::Text("b".into())),
        ]);
        assert!(s.next().await.is_some());
        drop(s);
        assert_eq!(*seen.lock().unwrap(), ["dropped None"]);
    }

    #[tokio::test]
    async fn fold_keeps_signed_reasoning_blocks_apart() {
        let deltas = vec![
            Ok(Delta::Reasoning("a".into())),
            Ok(Delta::Reasoning("b".into())),
            Ok(Delta::ReasoningSignature("s1".into())),
            Ok(Delta::Reasoning("c".into())),
            Ok(Delta::ReasoningSignature("s2".into())),
            // A block with no text of its own.
            Ok(Delta::ReasoningSignature("s3".into())),
        ];
        let r = ChatStream::new("p", "m", stream::iter(deltas))
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.reasoning.as_deref(), Some("abc"));
        assert_eq!(
            r.message.reasoning_blocks,
            [
                ReasoningBlock::new("ab", Some("s1".into())),
                ReasoningBlock::new("c", Some("s2".into())),
                ReasoningBlock::new("", Some("s3".into())),
            ]
        );
        // Unsigned reasoning (OpenAI, DeepSeek) makes no blocks.
        let plain = vec![Ok(Delta::Reasoning("x".into()))];
        let r = ChatStream::new("p", "m", stream::iter(plain))
            .into_response()
            .await
            .unwrap();
        assert!(r.message.reasoning_blocks.is_empty());
    }

    #[tokio::test]
    async fn cost_is_the_last_usage_at_the_stream_price() {
        use futures::StreamExt;
        let deltas = || {
            stream::iter(vec![
                Ok(Delta::Text("a".into())),
                Ok(Delta::Usage(Usage::new(1_000, 0))),
                Ok(Delta::Usage(Usage::new(1_000, 500))),
            ])
        };
        let mut s = ChatStream::new("p", "m", deltas());
        s.set_price(Some(Arc::new(ModelPrice::new(1.0, 2.0))));
        assert_eq!(s.cost(), None);
        s.next().await;
        assert_eq!(s.cost(), None, "no usage yet");
        s.next().await;
        assert_eq!(s.cost(), Some(0.001));
        s.next().await;
        assert_eq!(s.cost(), Some(0.002));
        // Without a price, no cost.
        let r = ChatStream::new("p", "m", deltas())
            .into_response()
            .await
            .unwrap();
        assert_eq!(r.cost, None);
        let mut s = ChatStream::new("p", "m", deltas());
        s.set_price(Some(Arc::new(ModelPrice::new(1.0, 2.0))));
        assert_eq!(s.into_response().await.unwrap().cost, Some(0.002));
    }

    #[tokio::test]
    async fn fold_surfaces_the_first_error() {
        let deltas = vec![Ok(Delta::Text("Hel".into())), Err(Error::truncated("cut"))];
        let s = ChatStream::new("p", "m", stream::iter(deltas));
        let err = s.into_response().await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::StreamTruncated);
    }
}
