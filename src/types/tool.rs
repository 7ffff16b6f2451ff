//! Tools the model may call, and its calls.

use serde_json::Value;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// Its parameters, as a JSON Schema object.
    pub parameters: Value,
    /// OpenAI's strict schema adherence; ignored elsewhere.
    pub strict: Option<bool>,
}

impl Tool {
    /// A function tool with a JSON Schema for its parameters.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        Tool {
            name: name.into(),
            description: Some(description.into()),
            parameters,
            strict: None,
        }
    }

    /// Asks for strict schema adherence (OpenAI).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = Some(strict);
        self
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call at least one tool (Anthropic `any`).
    Required,
    /// The model must call this function.
    Function(String),
}

/// A call the model made to a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The provider's id for the call; a tool result answers it by this id.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as a JSON text (as the model wrote it: it may be invalid JSON).
    pub arguments: String,
    /// An opaque signature the provider wants back with the call (Gemini `thoughtSignature`).
    pub signature: Option<String>,
}

impl ToolCall {
    /// A tool call with JSON `arguments`.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
            signature: None,
        }
    }

    /// The arguments parsed as JSON.
    ///
    /// # Errors
    /// `ErrorKind::Decode` when the model wrote invalid JSON.
    pub fn parse_arguments(&self) -> Result<Value, crate::Error> {
        let text = if self.arguments.trim().is_empty() {
            "{}"
        } else {
            &self.arguments
        };
        serde_json::from_str(text).map_err(|e| {
            crate::Error::decode(format!(
                "tool call `{}` has invalid JSON arguments: {e}",
                self.name
            ))
        })
    }
}
