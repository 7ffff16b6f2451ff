use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Event(String, String),
    Stray(String),
}

fn decode_pieces(pieces: &[&[u8]]) -> Result<Vec<Owned>, Error> {
    let mut out = Vec::new();
    let mut on = |item: SseItem<'_>| {
        out.push(match item {
            SseItem::Event(e) => Owned::Event(e.event.to_owned(), e.data.to_owned()),
            SseItem::Stray(s) => Owned::Stray(s.to_owned()),
        });
        Ok(())
    };
    let mut d = SseDecoder::default();
    for p in pieces {
        d.feed(p, &mut on)?;
    }
    d.finish(&mut on)?;
    Ok(out)
}

fn decode(input: &[u8]) -> Vec<Owned> {
    decode_pieces(&[input]).unwrap()
}

fn ev(event: &str, data: &str) -> Owned {
    Owned::Event(event.into(), data.into())
}

#[test]
fn line_endings_lf_crlf_and_lone_cr() {
    let expected = vec![ev("", "a"), ev("", "b")];
    assert_eq!(decode(b"data: a\n\ndata: b\n\n"), expected);
    assert_eq!(decode(b"data: a\r\n\r\ndata: b\r\n\r\n"), expected);
    assert_eq!(decode(b"data: a\r\rdata: b\r\r"), expected);
    assert_eq!(decode(b"data: a\r\n\rdata: b\n\r\n"), expected);
}

#[test]
fn crlf_split_across_reads_is_one_line_end() {
    let out = decode_pieces(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n", b"\r\n"]).unwrap();
    assert_eq!(out, vec![ev("", "a"), ev("", "b")]);
}

#[test]
fn leading_bom_is_stripped_once() {
    assert_eq!(decode(b"\xEF\xBB\xBFdata: a\n\n"), vec![ev("", "a")]);
    let out = decode_pieces(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]).unwrap();
    assert_eq!(out, vec![ev("", "a")]);
    // A BOM anywhere else is data.
    assert_eq!(
        decode(b"data: a\n\ndata: \xEF\xBB\xBFb\n\n")[1],
        ev("", "\u{feff}b")
    );
}

#[test]
fn comments_are_ignored() {
    assert_eq!(
        decode(b": keep-alive\n\n: ping\ndata: a\n: mid\n\n"),
        vec![ev("", "a")]
    );
}

#[test]
fn multi_line_data_joins_with_lf() {
    assert_eq!(
        decode(b"data: a\ndata:b\ndata:  c\n\n"),
        vec![ev("", "a\nb\n c")]
    );
    assert_eq!(decode(b"data\ndata\n\n"), vec![ev("", "\n")]);
}

#[test]
fn event_without_data_dispatches_nothing() {
    assert_eq!(
        decode(b"event: ping\n\nevent: x\ndata: 1\n\n"),
        vec![ev("x", "1")]
    );
    // The event name does not leak into the next event.
    assert_eq!(decode(b"event: x\n\ndata: 1\n\n"), vec![ev("", "1")]);
}

#[test]
fn unfinished_event_at_eof_is_dropped() {
    assert_eq!(decode(b"data: a\n\ndata: b"), vec![ev("", "a")]);
    assert_eq!(decode(b"data: a\n\ndata: b\n"), vec![ev("", "a")]);
}

#[test]
fn utf8_split_across_reads() {
    let text = "data: héllo → 🌍\n\n".as_bytes();
    for split in 0..text.len() {
        let out = decode_pieces(&[&text[..split], &text[split..]]).unwrap();
        assert_eq!(out, vec![ev("", "héllo → 🌍")], "split at {split}");
    }
}

#[test]
fn invalid_utf8_is_a_decode_error() {
    let err = decode_pieces(&[b"data: \xff\xfe\n\n"]).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Decode);
}

#[test]
fn done_marker_is_plain_data() {
    assert_eq!(decode(b"data: [DONE]\n\n"), vec![ev("", "[DONE]")]);
}

#[test]
fn id_and_retry_are_ignored_and_unknown_lines_are_stray() {
    assert_eq!(decode(b"id: 1\nretry: 5\ndata: a\n\n"), vec![ev("", "a")]);
    assert_eq!(
        decode(b"{\n  \"error\": {\n    \"code\": 429\n  }\n}\n"),
        vec![Owned::Stray(
            "{\n  \"error\": {\n    \"code\": 429\n  }\n}".into()
        )]
    );
    assert_eq!(
        decode(b"{\"error\":{\"code\":503}}"),
        vec![Owned::Stray("{\"error\":{\"code\":503}}".into())]
    );
}

#[test]
fn one_mebibyte_line_in_small_pieces_is_linear() {
    let payload = "x".repeat(1 << 20);
    let input = format!("data: {payload}\n\n");
    let pieces: Vec<&[u8]> = input.as_bytes().chunks(7).collect();
    let start = std::time::Instant::now();
    let out = decode_pieces(&pieces).unwrap();
    assert_eq!(out, vec![ev("", &payload)]);
    // Not a timing assertion on speed, only a guard against quadratic copying (which would take
    // minutes for 150,000 pieces).
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn oversized_line_is_refused() {
    let mut d = SseDecoder::new(10);
    let mut on = |_: SseItem<'_>| Ok(());
    let err = d.feed(b"data: 0123456789", &mut on).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Decode);
}

/// A straightforward reference decoder over the whole input, line by line.
fn reference(input: &[u8]) -> Vec<Owned> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(input).into_owned();
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let complete = normalized.ends_with('\n');
    let mut lines: Vec<&str> = normalized.split('\n').collect();
    if complete {
        lines.pop();
    }
    let mut out = Vec::new();
    let (mut data, mut event, mut has) = (String::new(), String::new(), false);
    let n = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let last_partial = !complete && i + 1 == n;
        if line.is_empty() {
            if has {
                out.push(Owned::Event(event.clone(), data.clone()));
            }
            data.clear();
            event.clear();
            has = false;
            continue;
        }
        if last_partial || line.starts_with(':') {
            continue;
        }
        let (f, v) = line.split_once(':').unwrap_or((line, ""));
        let v = v.strip_prefix(' ').unwrap_or(v);
        match f {
            "data" => {
                if has {
                    data.push('\n');
                }
                data.push_str(v);
                has = true;
            }
            "event" => event = v.to_owned(),
            _ => {}
        }
    }
    out
}

proptest! {
    #[test]
    fn any_split_decodes_like_the_reference(
        events in proptest::collection::vec(
            (prop_oneof!["", "message_start", "x"], "[a-z é🌍:\\[\\]{}\"]{0,12}", 0usize..3, 0usize..3),
            0..8),
        splits in proptest::collection::vec(0usize..200, 0..12),
    ) {
        let mut input = String::new();
        for (i, (event, data, eol, extra)) in events.iter().enumerate() {
            let eol = ["\n", "\r\n", "\r"][*eol];
            if i % 3 == 0 { input.push_str(": comment"); input.push_str(eol); }
            if !event.is_empty() { input.push_str("event: "); input.push_str(event); input.push_str(eol); }
            for _ in 0..=*extra { input.push_str("data: "); input.push_str(data); input.push_str(eol); }
            input.push_str(eol);
        }
        let bytes = input.as_bytes();
        let mut cuts: Vec<usize> = splits.into_iter().map(|s| s.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for c in cuts { pieces.push(&bytes[prev..c]); prev = c; }
        pieces.push(&bytes[prev..]);
        let got: Vec<Owned> = decode_pieces(&pieces).unwrap()
            .into_iter().filter(|o| matches!(o, Owned::Event(..))).collect();
        prop_assert_eq!(got, reference(bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
        let cut = cut.min(input.len());
        let _ = decode_pieces(&[&input[..cut], &input[cut..]]);
    }
}
