use std::collections::VecDeque;

use super::*;
use crate::types::FinishReason;
use crate::types::stream::StreamMeta;

#[derive(Default)]
struct Harness {
    decoder: GeminiStream,
    deltas: VecDeque<Delta>,
    meta: StreamMeta,
}

impl Harness {
    fn event(&mut self, data: &str) -> Result<Vec<Delta>, Error> {
        let mut out = StreamOut {
            deltas: &mut self.deltas,
            meta: &mut self.meta,
        };
        self.decoder
            .on_event(SseEvent { event: "", data }, &mut out)?;
        Ok(self.deltas.drain(..).collect())
    }

    fn stray(&mut self, text: &str) -> Result<Vec<Delta>, Error> {
        let mut out = StreamOut {
            deltas: &mut self.deltas,
            meta: &mut self.meta,
        };
        self.decoder.on_stray(text, &mut out)?;
        Ok(self.deltas.drain(..).collect())
    }
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    }
}

#[test]
fn text_increments_usage_changes_and_the_final_finish_reason() {
    let mut h = Harness::default();
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 5},"modelVersion": "gemini-2.5-flash","responseId": "r1"}"#)
        .unwrap();
    assert_eq!(
        d,
        vec![Delta::Text("Hel".into()), Delta::Usage(usage(5, 0))]
    );
    assert_eq!(h.meta.id.as_deref(), Some("r1"));
    assert_eq!(h.meta.model.as_deref(), Some("gemini-2.5-flash"));
    assert!(!h.decoder.is_done());
    // Unchanged totals are not repeated; an empty text part yields nothing.
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "lo"}, {"text": ""}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 5},"modelVersion": "other","responseId": "r2"}"#)
        .unwrap();
    assert_eq!(d, vec![Delta::Text("lo".into())]);
    assert_eq!(h.meta.id.as_deref(), Some("r1"));
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "!"}],"role": "model"},"finishReason": "MAX_TOKENS"}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 3,"totalTokenCount": 8}}"#)
        .unwrap();
    assert_eq!(
        d,
        vec![
            Delta::Text("!".into()),
            Delta::Usage(usage(5, 3)),
            Delta::Finish(FinishReason::Length)
        ]
    );
    assert!(h.decoder.is_done());
}

#[test]
fn whole_function_calls_with_signatures() {
    let mut h = Harness::default();
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},"thoughtSignature": "c2ln"},{"functionCall": {"id": "fc-2","name": "get_time","args": {}}}],"role": "model"},"finishReason": "STOP"}]}"#)
        .unwrap();
    let Delta::ToolCall {
        index: 0,
        id: Some(id),
        name: Some(name),
        arguments,
    } = &d[0]
    else {
        panic!("{d:?}");
    };
    assert!(id.starts_with("call_0_"), "{id}");
    assert_eq!(name, "get_weather");
    assert_eq!(arguments, r#"{"city": "Paris"}"#);
    assert_eq!(
        d[1..],
        [
            Delta::ToolCallSignature {
                index: 0,
                signature: "c2ln".into()
            },
            Delta::ToolCall {
                index: 1,
                id: Some("fc-2".into()),
                name: Some("get_time".into()),
                arguments: "{}".into()
            },
            Delta::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn thoughts_are_reasoning_and_the_first_text_signature_is_kept() {
    let mut h = Harness::default();
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "**Planning**","thought": true}],"role": "model"}}]}"#)
        .unwrap();
    assert_eq!(d, vec![Delta::Reasoning("**Planning**".into())]);
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "Done.","thoughtSignature": "Zmlyc3Q="}],"role": "model"}}]}"#)
        .unwrap();
    assert_eq!(
        d,
        vec![
            Delta::Text("Done.".into()),
            Delta::ReasoningSignature("Zmlyc3Q=".into())
        ]
    );
    let d = h
        .event(r#"{"candidates": [{"content": {"parts": [{"text": "","thoughtSignature": "c2Vjb25k"}],"role": "model"},"finishReason": "STOP"}]}"#)
        .unwrap();
    assert_eq!(d, vec![Delta::Finish(FinishReason::Stop)]);
}

#[test]
fn errors_inside_the_stream() {
    // As a data event.
    let mut h = Harness::default();
    let err = h
        .event(r#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.message(), "The model is overloaded.");
    assert_eq!(h.event("not json").unwrap_err().kind(), ErrorKind::Decode);

    // As bare text, pretty-printed, wrapped in an array, split across two dispatches.
    let mut h = Harness::default();
    assert_eq!(
        h.stray("[{\n  \"error\": {\n    \"code\": 500,").unwrap(),
        vec![]
    );
    let err = h
        .stray("    \"message\": \"An internal error has occurred.\",\n    \"status\": \"INTERNAL\"\n  }\n}\n]")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.code(), Some("INTERNAL"));

    // A rate limit keeps its retry hint.
    let mut h = Harness::default();
    let err = h
        .stray(r#"{"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}}"#)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(7)));

    // Stray text that is not JSON is ignored; JSON that is not an error is a decode error.
    let mut h = Harness::default();
    assert_eq!(h.stray("x-proxy-note: hello").unwrap(), vec![]);
    assert_eq!(
        h.stray("{\"hello\": 1}").unwrap_err().kind(),
        ErrorKind::Decode
    );
    assert_eq!(h.stray("{\"a\" 1}").unwrap_err().kind(), ErrorKind::Decode);
}

#[test]
fn a_blocked_prompt_ends_the_stream_with_an_error() {
    let mut h = Harness::default();
    let err = h
        .event(r#"{"promptFeedback": {"blockReason": "SAFETY","safetyRatings": []},"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.5-flash","responseId": "b1"}"#)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFilter);
    assert_eq!(err.code(), Some("SAFETY"));
    // A chunk with usage only (no candidates, no block) passes the usage on.
    let mut h = Harness::default();
    assert_eq!(
        h.event(r#"{"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8}}"#)
            .unwrap(),
        vec![Delta::Usage(usage(8, 0))]
    );
}
