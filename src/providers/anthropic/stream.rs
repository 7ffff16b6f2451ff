//! Messages API stream events → deltas.
//!
//! Events are dispatched on the SSE `event:` name (which equals the JSON `type`), or on the
//! JSON `type` when a proxy dropped the `event:` line. Each event is read into a small borrowed
//! struct; a text delta costs one allocation (its `String`).

use std::borrow::Cow;

use serde::Deserialize;

use super::request::JSON_TOOL;
use super::response::{ErrorBody, WireUsage, finish_reason, json_finish};
use crate::error::{Error, ErrorKind};
use crate::providers::serde_util::opt_cow;
use crate::transport::{ErrorDetail, SseEvent, StreamDecoder, StreamOut};
use crate::types::Delta;

#[derive(Deserialize)]
struct Tagged<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "opt_cow")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: StartMessage<'a>,
}

#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    index: usize,
    #[serde(borrow)]
    content_block: StartBlock<'a>,
}

#[derive(Deserialize)]
struct StartBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    index: usize,
    #[serde(borrow)]
    delta: DeltaBody<'a>,
}

#[derive(Deserialize)]
struct DeltaBody<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockStop {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(default, borrow)]
    delta: Option<MessageDeltaBody<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDeltaBody<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    stop_reason: Option<Cow<'a, str>>,
}

/// What a content block is, by its index in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A client tool call, with its ordinal among the turn's tool calls.
    Tool(usize),
    /// The call of [`JSON_TOOL`]: its input is the answer's text.
    Json,
    Thinking,
    /// Redacted thinking, server tools and their results, future kinds: their deltas are
    /// skipped.
    Other,
}

/// Stream state: the open content blocks, the tool-call count, the usage so far, and whether
/// `message_stop` has arrived.
#[derive(Debug, Default)]
pub(super) struct AnthropicStream {
    done: bool,
    blocks: Vec<(usize, Block)>,
    tool_calls: usize,
    /// The content blocks of tool calls that have had no argument text yet: when they stop,
    /// their arguments are `{}` (the API streams an empty input as one empty fragment, or none).
    argless: Vec<usize>,
    usage: WireUsage,
    usage_sent: bool,
    /// A [`JSON_TOOL`] call gave the answer.
    json_answer: bool,
    /// The signature of the open thinking block, sent whole when the block stops (each
    /// `ReasoningSignature` delta is one block's whole signature).
    signature: String,
}

fn parse<'a, T: Deserialize<'a>>(event: &str, data: &'a str) -> Result<T, Error> {
    serde_json::from_str(data)
        .map_err(|e| Error::decode(format!("malformed `{event}` event: {e}")).with_source(e))
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

impl AnthropicStream {
    /// Sends the usage totals known so far, if any were reported.
    fn push_usage(&mut self, out: &mut StreamOut<'_>) {
        if self.usage != WireUsage::default() {
            out.push(Delta::Usage(self.usage.normalize()));
            self.usage_sent = true;
        }
    }

    fn block(&self, index: usize) -> Option<Block> {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn on_block_start(&mut self, data: &str, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let start: BlockStart<'_> = parse("content_block_start", data)?;
        let block = start.content_block;
        let kind = match block.kind.as_ref() {
            "text" => {
                if let Some(text) = owned(block.text) {
                    out.push(Delta::Text(text));
                }
                Block::Text
            }
            "tool_use" if block.name.as_deref() == Some(JSON_TOOL) => {
                self.json_answer = true;
                self.argless.push(start.index);
                Block::Json
            }
            "tool_use" => {
                let ordinal = self.tool_calls;
                self.tool_calls += 1;
                out.push(Delta::ToolCall {
                    index: ordinal,
                    id: owned(block.id),
                    name: owned(block.name),
                    arguments: String::new(),
                });
                self.argless.push(start.index);
                Block::Tool(ordinal)
            }
            "thinking" => {
                if let Some(thinking) = owned(block.thinking) {
                    out.push(Delta::Reasoning(thinking));
                }
                self.flush_signature(out);
                if let Some(signature) = block.signature.filter(|s| !s.is_empty()) {
                    self.signature.push_str(&signature);
                }
                Block::Thinking
            }
            _ => Block::Other,
        };
        self.blocks.push((start.index, kind));
        Ok(())
    }

    /// Sends the signature of the thinking block that just ended, if it had one.
    fn flush_signature(&mut self, out: &mut StreamOut<'_>) {
        if !self.signature.is_empty() {
            out.push(Delta::ReasoningSignature(std::mem::take(
                &mut self.signature,
            )));
        }
    }

    /// A block stopped: a thinking block's signature is sent; a tool call that had no
    /// argument text gets `{}`.
    fn on_block_stop(&mut self, data: &str, out: &mut StreamOut<'_>) -> Result<(), Error> {
        self.flush_signature(out);
        if self.argless.is_empty() {
            return Ok(());
        }
        let stop: BlockStop = parse("content_block_stop", data)?;
        if let Some(pos) = self.argless.iter().position(|&i| i == stop.index) {
            self.argless.swap_remove(pos);
            self.close_argless(stop.index, out);
        }
        Ok(())
    }

    /// Gives the tool call of content block `index`, which had no argument text, `{}`.
    fn close_argless(&self, index: usize, out: &mut StreamOut<'_>) {
        match self.block(index) {
            Some(Block::Tool(ordinal)) => out.push(Delta::ToolCall {
                index: ordinal,
                id: None,
                name: None,
                arguments: "{}".to_owned(),
            }),
            Some(Block::Json) => out.push(Delta::Text("{}".to_owned())),
            _ => {}
        }
    }

    fn on_block_delta(&mut self, data: &str, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let BlockDelta { index, delta } = parse("content_block_delta", data)?;
        let block = self.block(index);
        if block == Some(Block::Other) {
            return Ok(());
        }
        match delta.kind.as_ref() {
            "text_delta" => {
                if let Some(text) = owned(delta.text) {
                    out.push(Delta::Text(text));
                }
            }
            "input_json_delta" if block == Some(Block::Json) => {
                if let Some(text) = owned(delta.partial_json) {
                    self.argless.retain(|&i| i != index);
                    out.push(Delta::Text(text));
                }
            }
            "input_json_delta" => {
                let Some(Block::Tool(ordinal)) = block else {
                    return Err(Error::decode(format!(
                        "input_json_delta for content block {index}, which is not a tool_use block"
                    )));
                };
                // The first fragment is often empty; it adds nothing.
                if let Some(arguments) = owned(delta.partial_json) {
                    self.argless.retain(|&i| i != index);
                    out.push(Delta::ToolCall {
                        index: ordinal,
                        id: None,
                        name: None,
                        arguments,
                    });
                }
            }
            "thinking_delta" => {
                if let Some(thinking) = owned(delta.thinking) {
                    out.push(Delta::Reasoning(thinking));
                }
            }
            "signature_delta" => {
                if let Some(signature) = delta.signature {
                    self.signature.push_str(&signature);
                }
            }
            // citations_delta and future delta types.
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for AnthropicStream {
    fn on_event(&mut self, event: SseEvent<'_>, out: &mut StreamOut<'_>) -> Result<(), Error> {
        let tagged;
        let name = if event.event.is_empty() {
            tagged = parse::<Tagged<'_>>("untyped", event.data)?;
            tagged.kind.as_deref().unwrap_or("")
        } else {
            event.event
        };
        match name {
            "content_block_delta" => self.on_block_delta(event.data, out)?,
            "content_block_start" => self.on_block_start(event.data, out)?,
            "message_start" => {
                let start: MessageStart<'_> = parse(name, event.data)?;
                let message = start.message;
                if out.meta.id.is_none() {
                    out.meta.id = owned(message.id);
                }
                if out.meta.model.is_none() {
                    out.meta.model = owned(message.model);
                }
                if let Some(usage) = &message.usage {
                    self.usage.update(usage);
                }
            }
            "content_block_stop" => self.on_block_stop(event.data, out)?,
            "message_delta" => {
                // Blocks a proxy left unstopped are complete by now.
                self.flush_signature(out);
                for index in std::mem::take(&mut self.argless) {
                    self.close_argless(index, out);
                }
                let delta: MessageDelta<'_> = parse(name, event.data)?;
                if let Some(reason) = delta.delta.and_then(|d| d.stop_reason) {
                    let reason = finish_reason(&reason);
                    out.push(Delta::Finish(json_finish(
                        reason,
                        self.json_answer,
                        self.tool_calls,
                    )));
                }
                if let Some(usage) = &delta.usage {
                    // Cumulative: the totals replace what message_start said.
                    self.usage.update(usage);
                }
                self.push_usage(out);
            }
            "message_stop" => {
                self.flush_signature(out);
                if !self.usage_sent {
                    self.push_usage(out);
                }
                self.done = true;
            }
            "error" => {
                let detail = match parse::<ErrorBody>(name, event.data)?.error {
                    Some(error) => error.detail(),
                    None => ErrorDetail::default(),
                };
                return Err(detail.into_stream_error(ErrorKind::Server));
            }
            // ping and unknown events carry nothing we need.
            _ => {}
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
