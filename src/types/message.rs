//! Conversation messages and their content parts.

use crate::types::tool::ToolCall;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Instructions from the application. Providers without a system role receive it their own way
    /// (Anthropic's top-level `system`, Gemini's `systemInstruction`).
    System,
    /// OpenAI's `developer` role: system-level instructions for reasoning models. Sent as `system`
    /// to providers that do not know it.
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call; the message carries [`Message::tool_call_id`].
    Tool,
}

impl Role {
    /// The OpenAI wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// An `http(s)` URL, or a `data:` URL.
    Url(String),
    /// Inline bytes, base64-encoded, with their media type (`image/png`, …).
    Base64 {
        /// The media type, such as `image/png`.
        media_type: String,
        /// The base64-encoded bytes.
        data: String,
    },
}

impl ImageSource {
    /// Splits a `data:<media type>;base64,<data>` URL into media type and data.
    ///
    /// Returns `None` for anything else, including `data:` URLs that are not base64.
    pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
        let rest = url.strip_prefix("data:")?;
        let (meta, data) = rest.split_once(',')?;
        let media_type = meta.strip_suffix(";base64")?;
        Some((media_type, data))
    }
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentPart {
    /// Plain text.
    Text(String),
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// OpenAI's `detail` hint (`low`, `high`, `auto`); ignored by other providers.
        detail: Option<String>,
    },
    /// Audio input, base64-encoded, in `format` (`wav`, `mp3`).
    Audio {
        /// The base64-encoded bytes.
        data: String,
        /// The audio format, such as `wav` or `mp3`.
        format: String,
    },
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text(text.into())
    }

    /// An image by `http(s)` URL or `data:` URL.
    pub fn image_url(url: impl Into<String>) -> Self {
        ContentPart::Image {
            source: ImageSource::Url(url.into()),
            detail: None,
        }
    }

    /// An inline image from base64 data.
    pub fn image_base64(media_type: impl Into<String>, data: impl Into<String>) -> Self {
        ContentPart::Image {
            source: ImageSource::Base64 {
                media_type: media_type.into(),
                data: data.into(),
            },
            detail: None,
        }
    }

    /// Audio input from base64 data in `format` (`wav`, `mp3`).
    pub fn audio(data: impl Into<String>, format: impl Into<String>) -> Self {
        ContentPart::Audio {
            data: data.into(),
            format: format.into(),
        }
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentPart::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// One block of a model's reasoning with its own signature. Anthropic may think in several
/// blocks in one turn, each signed apart, and verifies each block against its signature when
/// the turn is sent back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReasoningBlock {
    /// The reasoning text of the block.
    pub text: String,
    /// The provider's opaque signature of the block, sent back unchanged.
    pub signature: Option<String>,
}

impl ReasoningBlock {
    /// A block of reasoning `text` with its `signature`.
    pub fn new(text: impl Into<String>, signature: Option<String>) -> Self {
        ReasoningBlock {
            text: text.into(),
            signature,
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text, images and audio, in order. May be empty for an assistant turn that only calls tools.
    pub content: Vec<ContentPart>,
    /// Tool calls made by the assistant in this turn.
    pub tool_calls: Vec<ToolCall>,
    /// For [`Role::Tool`]: the id of the call this message answers.
    pub tool_call_id: Option<String>,
    /// For [`Role::Tool`]: whether the tool failed (Anthropic's `is_error`).
    pub is_error: bool,
    /// An optional participant name (OpenAI's `name`).
    pub name: Option<String>,
    /// The model's reasoning for an assistant turn. Sent back to providers that need it
    /// (DeepSeek's `reasoning_content` in tool loops, Anthropic's thinking blocks).
    pub reasoning: Option<String>,
    /// The provider's opaque signature of [`Message::reasoning`] (Anthropic `signature`, Gemini
    /// `thoughtSignature`), sent back unchanged.
    pub reasoning_signature: Option<String>,
    /// The reasoning as the provider's separately signed blocks, in order (several Anthropic
    /// thinking blocks in one turn); empty when the reasoning was not signed. When set,
    /// [`Message::reasoning`] is the blocks' texts joined, and Anthropic is sent these blocks,
    /// each with its own signature, instead of `reasoning` and `reasoning_signature`.
    pub reasoning_blocks: Vec<ReasoningBlock>,
}

impl Message {
    /// A message of `role` with no content.
    pub fn new(role: Role) -> Self {
        Message {
            role,
            content: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
            name: None,
            reasoning: None,
            reasoning_signature: None,
            reasoning_blocks: Vec::new(),
        }
    }

    /// A message of `role` with one text part.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        let mut m = Message::new(role);
        m.content.push(ContentPart::Text(text.into()));
        m
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Message::text(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Message::text(Role::User, text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message::text(Role::Assistant, text)
    }

    /// A tool result answering the call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        let mut m = Message::text(Role::Tool, content);
        m.tool_call_id = Some(tool_call_id.into());
        m
    }

    /// Adds a content part.
    pub fn with_part(mut self, part: ContentPart) -> Self {
        self.content.push(part);
        self
    }

    /// Adds a tool call (assistant messages).
    pub fn with_tool_call(mut self, call: ToolCall) -> Self {
        self.tool_calls.push(call);
        self
    }

    /// Marks a tool result as a failure.
    pub fn with_error(mut self, is_error: bool) -> Self {
        self.is_error = is_error;
        self
    }

    /// Sets the reasoning (and its signature) of an assistant turn.
    pub fn with_reasoning(
        mut self,
        reasoning: impl Into<String>,
        signature: Option<String>,
    ) -> Self {
        self.reasoning = Some(reasoning.into());
        self.reasoning_signature = signature;
        self
    }

    /// All text parts joined, without separators.
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text(t) = part {
                out.push_str(t);
            }
        }
        out
    }
}
