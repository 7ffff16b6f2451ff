//! Normalized request → OpenAI-format JSON body.

use serde::Serialize;
use serde_json::Value;

use super::Flavor;
use crate::error::{Error, ErrorKind};
use crate::providers::http::json_body;
use crate::transport::Call;
use crate::types::{
    ContentPart, ImageSource, Message, Reasoning, ResponseFormat, Role, ToolChoice,
};

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    // Always present: `null` for an assistant turn with only tool calls, as OpenAI itself sends.
    content: Option<WireContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(std::borrow::Cow<'a, str>),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImageUrl<'a> },
    InputAudio { input_audio: WireAudio<'a> },
}

#[derive(Serialize)]
struct WireImageUrl<'a> {
    url: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct WireAudio<'a> {
    data: &'a str,
    format: &'a str,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// [`encode_call`] with no per-call options, for tests.
#[cfg(test)]
pub(super) fn encode(
    req: &crate::types::ChatRequest,
    flavor: Flavor,
    stream: bool,
) -> Result<Vec<u8>, Error> {
    encode_call(
        &Call::new(req, &crate::CallOptions::default()),
        flavor,
        stream,
    )
}

/// The JSON body for one call.
pub(super) fn encode_call(call: &Call<'_>, flavor: Flavor, stream: bool) -> Result<Vec<u8>, Error> {
    let req = call.req;
    if call.model().is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "the request names no model",
        ));
    }
    let messages = req
        .messages
        .iter()
        .map(|m| message(m, flavor))
        .collect::<Result<Vec<_>, _>>()?;
    let (max_completion_tokens, max_tokens) = match flavor {
        Flavor::OpenAi => (call.max_tokens(), None),
        Flavor::DeepSeek | Flavor::Compat => (None, call.max_tokens()),
    };
    let body = Body {
        model: call.model(),
        messages,
        stream,
        // Without this OpenAI sends no usage in streams.
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: req
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: &t.parameters,
                    strict: t.strict,
                },
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::None => Value::from("none"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}})
            }
        }),
        parallel_tool_calls: if req.tools.is_empty() {
            None
        } else {
            req.parallel_tool_calls
        },
        temperature: call.temperature(),
        top_p: req.top_p,
        max_completion_tokens,
        max_tokens,
        stop: &req.stop,
        response_format: req.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => serde_json::json!({"type": "text"}),
            ResponseFormat::JsonObject => serde_json::json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => serde_json::json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": strict}
            }),
        }),
        seed: req.seed,
        reasoning_effort: match req.reasoning {
            Some(Reasoning::Effort(e)) => Some(e.as_str()),
            _ => None,
        },
    };
    json_body(&body, call)
}

fn message(m: &Message, flavor: Flavor) -> Result<WireMessage<'_>, Error> {
    let role = match (m.role, flavor) {
        (Role::Developer, Flavor::OpenAi) => "developer",
        (Role::Developer, _) => "system",
        (role, _) => role.as_str(),
    };
    let content = match m.role {
        // These roles take text only.
        Role::System | Role::Developer | Role::Tool => Some(WireContent::Text(text_of(m)?)),
        Role::Assistant if m.content.is_empty() && !m.tool_calls.is_empty() => None,
        Role::Assistant => Some(WireContent::Text(text_of(m)?)),
        Role::User => Some(user_content(m)),
    };
    if m.role == Role::Tool && m.tool_call_id.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "a tool message needs the tool_call_id it answers",
        ));
    }
    // DeepSeek wants the reasoning of a tool-calling turn back during the tool loop.
    let reasoning_content = match flavor {
        Flavor::DeepSeek if m.role == Role::Assistant && !m.tool_calls.is_empty() => {
            m.reasoning.as_deref()
        }
        _ => None,
    };
    Ok(WireMessage {
        role,
        content,
        name: m.name.as_deref(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| WireToolCall {
                id: &c.id,
                kind: "function",
                function: WireFunctionCall {
                    name: &c.name,
                    arguments: if c.arguments.is_empty() {
                        "{}"
                    } else {
                        &c.arguments
                    },
                },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref(),
        reasoning_content,
    })
}

fn text_of(m: &Message) -> Result<std::borrow::Cow<'_, str>, Error> {
    let mut texts = m.content.iter().map(|p| match p {
        ContentPart::Text(t) => Ok(t.as_str()),
        _ => Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("a {} message can carry text only", m.role.as_str()),
        )),
    });
    match (texts.next(), texts.next()) {
        (None, _) => Ok("".into()),
        (Some(first), None) => Ok(first?.into()),
        (Some(first), Some(second)) => {
            let mut joined = String::from(first?);
            joined.push_str(second?);
            for t in texts {
                joined.push_str(t?);
            }
            Ok(joined.into())
        }
    }
}

fn user_content(m: &Message) -> WireContent<'_> {
    if let [ContentPart::Text(t)] = m.content.as_slice() {
        return WireContent::Text(t.as_str().into());
    }
    WireContent::Parts(
        m.content
            .iter()
            .map(|p| match p {
                ContentPart::Text(text) => WirePart::Text { text },
                ContentPart::Image { source, detail } => WirePart::ImageUrl {
                    image_url: WireImageUrl {
                        url: match source {
                            ImageSource::Url(u) => u.as_str().into(),
                            ImageSource::Base64 { media_type, data } => {
                                format!("data:{media_type};base64,{data}").into()
                            }
                        },
                        detail: detail.as_deref(),
                    },
                },
                ContentPart::Audio { data, format } => WirePart::InputAudio {
                    input_audio: WireAudio { data, format },
                },
            })
            .collect(),
    )
}
