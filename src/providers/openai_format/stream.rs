//! OpenAI-format stream chunks → deltas.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::response::{Content, WireUsage, detail_from_error_value, finish_reason};
use crate::error::{Error, ErrorKind};
use crate::providers::serde_util::{first, opt_cow};
use crate::transport::{SseEvent, StreamDecoder, StreamOut};
use crate::types::{Delta, FinishReason};

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    model: Option<Cow<'a, str>>,
    // Only the first choice matters; reading it this way allocates no Vec per chunk.
    #[serde(default, borrow, deserialize_with = "first")]
    choices: Option<ChunkChoice<'a>>,
    // Boxed and borrowed: they are rare, and a small `Chunk` is cheap to move through serde's
    // layers (moving a large one showed up as a tenth of the decoding time).
    #[serde(default)]
    usage: Option<Box<WireUsage>>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    object: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    /// A string, or (Mistral) an array of text and thinking parts.
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallFragment<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallFragment<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionFragment<'a>>,
}

#[derive(Deserialize)]
struct FunctionFragment<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    arguments: Option<Cow<'a, str>>,
}

/// Stream state: whether `[DONE]` has arrived, and whether the model refused.
#[derive(Debug, Default)]
pub(super) struct OpenAiStream {
    done: bool,
    /// A `refusal` arrived: the answer ends as `ContentFilter` whatever `finish_reason` says
    /// (OpenAI sends `stop`), as a non-streamed refusal does.
    refused: bool,
    /// The server counts reasoning tokens apart from `completion_tokens` (xAI).
    reasoning_apart: bool,
    /// How many tool calls the turn has had (one more than the highest index).
    calls: usize,
    /// The index and id of the last tool-call fragment, for fragments without `index`.
    last_call: Option<(usize, Option<String>)>,
}

impl OpenAiStream {
    /// The index of a tool-call fragment. Without `index` (Mistral), a fragment with no id or
    /// the last call's id continues the last call, and one with a new id is the next call.
    fn call_index(&mut self, index: Option<usize>, id: Option<&str>) -> usize {
        let index = match (index, &self.last_call) {
            (Some(index), _) => index,
            (None, Some((last, last_id))) if id.is_none() || id == last_id.as_deref() => *last,
            (None, _) => self.calls,
        };
        self.calls = self.calls.max(index + 1);
        match &mut self.last_call {
            Some((last, last_id)) if *last == index => {
                if let Some(id) = id
                    && last_id.as_deref() != Some(id)
                {
                    *last_id = Some(id.to_owned());
                }
            }
            _ => self.last_call = Some((index, id.map(str::to_owned))),
        }
        index
    }

    /// A decoder; `reasoning_apart` as for [`WireUsage::normalize`].
    pub(super) fn new(reasoning_apart: bool) -> Self {
        OpenAiStream {
            reasoning_apart,
            ..OpenAiStream::default()
        }
    }
}

fn non_empty(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

impl StreamDecoder for OpenAiStream {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Chunk<'_> = serde_json::from_str(data)
            .map_err(|e| Error::decode(format!("malformed stream chunk: {e}")).with_source(e))?;
        if let Some(error) = chunk.error {
            let error: Value = serde_json::from_str(error.get()).unwrap_or_default();
            return Err(detail_from_error_value(&error).into_stream_error(ErrorKind::Server));
        }
        if chunk.object.as_deref() == Some("error") {
            // vLLM's error object, sent as a chunk of its own: `{"object": "error", "message"…}`.
            let value: Value = serde_json::from_str(data).unwrap_or_default();
            return Err(detail_from_error_value(&value).into_stream_error(ErrorKind::Server));
        }
        if out.meta.id.is_none() {
            out.meta.id = non_empty(chunk.id);
        }
        if out.meta.model.is_none() {
            out.meta.model = non_empty(chunk.model);
        }
        if let Some(choice) = chunk.choices {
            if let Some(delta) = choice.delta {
                if let Some(r) = non_empty(delta.reasoning_content.or(delta.reasoning)) {
                    out.push(Delta::Reasoning(r));
                }
                match delta.content {
                    Some(Content::Text(t)) => {
                        if let Some(t) = non_empty(Some(t)) {
                            out.push(Delta::Text(t));
                        }
                    }
                    Some(parts) => parts.for_each(&mut |thinking, piece| {
                        let piece = piece.into_owned();
                        out.push(if thinking {
                            Delta::Reasoning(piece)
                        } else {
                            Delta::Text(piece)
                        });
                    }),
                    None => {}
                }
                if let Some(t) = non_empty(delta.refusal) {
                    self.refused = true;
                    out.push(Delta::Text(t));
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    let (name, arguments) = match call.function {
                        Some(f) => (non_empty(f.name), f.arguments.map(Cow::into_owned)),
                        None => (None, None),
                    };
                    let id = non_empty(call.id);
                    out.push(Delta::ToolCall {
                        index: self.call_index(call.index, id.as_deref()),
                        id,
                        name,
                        arguments: arguments.unwrap_or_default(),
                    });
                }
            }
            if let Some(reason) = choice.finish_reason.as_deref().and_then(finish_reason) {
                out.push(Delta::Finish(if self.refused {
                    FinishReason::ContentFilter
                } else {
                    reason
                }));
            }
        }
        if let Some(usage) = &chunk.usage {
            if let Some(normalized) = usage.normalize(self.reasoning_apart) {
                out.push(Delta::Usage(normalized));
            }
            if usage.cost.is_some() {
                out.meta.cost = usage.cost;
            }
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
