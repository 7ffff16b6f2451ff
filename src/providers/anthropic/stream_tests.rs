use std::collections::VecDeque;

use super::*;
use crate::types::stream::StreamMeta;
use crate::types::{FinishReason, Usage};

/// Feeds `(event, data)` frames to a fresh decoder; returns the deltas, the metadata, whether
/// it is done, and the first error.
fn run(frames: &[(&str, &str)]) -> (Vec<Delta>, StreamMeta, bool, Option<Error>) {
    let mut decoder = AnthropicStream::default();
    let mut deltas = VecDeque::new();
    let mut meta = StreamMeta::default();
    let mut error = None;
    for (event, data) in frames {
        let mut out = StreamOut {
            deltas: &mut deltas,
            meta: &mut meta,
        };
        if let Err(e) = decoder.on_event(SseEvent { event, data }, &mut out) {
            error = Some(e);
            break;
        }
    }
    (deltas.into(), meta, decoder.is_done(), error)
}

const START: (&str, &str) = (
    "message_start",
    r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}}"#,
);
const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

#[test]
fn text_stream_with_one_total_usage() {
    let (deltas, meta, done, error) = run(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        ("ping", r#"{"type": "ping"}"#),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", \"world\" \u00e9"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}"#,
        ),
        STOP,
    ]);
    assert!(error.is_none());
    assert!(done);
    assert_eq!(meta.id.as_deref(), Some("msg_1"));
    assert_eq!(meta.model.as_deref(), Some("claude-x"));
    assert_eq!(
        deltas,
        vec![
            Delta::Text("Hello".into()),
            Delta::Text(", \"world\" é".into()),
            Delta::Finish(FinishReason::Stop),
            Delta::Usage(Usage {
                input_tokens: 135,
                output_tokens: 12,
                cached_input_tokens: 100,
                cache_creation_input_tokens: 10,
                cache_creation_1h_input_tokens: 0,
                reasoning_tokens: 0,
            }),
        ]
    );
}

#[test]
fn message_delta_usage_replaces_start_usage_without_double_counting() {
    // Newer servers repeat the (cumulative) input counts in message_delta.
    let (deltas, ..) = run(&[
        START,
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":30}}"#,
        ),
        STOP,
    ]);
    assert_eq!(deltas[0], Delta::Finish(FinishReason::Length));
    let Delta::Usage(u) = deltas[1] else {
        panic!("{deltas:?}")
    };
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cached_input_tokens),
        (135, 30, 100)
    );
    assert_eq!(deltas.len(), 2);
}

#[test]
fn tool_calls_are_indexed_by_ordinal_not_block_index() {
    let (deltas, _, done, error) = run(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"get_weather","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"now","input":{}}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":2}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}"#,
        ),
        STOP,
    ]);
    assert!(error.is_none() && done);
    let call = |index, id: Option<&str>, name: Option<&str>, arguments: &str| Delta::ToolCall {
        index,
        id: id.map(Into::into),
        name: name.map(Into::into),
        arguments: arguments.into(),
    };
    assert_eq!(
        deltas[..7],
        [
            Delta::Text("Checking.".into()),
            call(0, Some("toolu_A"), Some("get_weather"), ""),
            call(0, None, None, "{\"city\": \"Pa"),
            call(0, None, None, "ris\"}"),
            call(1, Some("toolu_B"), Some("now"), ""),
            // A call without arguments gets `{}` (valid JSON) when its block stops.
            call(1, None, None, "{}"),
            Delta::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn a_tool_call_without_arguments_gets_an_empty_object() {
    let frames = |deltas: &[&'static str]| {
        let mut frames = vec![
            START,
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"now","input":{}}}"#,
            ),
        ];
        frames.extend(deltas.iter().map(|d| ("content_block_delta", *d)));
        frames.extend([
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            ),
            STOP,
        ]);
        frames
    };
    let empty = r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#;
    for pieces in [&[][..], &[empty][..], &[empty, empty][..]] {
        let (deltas, _, done, error) = run(&frames(pieces));
        assert!(error.is_none() && done);
        let calls: Vec<_> = deltas
            .iter()
            .filter(|d| matches!(d, Delta::ToolCall { .. }))
            .cloned()
            .collect();
        assert_eq!(
            calls,
            [
                Delta::ToolCall {
                    index: 0,
                    id: Some("toolu_1".into()),
                    name: Some("now".into()),
                    arguments: String::new(),
                },
                Delta::ToolCall {
                    index: 0,
                    id: None,
                    name: None,
                    arguments: "{}".into(),
                },
            ],
            "{} empty fragments",
            pieces.len()
        );
    }
}

#[test]
fn thinking_and_signature_deltas() {
    let (deltas, ..) = run(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me add."}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"4"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
        ),
        STOP,
    ]);
    assert_eq!(
        deltas[..3],
        [
            Delta::Reasoning("Let me add.".into()),
            Delta::ReasoningSignature("EqQBCgIYAhIM".into()),
            Delta::Text("4".into()),
        ]
    );
    // No message_delta: message_stop still sends the usage message_start reported.
    assert!(matches!(
        deltas[3],
        Delta::Usage(Usage {
            input_tokens: 135,
            output_tokens: 1,
            ..
        })
    ));
}

#[test]
fn server_tool_blocks_are_skipped() {
    let (deltas, _, _, error) = run(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        ),
    ]);
    assert!(error.is_none());
    assert_eq!(
        deltas,
        vec![Delta::ToolCall {
            index: 0,
            id: Some("toolu_1".into()),
            name: Some("f".into()),
            arguments: String::new()
        }]
    );
}

#[test]
fn json_delta_for_an_unknown_block_is_a_decode_error() {
    let (_, _, _, error) = run(&[(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
    )]);
    assert_eq!(error.unwrap().kind(), ErrorKind::Decode);
}

#[test]
fn error_events_carry_their_kind() {
    for (kind, expected) in [
        ("overloaded_error", ErrorKind::Overloaded),
        ("rate_limit_error", ErrorKind::RateLimited),
        ("api_error", ErrorKind::Server),
        ("timeout_error", ErrorKind::Timeout),
        ("invalid_request_error", ErrorKind::InvalidRequest),
        ("something_new", ErrorKind::Server),
    ] {
        let data =
            format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"Overloaded"}}}}"#);
        let (deltas, _, done, error) = run(&[START, ("error", &data)]);
        let error = error.unwrap();
        assert_eq!(error.kind(), expected, "{kind}");
        assert_eq!(error.code(), Some(kind));
        assert_eq!(error.message(), "Overloaded");
        assert!(deltas.is_empty() && !done);
    }
}

#[test]
fn events_without_an_event_line_dispatch_on_their_type() {
    let (deltas, meta, done, _) = run(&[
        ("", START.1),
        (
            "",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
        ),
        ("", r#"{"type":"message_stop"}"#),
    ]);
    assert_eq!(meta.id.as_deref(), Some("msg_1"));
    assert_eq!(deltas[0], Delta::Text("Hi".into()));
    assert!(done);
}

#[test]
fn unknown_events_are_ignored_and_malformed_json_is_a_decode_error() {
    let (deltas, _, done, error) = run(&[
        ("future_event", r#"{"type":"future_event","x":1}"#),
        ("ping", ""),
    ]);
    assert!(deltas.is_empty() && !done && error.is_none());
    let (_, _, _, error) = run(&[(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"#,
    )]);
    assert_eq!(error.unwrap().kind(), ErrorKind::Decode);
}
