//! `streamGenerateContent?alt=sse` chunks → deltas.
//!
//! Every event is `data: {GenerateContentResponse}`; there is no `event:` line and no `[DONE]`:
//! the chunk whose candidate has a `finishReason` ends the answer. Text parts are increments; a
//! `functionCall` arrives whole, so it becomes one [`Delta::ToolCall`] (plus a
//! [`Delta::ToolCallSignature`] when it is signed). An error may arrive as a bare JSON object,
//! outside any `data:` field, possibly pretty-printed over several lines and wrapped in a
//! one-element array: the SSE decoder hands such text to [`StreamDecoder::on_stray`].

use std::borrow::Cow;

use super::response::{
    CallIds, UsageMetadata, WireResponse, blocked, body_error, finish_reason, non_empty,
};
use crate::error::{Error, ErrorKind};
use crate::transport::{SseEvent, StreamDecoder, StreamOut};
use crate::types::{Delta, Usage};

/// Stray text kept while waiting for the rest of a bare JSON error object.
const MAX_STRAY: usize = 64 * 1024;

/// Stream state.
#[derive(Debug, Default)]
pub(super) struct GeminiStream {
    done: bool,
    /// Function calls seen so far (the next call's index).
    calls: usize,
    ids: CallIds,
    /// Whether a text part's signature was already passed on (only the first one is).
    signed: bool,
    /// The last usage passed on, so that unchanged totals are not repeated.
    usage: Option<Usage>,
    /// The start of a bare JSON object that has not been completed yet.
    stray: String,
}

impl StreamDecoder for GeminiStream {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireResponse<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                return Err(body_error(data.as_bytes()).unwrap_or_else(|| {
                    Error::decode(format!("malformed stream chunk: {e}")).with_source(e)
                }));
            }
        };
        if chunk.error.is_some() {
            return Err(body_error(data.as_bytes())
                .unwrap_or_else(|| Error::decode("unreadable error event in stream")));
        }
        if out.meta.id.is_none() {
            out.meta.id = non_empty(chunk.response_id);
        }
        if out.meta.model.is_none() {
            out.meta.model = non_empty(chunk.model_version);
        }
        let Some(candidate) = chunk.candidates else {
            if let Some(err) = chunk.prompt_feedback.as_ref().and_then(blocked) {
                return Err(err);
            }
            self.usage(chunk.usage_metadata, out);
            return Ok(());
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = &part.function_call {
                let index = self.calls;
                self.calls += 1;
                out.push(Delta::ToolCall {
                    index,
                    id: Some(non_empty(call.id.clone()).unwrap_or_else(|| self.ids.id(index))),
                    name: Some(call.name.as_deref().unwrap_or_default().to_owned()),
                    arguments: call.arguments(),
                });
                if let Some(signature) = non_empty(part.thought_signature) {
                    out.push(Delta::ToolCallSignature { index, signature });
                }
                continue;
            }
            let thought = part.is_thought();
            if let Some(text) = part.text.filter(|t| !t.is_empty()).map(Cow::into_owned) {
                out.push(if thought {
                    Delta::Reasoning(text)
                } else {
                    Delta::Text(text)
                });
            }
            if !self.signed
                && let Some(signature) = non_empty(part.thought_signature)
            {
                self.signed = true;
                out.push(Delta::ReasoningSignature(signature));
            }
        }
        self.usage(chunk.usage_metadata, out);
        if let Some(reason) = candidate.finish_reason.as_deref().filter(|r| !r.is_empty()) {
            self.done = true;
            out.push(Delta::Finish(finish_reason(reason, self.calls > 0)));
        }
        Ok(())
    }

    fn on_stray(&mut self, text: &str, _out: &mut StreamOut<'_>) -> Result<(), Error> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        if self.stray.is_empty() && !text.starts_with(['{', '[']) {
            tracing::debug!(
                provider = "gemini",
                "ignoring a stray line in the event stream"
            );
            return Ok(());
        }
        if self.stray.len() + text.len() > MAX_STRAY {
            self.stray.clear();
            return Err(Error::decode(
                "oversized text outside any event in the stream",
            ));
        }
        if !self.stray.is_empty() {
            self.stray.push('\n');
        }
        self.stray.push_str(text);
        match serde_json::from_str::<serde::de::IgnoredAny>(&self.stray) {
            // Not complete yet (a blank line inside the object): wait for the rest.
            Err(e) if e.is_eof() => Ok(()),
            Err(e) => {
                self.stray.clear();
                Err(Error::decode(format!(
                    "malformed text outside any event in the stream: {e}"
                )))
            }
            Ok(_) => {
                let err = body_error(self.stray.as_bytes()).unwrap_or_else(|| {
                    Error::new(
                        ErrorKind::Decode,
                        "unexpected JSON outside any event in the stream",
                    )
                });
                self.stray.clear();
                Err(err)
            }
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

impl GeminiStream {
    /// Passes on the latest totals when they changed.
    fn usage(&mut self, metadata: Option<UsageMetadata>, out: &mut StreamOut<'_>) {
        if let Some(usage) = metadata.as_ref().and_then(UsageMetadata::normalize)
            && self.usage != Some(usage)
        {
            self.usage = Some(usage);
            out.push(Delta::Usage(usage));
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
