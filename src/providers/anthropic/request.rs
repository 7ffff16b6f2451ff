//! Normalized request → Messages API JSON body. The rules are documented on
//! [`Anthropic`](super::Anthropic).

use std::borrow::Cow;
use std::ops::Not;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind};
use crate::providers::http::json_body;
use crate::transport::Call;
#[cfg(test)]
use crate::types::ChatRequest;
use crate::types::{
    ContentPart, ImageSource, Message, Reasoning, ReasoningEffort, ResponseFormat, Role, ToolChoice,
};

/// The name of the tool that carries a JSON response format; its calls come back as text.
pub(super) const JSON_TOOL: &str = "modelgate_json";

/// The smallest thinking budget the API accepts.
const MIN_THINKING_BUDGET: u32 = 1024;

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Serialize)]
#[serde(untagged)]
enum System<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

/// One `messages[]` entry: a role and its content blocks.
#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSrc<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
        #[serde(skip_serializing_if = "Not::not")]
        is_error: bool,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
}

impl Block<'_> {
    fn is_tool_result(&self) -> bool {
        matches!(self, Block::ToolResult { .. })
    }

    fn is_thinking(&self) -> bool {
        matches!(self, Block::Thinking { .. })
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSrc<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    input_schema: Cow<'a, Value>,
}

#[derive(Serialize)]
struct WireToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Not::not")]
    disable_parallel_tool_use: bool,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
}

/// The `max_tokens` sent when neither the request nor the builder sets one.
pub(super) fn default_max_tokens(model: &str) -> u32 {
    const LARGER: [&str; 5] = [
        "claude-3-5-",
        "claude-3-7-",
        "claude-opus-4",
        "claude-sonnet-4",
        "claude-haiku-4",
    ];
    if LARGER.iter().any(|prefix| model.starts_with(prefix)) {
        8192
    } else {
        4096
    }
}

/// The thinking budget an OpenAI-style effort stands for.
fn effort_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Low => MIN_THINKING_BUDGET,
        ReasoningEffort::Medium => 4096,
        ReasoningEffort::High => 16_384,
    }
}

/// `(max_tokens, thinking budget)` for one call.
fn token_limits(
    call: &Call<'_>,
    builder_default: Option<u32>,
) -> Result<(u32, Option<u32>), Error> {
    let budget = match call.req.reasoning {
        None => None,
        Some(Reasoning::Budget(n)) if n < MIN_THINKING_BUDGET => {
            return Err(invalid(format!(
                "anthropic: a thinking budget of {n} tokens is below the minimum of {MIN_THINKING_BUDGET}"
            )));
        }
        Some(Reasoning::Budget(n)) => Some(n),
        Some(Reasoning::Effort(e)) => Some(effort_budget(e)),
    };
    let max_tokens = match (call.max_tokens(), budget) {
        (Some(0), _) => return Err(invalid("anthropic: max_tokens must be at least 1")),
        (Some(max), Some(budget)) if max <= budget => {
            return Err(invalid(format!(
                "anthropic: max_tokens ({max}) must be greater than the thinking budget ({budget})"
            )));
        }
        (Some(max), _) => max,
        (None, budget) => {
            let answer = builder_default.unwrap_or_else(|| default_max_tokens(call.model()));
            answer.saturating_add(budget.unwrap_or(0))
        }
    };
    Ok((max_tokens, budget))
}

/// [`encode_call`] with no per-call options, for tests.
#[cfg(test)]
pub(super) fn encode(
    req: &crate::types::ChatRequest,
    stream: bool,
    builder_default: Option<u32>,
) -> Result<Vec<u8>, Error> {
    encode_call(
        &Call::new(req, &crate::CallOptions::default()),
        stream,
        builder_default,
    )
}

/// The JSON body for one call.
pub(super) fn encode_call(
    call: &Call<'_>,
    stream: bool,
    builder_default: Option<u32>,
) -> Result<Vec<u8>, Error> {
    let req = call.req;
    if call.model().is_empty() {
        return Err(invalid("the request names no model"));
    }
    let json_tool = json_tool(req)?;
    let (max_tokens, budget) = token_limits(call, builder_default)?;
    let (system, messages) = conversation(&req.messages)?;
    let has_tools = !req.tools.is_empty();
    let disable_parallel = req.parallel_tool_calls == Some(false);
    let tool_choice = match (&req.tool_choice, has_tools) {
        // The JSON answer comes through our tool: forced when it is the only one, else the
        // model calls one of the caller's tools or ours. The API refuses a forced choice while
        // thinking, so the choice is then `auto`.
        (choice, _) if json_tool.is_some() && !matches!(choice, Some(ToolChoice::Function(_))) => {
            if matches!(choice, Some(ToolChoice::None)) {
                return Err(invalid(
                    "anthropic: a JSON response format is answered through a tool call, which \
                     ToolChoice::None forbids",
                ));
            }
            let (kind, name) = match (budget.is_some(), has_tools) {
                (true, _) => ("auto", None),
                (false, false) => ("tool", Some(JSON_TOOL)),
                (false, true) => ("any", None),
            };
            Some(WireToolChoice {
                kind,
                name,
                disable_parallel_tool_use: disable_parallel,
            })
        }
        (_, false) => None,
        (None, true) => disable_parallel.then_some(WireToolChoice {
            kind: "auto",
            name: None,
            disable_parallel_tool_use: true,
        }),
        (Some(choice), true) => Some(match choice {
            ToolChoice::Auto => WireToolChoice {
                kind: "auto",
                name: None,
                disable_parallel_tool_use: disable_parallel,
            },
            ToolChoice::Required => WireToolChoice {
                kind: "any",
                name: None,
                disable_parallel_tool_use: disable_parallel,
            },
            ToolChoice::Function(name) => WireToolChoice {
                kind: "tool",
                name: Some(name),
                disable_parallel_tool_use: disable_parallel,
            },
            ToolChoice::None => WireToolChoice {
                kind: "none",
                name: None,
                disable_parallel_tool_use: false,
            },
        }),
    };
    let body = Body {
        model: call.model(),
        max_tokens,
        system,
        messages,
        stream,
        tools: req
            .tools
            .iter()
            .map(|t| WireTool {
                name: &t.name,
                description: t.description.as_deref().map(Cow::Borrowed),
                input_schema: if t.parameters.is_null() {
                    Cow::Owned(serde_json::json!({"type": "object", "properties": {}}))
                } else {
                    Cow::Borrowed(&t.parameters)
                },
            })
            .chain(json_tool)
            .collect(),
        tool_choice,
        thinking: budget.map(|budget_tokens| Thinking {
            kind: "enabled",
            budget_tokens,
        }),
        temperature: call.temperature(),
        top_p: req.top_p,
        stop_sequences: &req.stop,
    };
    json_body(&body, call)
}

/// The tool through which a JSON response format is answered (Anthropic's documented way to
/// get JSON: a tool whose `input_schema` is the schema, forced with `tool_choice`); `None` for
/// text. `JsonObject` is an object schema.
fn json_tool(req: &crate::types::ChatRequest) -> Result<Option<WireTool<'_>>, Error> {
    let (description, input_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => return Ok(None),
        Some(ResponseFormat::JsonObject) => (
            Cow::Borrowed("Give the answer as this tool's input: a JSON object."),
            Cow::Owned(serde_json::json!({"type": "object"})),
        ),
        Some(ResponseFormat::JsonSchema { name, schema, .. }) => (
            Cow::Owned(format!(
                "Give the answer as this tool's input: a JSON value following the `{name}` schema."
            )),
            Cow::Borrowed(schema),
        ),
    };
    if req.tools.iter().any(|t| t.name == JSON_TOOL) {
        return Err(invalid(format!(
            "anthropic: `{JSON_TOOL}` is the tool that carries a JSON response format; name \
             yours differently"
        )));
    }
    Ok(Some(WireTool {
        name: JSON_TOOL,
        description: Some(description),
        input_schema,
    }))
}

/// Lifts system text out of the conversation and merges consecutive turns of one role.
fn conversation(messages: &[Message]) -> Result<(Option<System<'_>>, Vec<Turn<'_>>), Error> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(messages.len());
    for m in messages {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => system.push(t),
                        _ => {
                            return Err(invalid("anthropic: a system message can carry text only"));
                        }
                    }
                }
                continue;
            }
            Role::User => ("user", user_blocks(&m.content)?),
            Role::Tool => ("user", vec![tool_result(m)?]),
            Role::Assistant => ("assistant", assistant_blocks(m)?),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    for turn in &mut turns {
        // The API wants tool results first in a user turn and thinking first in an assistant
        // turn; a stable sort keeps everything else in order.
        match turn.role {
            "user" => turn.content.sort_by_key(|b| !b.is_tool_result()),
            _ => turn.content.sort_by_key(|b| !b.is_thinking()),
        }
    }
    let system = match system.as_slice() {
        [] => None,
        [one] => Some(System::Text(one)),
        many => Some(System::Blocks(
            many.iter().map(|text| Block::Text { text }).collect(),
        )),
    };
    Ok((system, turns))
}

fn user_blocks(parts: &[ContentPart]) -> Result<Vec<Block<'_>>, Error> {
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(text) => blocks.push(Block::Text { text }),
            ContentPart::Image { source, .. } => blocks.push(Block::Image {
                source: image_source(source)?,
            }),
            ContentPart::Audio { .. } => {
                return Err(invalid("anthropic: the Messages API does not accept audio"));
            }
        }
    }
    Ok(blocks)
}

fn image_source(source: &ImageSource) -> Result<ImageSrc<'_>, Error> {
    Ok(match source {
        ImageSource::Base64 { media_type, data } => ImageSrc::Base64 { media_type, data },
        ImageSource::Url(url) if url.starts_with("data:") => {
            let (media_type, data) = ImageSource::parse_data_url(url).ok_or_else(|| {
                invalid("anthropic: an image `data:` URL must be base64 (`data:<type>;base64,…`)")
            })?;
            ImageSrc::Base64 { media_type, data }
        }
        ImageSource::Url(url) => ImageSrc::Url { url },
    })
}

fn tool_result(m: &Message) -> Result<Block<'_>, Error> {
    let tool_use_id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| invalid("a tool message needs the tool_call_id it answers"))?;
    let only_text = m.content.iter().all(|p| matches!(p, ContentPart::Text(_)));
    let content = match m.content.as_slice() {
        [] => None,
        [ContentPart::Text(t)] if t.is_empty() => None,
        [ContentPart::Text(t)] => Some(ToolResultContent::Text(Cow::Borrowed(t))),
        _ if only_text => {
            let text = m.text_content();
            (!text.is_empty()).then_some(ToolResultContent::Text(Cow::Owned(text)))
        }
        parts => Some(ToolResultContent::Blocks(user_blocks(parts)?)),
    };
    Ok(Block::ToolResult {
        tool_use_id,
        content,
        is_error: m.is_error,
    })
}

fn assistant_blocks(m: &Message) -> Result<Vec<Block<'_>>, Error> {
    let mut blocks = Vec::with_capacity(m.content.len() + m.tool_calls.len() + 1);
    // Thinking goes back only with its signature: the API verifies it. Separately signed
    // blocks go back one by one, each with its own signature.
    if !m.reasoning_blocks.is_empty() {
        for block in &m.reasoning_blocks {
            if let Some(signature) = block.signature.as_deref().filter(|s| !s.is_empty()) {
                blocks.push(Block::Thinking {
                    thinking: &block.text,
                    signature,
                });
            }
        }
    } else if let (Some(thinking), Some(signature)) = (&m.reasoning, &m.reasoning_signature)
        && !signature.is_empty()
    {
        blocks.push(Block::Thinking {
            thinking,
            signature,
        });
    }
    for part in &m.content {
        match part {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(text) => blocks.push(Block::Text { text }),
            _ => {
                return Err(invalid(
                    "anthropic: an assistant message can carry text only",
                ));
            }
        }
    }
    for call in &m.tool_calls {
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.name,
            input: tool_input(&call.name, &call.arguments)?,
        });
    }
    Ok(blocks)
}

/// A tool call's JSON arguments as the `input` object, checked but not re-encoded.
fn tool_input<'a>(name: &str, arguments: &'a str) -> Result<&'a RawValue, Error> {
    let text = arguments.trim();
    if text.is_empty() {
        return Ok(empty_object());
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "anthropic: tool call `{name}` has invalid JSON arguments: {e}"
        ))
        .with_source(e)
    })?;
    if !raw.get().starts_with('{') {
        return Err(invalid(format!(
            "anthropic: tool call `{name}` arguments must be a JSON object"
        )));
    }
    Ok(raw)
}

fn empty_object() -> &'static RawValue {
    serde_json::from_str("{}").expect("`{}` is JSON")
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
