//! Normalized request → `generateContent` path and JSON body.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::schema;
use crate::error::{Error, ErrorKind};
use crate::providers::http::json_body;
use crate::transport::images::is_http_url;
use crate::transport::{Call, WireRequest};
#[cfg(test)]
use crate::types::ChatRequest;
use crate::types::media::InlineImages;
use crate::types::{
    ContentPart, ImageSource, Message, Reasoning, ReasoningEffort, ResponseFormat, Role, ToolChoice,
};

/// Thinking budgets for [`ReasoningEffort`] on models steered by budget (Gemini 2.x). `Medium`
/// leaves the model's own (dynamic) default.
const LOW_THINKING_BUDGET: u32 = 1024;
const HIGH_THINKING_BUDGET: u32 = 24_576;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolGroup<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<Part<'a>>,
}

/// One part; exactly one of the data fields is set, `thoughtSignature` rides beside it.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<InlineData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineData<'a> {
    mime_type: Cow<'a, str>,
    data: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Value,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolGroup<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<&'a str>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
}

/// The model id as it goes in the path: without a `models/` prefix, and refused when it could
/// change the path or query (`/`, `?`, `#`, `:`, `%`, whitespace, control characters).
pub(super) fn model_id(model: &str) -> Result<&str, Error> {
    let id = model.strip_prefix("models/").unwrap_or(model);
    if id.is_empty() {
        return Err(invalid("the request names no model"));
    }
    if id
        .chars()
        .any(|c| matches!(c, '/' | '?' | '#' | ':' | '%') || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "`{model}` is not a valid Gemini model name"
        )));
    }
    Ok(id)
}

/// [`encode_call`] with no per-call options, for tests.
#[cfg(test)]
pub(super) fn encode(
    req: &ChatRequest,
    stream: bool,
    images: &InlineImages,
) -> Result<WireRequest, Error> {
    encode_call(
        &Call::new(req, &crate::CallOptions::default()),
        stream,
        images,
    )
}

/// The path and JSON body for one call; its `http(s)` image URLs are sent as the bytes `images`
/// holds for them (a URL missing there is an `InvalidRequest` error).
pub(super) fn encode_call(
    call: &Call<'_>,
    stream: bool,
    images: &InlineImages,
) -> Result<WireRequest, Error> {
    let model = model_id(call.model())?;
    let path = if stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    };
    Ok(WireRequest {
        path,
        body: body(call, model, images)?,
    })
}

fn body<'a>(call: &Call<'a>, model: &str, images: &'a InlineImages) -> Result<Vec<u8>, Error> {
    let req = call.req;
    let mut contents: Vec<Content<'_>> = Vec::new();
    let mut system: Vec<Part<'_>> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                for part in &m.content {
                    match part {
                        ContentPart::Text(t) if t.is_empty() => {}
                        ContentPart::Text(t) => system.push(text_part(t)),
                        _ => {
                            return Err(invalid(format!(
                                "a {} message can carry text only",
                                m.role.as_str()
                            )));
                        }
                    }
                }
                continue;
            }
            Role::User => ("user", content_parts(m, images)?),
            Role::Assistant => ("model", model_parts(m, images)?),
            // Tool results go back in a user turn.
            Role::Tool => ("user", vec![function_response(m, &req.messages[..i])?]),
        };
        // Gemini rejects empty turns; consecutive turns of one role become one turn.
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role),
                parts,
            }),
        }
    }

    let declarations: Vec<FunctionDeclaration<'_>> = req
        .tools
        .iter()
        .map(|t| FunctionDeclaration {
            name: &t.name,
            description: t.description.as_deref().filter(|d| !d.is_empty()),
            parameters: schema::parameters(&t.parameters),
        })
        .collect();
    let tool_config = match (&req.tool_choice, declarations.is_empty()) {
        (Some(choice), false) => {
            let (mode, allowed) = match choice {
                ToolChoice::Auto => ("AUTO", Vec::new()),
                ToolChoice::None => ("NONE", Vec::new()),
                ToolChoice::Required => ("ANY", Vec::new()),
                ToolChoice::Function(name) => ("ANY", vec![name.as_str()]),
            };
            Some(ToolConfig {
                function_calling_config: FunctionCallingConfig {
                    mode,
                    allowed_function_names: allowed,
                },
            })
        }
        _ => None,
    };

    let (response_mime_type, response_schema) = match &req.response_format {
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            (Some("application/json"), Some(schema::clean(schema)))
        }
        Some(ResponseFormat::Text) | None => (None, None),
    };

    let body = Body {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        }),
        tools: if declarations.is_empty() {
            Vec::new()
        } else {
            vec![ToolGroup {
                function_declarations: declarations,
            }]
        },
        tool_config,
        generation_config: GenerationConfig {
            temperature: call.temperature(),
            top_p: req.top_p,
            max_output_tokens: call.max_tokens(),
            stop_sequences: &req.stop,
            // Gemini's seed is an int32: larger seeds are folded into its range, deterministically.
            seed: req.seed.map(|s| (s % (i32::MAX as u64 + 1)) as i32),
            response_mime_type,
            response_schema,
            thinking_config: req.reasoning.map(|r| thinking_config(r, model)),
        },
    };
    json_body(&body, call)
}

/// `Budget(n)` is `thinkingBudget: n` (0 turns thinking off, and then no thoughts are asked
/// for). `Effort` is `thinkingLevel` on Gemini 3 and later (`low`/`high`; `Medium` leaves the
/// model's default), and a budget preset on earlier models (1024 / default / 24576).
fn thinking_config(reasoning: Reasoning, model: &str) -> ThinkingConfig {
    match reasoning {
        Reasoning::Budget(0) => ThinkingConfig {
            thinking_budget: Some(0),
            thinking_level: None,
            include_thoughts: None,
        },
        Reasoning::Budget(n) => ThinkingConfig {
            thinking_budget: Some(n),
            thinking_level: None,
            include_thoughts: Some(true),
        },
        Reasoning::Effort(effort) if uses_thinking_level(model) => ThinkingConfig {
            thinking_budget: None,
            thinking_level: match effort {
                ReasoningEffort::Low => Some("low"),
                ReasoningEffort::Medium => None,
                ReasoningEffort::High => Some("high"),
            },
            include_thoughts: Some(true),
        },
        Reasoning::Effort(effort) => ThinkingConfig {
            thinking_budget: match effort {
                ReasoningEffort::Low => Some(LOW_THINKING_BUDGET),
                ReasoningEffort::Medium => None,
                ReasoningEffort::High => Some(HIGH_THINKING_BUDGET),
            },
            thinking_level: None,
            include_thoughts: Some(true),
        },
    }
}

/// Gemini 3 and later are steered by `thinkingLevel`; 2.x by `thinkingBudget`.
fn uses_thinking_level(model: &str) -> bool {
    let Some(rest) = model.strip_prefix("gemini-") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse::<u32>().is_ok_and(|major| major >= 3)
}

fn text_part(text: &str) -> Part<'_> {
    Part {
        text: Some(text),
        ..Part::default()
    }
}

fn inline_part<'a>(mime_type: impl Into<Cow<'a, str>>, data: &'a str) -> Part<'a> {
    Part {
        inline_data: Some(InlineData {
            mime_type: mime_type.into(),
            data,
        }),
        ..Part::default()
    }
}

/// Text, images and audio of a user (or model) message.
fn content_parts<'a>(m: &'a Message, images: &'a InlineImages) -> Result<Vec<Part<'a>>, Error> {
    let mut parts = Vec::with_capacity(m.content.len());
    for part in &m.content {
        match part {
            ContentPart::Text(t) if t.is_empty() => {}
            ContentPart::Text(t) => parts.push(text_part(t)),
            ContentPart::Image { source, .. } => parts.push(image_part(source, images)?),
            ContentPart::Audio { data, format } => {
                let mime = if format.contains('/') {
                    Cow::Borrowed(format.as_str())
                } else {
                    Cow::Owned(format!("audio/{}", format.to_ascii_lowercase()))
                };
                parts.push(inline_part(mime, data));
            }
        }
    }
    Ok(parts)
}

/// An image as `inlineData`: base64 bytes and `data:` URLs as they are, an `http(s)` URL as the
/// bytes fetched for it.
fn image_part<'a>(source: &'a ImageSource, images: &'a InlineImages) -> Result<Part<'a>, Error> {
    match source {
        ImageSource::Base64 { media_type, data } => Ok(inline_part(media_type.as_str(), data)),
        ImageSource::Url(url) => {
            if let Some((media_type, data)) = ImageSource::parse_data_url(url) {
                return Ok(inline_part(media_type, data));
            }
            if url.starts_with("data:") {
                return Err(invalid("an image data: URL must be base64-encoded"));
            }
            if is_http_url(url) {
                // The provider fetches these before encoding (or refuses the request when
                // fetching is off); only a direct encode meets one that is missing.
                return match images.get(url) {
                    Some(image) => Ok(inline_part(image.media_type.as_str(), &image.data)),
                    None => Err(invalid(
                        "Gemini needs image bytes inline; this image URL was not fetched",
                    )),
                };
            }
            Err(invalid(
                "an image URL must be http(s) or a base64 data: URL",
            ))
        }
    }
}

/// An assistant turn: its text, then its function calls. A call's signature goes back on its
/// `functionCall` part; the message's reasoning signature on its last text part (or, with no
/// text, on its first call if that has none). Reasoning text (thought summaries) is not sent
/// back: Gemini reads nothing from it.
fn model_parts<'a>(m: &'a Message, images: &'a InlineImages) -> Result<Vec<Part<'a>>, Error> {
    let mut parts = content_parts(m, images)?;
    let mut signature = m.reasoning_signature.as_deref().filter(|s| !s.is_empty());
    if let Some(sig) = signature
        && let Some(last_text) = parts.iter_mut().rev().find(|p| p.text.is_some())
    {
        last_text.thought_signature = Some(sig);
        signature = None;
    }
    for call in &m.tool_calls {
        let args = match call.parse_arguments() {
            Ok(Value::Object(args)) => Value::Object(args),
            Ok(_) => {
                return Err(invalid(format!(
                    "the arguments of tool call `{}` are not a JSON object",
                    call.name
                )));
            }
            Err(e) => return Err(invalid(e.message().to_owned())),
        };
        let own = call.signature.as_deref().filter(|s| !s.is_empty());
        parts.push(Part {
            function_call: Some(FunctionCall {
                name: &call.name,
                args,
            }),
            thought_signature: own.or(signature.take()),
            ..Part::default()
        });
    }
    Ok(parts)
}

/// A tool result as a `functionResponse`, named after the call it answers.
fn function_response<'a>(m: &'a Message, earlier: &'a [Message]) -> Result<Part<'a>, Error> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| invalid("a tool message needs the tool_call_id it answers"))?;
    let name = earlier
        .iter()
        .rev()
        .filter(|e| e.role == Role::Assistant)
        .flat_map(|e| &e.tool_calls)
        .find(|c| c.id == id)
        .map(|c| c.name.as_str())
        .or(m.name.as_deref())
        .ok_or_else(|| {
            invalid(format!(
                "no earlier assistant tool call has the id `{id}` this tool result answers"
            ))
        })?;
    let mut text = String::new();
    for part in &m.content {
        match part {
            ContentPart::Text(t) => text.push_str(t),
            _ => return Err(invalid("a tool message can carry text only")),
        }
    }
    Ok(Part {
        function_response: Some(FunctionResponse {
            name,
            response: tool_response(text, m.is_error),
        }),
        ..Part::default()
    })
}

/// Gemini wants an object: a JSON object result goes as it is; anything else is wrapped as
/// `{"result": …}` (`{"error": …}` for a failed tool), parsed as JSON when it is JSON.
fn tool_response(text: String, is_error: bool) -> Value {
    let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    match value {
        Value::Object(map) if !is_error || map.contains_key("error") => Value::Object(map),
        other => {
            let mut map = Map::new();
            map.insert(if is_error { "error" } else { "result" }.into(), other);
            Value::Object(map)
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
