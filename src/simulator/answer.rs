//! Resolving a scenario's answer against the request it serves: echo text, default model and
//! estimated token counts. The wire renderers then only format an [`Answer`].

use super::request::Call;
use super::scenario::{AnswerSpec, TextSpec, ToolCallSpec};

/// A concrete assistant answer, ready to render in any wire format.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) reasoning: Option<String>,
    pub(super) tool_calls: Vec<ToolCallSpec>,
    pub(super) usage: Usage,
    pub(super) model: String,
    pub(super) chunk_chars: usize,
}

/// Token counts in the normalized convention: `input` includes `cached`, `output` includes
/// `reasoning`. Renderers convert to each provider's own convention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Usage {
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) cached: u64,
    pub(super) reasoning: u64,
}

impl Answer {
    pub(super) fn resolve(spec: &AnswerSpec, call: &Call) -> Answer {
        let mut tool_calls = spec.tool_calls.clone();
        let text = match &spec.text {
            TextSpec::Fixed(text) => text.clone(),
            // Forced to call a function, an echo answer calls it (with no arguments).
            TextSpec::Echo if tool_calls.is_empty() && call.forced_tool.is_some() => {
                tool_calls.push(ToolCallSpec {
                    id: format!("call_sim{:08}", call.serial),
                    name: call.forced_tool.clone().unwrap_or_default(),
                    arguments: "{}".into(),
                });
                String::new()
            }
            TextSpec::Echo => format!("You said: {}", call.last_user_text),
        };
        let reasoning_chars = spec.reasoning.as_deref().map_or(0, |r| r.chars().count());
        let output_chars = text.chars().count()
            + reasoning_chars
            + tool_calls
                .iter()
                .map(|t| t.name.chars().count() + t.arguments.chars().count())
                .sum::<usize>();
        let (input, output) = spec.usage.unwrap_or_else(|| {
            (
                estimate_tokens(call.prompt_chars),
                estimate_tokens(output_chars),
            )
        });
        let reasoning = spec
            .reasoning_tokens
            .unwrap_or(if spec.reasoning.is_some() {
                estimate_tokens(reasoning_chars)
            } else {
                0
            });
        Answer {
            text,
            reasoning: spec.reasoning.clone(),
            tool_calls,
            usage: Usage {
                input,
                output,
                cached: spec.cached_tokens,
                reasoning,
            },
            model: spec.model.clone().unwrap_or_else(|| call.model.clone()),
            chunk_chars: spec.chunk_chars,
        }
    }

    /// Whether the answer ends in tool calls, which decides the finish/stop reason.
    pub(super) fn calls_tools(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}

/// About one token per four characters, and at least one, as the scenario docs promise.
fn estimate_tokens(chars: usize) -> u64 {
    (chars.div_ceil(4) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{Scenario, Wire};

    fn call() -> Call {
        Call {
            wire: Wire::OpenAi,
            model: "requested".into(),
            stream: false,
            sse: false,
            include_usage: false,
            last_user_text: "hello".into(),
            forced_tool: None,
            prompt_chars: 9,
            serial: 1,
        }
    }

    #[test]
    fn echo_and_estimates() {
        let a = Answer::resolve(&Scenario::echo().answer, &call());
        assert_eq!(a.text, "You said: hello");
        assert_eq!(a.model, "requested");
        // 9 prompt chars → 3 tokens; 15 answer chars → 4 tokens.
        assert_eq!(
            a.usage,
            Usage {
                input: 3,
                output: 4,
                cached: 0,
                reasoning: 0
            }
        );
    }

    #[test]
    fn explicit_values_win() {
        let spec = Scenario::text("")
            .with_reasoning("think")
            .with_usage(100, 50)
            .with_cached_tokens(40)
            .with_model("snapshot")
            .answer;
        let a = Answer::resolve(&spec, &call());
        assert_eq!(
            a.usage,
            Usage {
                input: 100,
                output: 50,
                cached: 40,
                reasoning: 2
            }
        );
        assert_eq!(a.model, "snapshot");
        let a = Answer::resolve(
            &Scenario::text("x").with_reasoning_tokens(7).answer,
            &call(),
        );
        assert_eq!(a.usage.reasoning, 7);
        assert_eq!(a.usage.output, 1);
    }
}
