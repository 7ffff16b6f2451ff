//! Token counts of prompts: a fast estimate for every model, and exact counts for OpenAI models
//! with the `tokenizer` feature.
//!
//! [`estimate_text`] reads a text once, byte by byte, without allocating. It follows the way
//! OpenAI's `o200k_base` encoding splits text before byte-pair merging (words with their leading
//! space, digit groups of three, runs of punctuation, runs of whitespace) and weighs each piece
//! by its length, as the merges would. On English prose and on Rust, Python and JavaScript source
//! it is within about 7 % of tiktoken's count (the test suite holds it to 15 %); other scripts
//! are counted more roughly.
//!
//! [`estimate_request`] adds up a whole [`ChatRequest`]: every message's text, tool calls and
//! tool results, the per-message framing, tool definitions and the response schema, and a fixed
//! count per image and audio part. It is what a router's budgets and rules call before each
//! request, so it allocates nothing.
//!
//! [`count_request`] counts exactly with tiktoken when the `tokenizer` feature is on and the model
//! is an OpenAI one, and estimates otherwise; callers need no `cfg`.
//!
//! ```
//! use modelgate::{ChatRequest, ContentPart};
//! use modelgate::tokens::{self, IMAGE_TOKENS_HIGH};
//!
//! assert_eq!(tokens::estimate_text(""), 0);
//! let words = tokens::estimate_text("The quick brown fox jumps over the lazy dog.");
//! assert!((9..=11).contains(&words));
//!
//! let req = ChatRequest::new("gpt-4o-mini")
//!     .system("You are terse.")
//!     .user_parts([
//!         ContentPart::text("What is in this picture?"),
//!         ContentPart::image_url("https://example.com/cat.png"),
//!     ]);
//! let estimate = tokens::estimate_request(&req);
//! assert!(estimate > IMAGE_TOKENS_HIGH);
//! // Exact for OpenAI models with the `tokenizer` feature, the same estimate without it.
//! let counted = tokens::count_request("gpt-4o-mini", &req);
//! assert!(counted > IMAGE_TOKENS_HIGH);
//! ```

use serde_json::Value;

use crate::types::{ChatRequest, ContentPart, Message, ResponseFormat};

/// Tokens counted for an image whose `detail` is `"low"`: OpenAI's fixed 85 for a low-detail
/// image, whatever its size.
pub const IMAGE_TOKENS_LOW: u64 = 85;

/// Tokens counted for any other image (`detail` `"high"`, `"auto"` or unset): OpenAI's 765 for a
/// high-detail 1024×1024 image (85 + 170 for each of its four 512-pixel tiles). The size of an
/// image is not read (that would mean decoding it), so larger images are undercounted and
/// smaller ones overcounted. Anthropic counts about (width × height) / 750, some 1,400 for
/// 1024×1024; Gemini 258 per image.
pub const IMAGE_TOKENS_HIGH: u64 = 765;

/// Tokens counted for an audio part: 200, about 20 seconds of speech at OpenAI's rate of some
/// ten input tokens per second of audio. The audio is not decoded to read its length.
pub const AUDIO_PART_TOKENS: u64 = 200;

/// Tokens framing each message in OpenAI's chat format (`<|start|>role<|message|>…<|end|>`):
/// 3, plus 1 for the role.
const PER_MESSAGE: u64 = 4;
/// A participant `name` costs one token beside its text.
const PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;
/// Framing of one tool call in an assistant message (the call's header and separators).
const PER_TOOL_CALL: u64 = 3;
/// The preamble OpenAI adds when tools are offered (`namespace functions { … }`).
const TOOLS_PREAMBLE: u64 = 12;
/// Framing of one tool definition (`type name = (_: {…}) => any;` and its comment).
const PER_TOOL: u64 = 8;
/// Framing of a response schema.
const RESPONSE_FORMAT: u64 = 8;
/// Nesting deeper than this in a JSON schema is not walked further (counted as one token), so
/// a hostile schema cannot exhaust the stack.
const MAX_SCHEMA_DEPTH: usize = 32;

/// An estimate of how many tokens `text` takes in OpenAI's `o200k_base` encoding (GPT-4o,
/// GPT-4.1, GPT-5, o-series), and roughly in other providers' tokenizers.
///
/// One pass over the bytes, no allocation; never fails and never panics. Empty text is 0
/// tokens, any other text at least 1. Within about 7 % of tiktoken on English prose and source
/// code (Rust, Python, JavaScript); CJK and Cyrillic text is counted more roughly (within
/// some 15 % on the samples tried).
pub fn estimate_text(text: &str) -> u64 {
    let b = text.as_bytes();
    let n = b.len();
    let mut milli: u64 = 0;
    let mut i = 0;
    while i < n {
        match class(b[i]) {
            Class::Letter => i = word(b, i, Prefix::None, &mut milli),
            Class::Digit => {
                // o200k splits numbers into groups of up to three digits, each one token.
                let start = i;
                while i < n && b[i].is_ascii_digit() {
                    i += 1;
                }
                milli += ((i - start) as u64).div_ceil(3) * W_DIGITS;
            }
            Class::Space | Class::Newline => {
                // Whitespace up to its last line break is one piece (`\s*[\r\n]+`).
                let start = i;
                let mut last_break = None;
                while i < n && matches!(class(b[i]), Class::Space | Class::Newline) {
                    if class(b[i]) == Class::Newline {
                        last_break = Some(i);
                    }
                    i += 1;
                }
                if let Some(at) = last_break {
                    milli += W_NEWLINE;
                    i = at + 1;
                    continue;
                }
                // Spaces: all but the last are one piece; the last one leads the next word or
                // punctuation, or stands alone before a digit.
                let run = i - start;
                if run > 1 {
                    milli += W_SPACES;
                }
                match b.get(i).map(|&c| class(c)) {
                    Some(Class::Letter) => i = word(b, i, Prefix::Space, &mut milli),
                    Some(Class::Punct) => i = punct(b, i, &mut milli),
                    None if run > 1 => {}
                    _ => milli += W_SPACES,
                }
            }
            Class::Punct => {
                // One punctuation character right before a word leads it (`(self`, `.get`,
                // `_id`); a longer run is a piece of its own.
                if b.get(i + 1).is_some_and(|&c| class(c) == Class::Letter) {
                    i = word(b, i + 1, Prefix::Punct, &mut milli);
                } else {
                    i = punct(b, i, &mut milli);
                }
            }
        }
    }
    // Every piece costs at least one token, so any text rounds to at least one.
    (milli + 500) / 1000
}

// Weights in thousandths of a token, read off tiktoken's o200k_base on prose and code: the
// average tokens per piece, by kind and length (see the `tokenizer` feature's accuracy test).

/// A word without a leading space or punctuation (a line's first, the rest of `camelCase`).
const W_WORD: u64 = 1030;
/// Letters of a bare word that still fit in its first token, and the cost of each letter more.
const W_WORD_FREE: u64 = 6;
const W_WORD_PER: u64 = 180;
/// A word with its leading space: most common words up to seven letters are one token.
const W_SPACE_WORD: u64 = 1000;
const W_SPACE_WORD_FREE: u64 = 7;
const W_SPACE_WORD_PER: u64 = 90;
/// A word led by one punctuation character (`(self`, `_inner`), which merges less often.
const W_PUNCT_WORD: u64 = 1050;
const W_PUNCT_WORD_FREE: u64 = 4;
const W_PUNCT_WORD_PER: u64 = 230;
/// A run of punctuation: up to two characters are one token, each more about 0.4.
const W_PUNCT: u64 = 1000;
const W_PUNCT_FREE: u64 = 2;
const W_PUNCT_PER: u64 = 400;
/// A run of spaces, a line break (with the whitespace around it), a group of digits.
const W_SPACES: u64 = 1000;
const W_NEWLINE: u64 = 1000;
const W_DIGITS: u64 = 1000;
/// Each non-ASCII character inside a word, by its UTF-8 length: two bytes (accented Latin,
/// Cyrillic, Greek, Arabic, Hebrew) merge well; three (CJK, Indic) about 0.6 each; four (emoji)
/// 1.5.
const W_UTF8_2: u64 = 70;
const W_UTF8_3: u64 = 620;
const W_UTF8_4: u64 = 1500;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Newline,
    Punct,
}

/// The class of a byte; every non-ASCII byte counts as a letter (most non-ASCII text is).
#[inline]
fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' | 0x80..=0xff => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b' ' | b'\t' | 0x0b | 0x0c => Class::Space,
        b'\n' | b'\r' => Class::Newline,
        _ => Class::Punct,
    }
}

/// What leads a word.
#[derive(Clone, Copy)]
enum Prefix {
    None,
    Space,
    Punct,
}

/// A run of punctuation from `i` with the line breaks and slashes that follow it; returns where
/// it ends.
fn punct(b: &[u8], mut i: usize, milli: &mut u64) -> usize {
    let start = i;
    while i < b.len() && class(b[i]) == Class::Punct {
        i += 1;
    }
    *milli += W_PUNCT + ((i - start) as u64).saturating_sub(W_PUNCT_FREE) * W_PUNCT_PER;
    while i < b.len() && matches!(b[i], b'\n' | b'\r' | b'/') {
        i += 1;
    }
    i
}

/// One word from `i` (a letter): upper-case letters then lower-case ones, as o200k splits
/// `HashMap` into `Hash` and `Map`, with an English contraction (`'s`, `'ll`) at its end.
/// Returns where it ends.
fn word(b: &[u8], mut i: usize, prefix: Prefix, milli: &mut u64) -> usize {
    let n = b.len();
    let mut ascii: u64 = 0;
    let mut extra: u64 = 0;
    let mut seen_lower = false;
    while i < n {
        let c = b[i];
        if c.is_ascii_lowercase() {
            seen_lower = true;
            ascii += 1;
        } else if c.is_ascii_uppercase() {
            if seen_lower {
                break;
            }
            ascii += 1;
        } else if c >= 0xc0 {
            // The first byte of a non-ASCII character; continuation bytes cost nothing.
            seen_lower = true;
            extra += match c {
                0xf0.. => W_UTF8_4,
                0xe0.. => W_UTF8_3,
                _ => W_UTF8_2,
            };
        } else if c < 0x80 {
            if c == b'\'' && seen_lower {
                let len = contraction(&b[i + 1..]);
                i += len + usize::from(len > 0);
            }
            break;
        }
        i += 1;
    }
    let (base, free, per) = match prefix {
        Prefix::None => (W_WORD, W_WORD_FREE, W_WORD_PER),
        Prefix::Space => (W_SPACE_WORD, W_SPACE_WORD_FREE, W_SPACE_WORD_PER),
        Prefix::Punct => (W_PUNCT_WORD, W_PUNCT_WORD_FREE, W_PUNCT_WORD_PER),
    };
    *milli += base + ascii.saturating_sub(free) * per + extra;
    i
}

/// The length of the contraction (`s`, `t`, `m`, `d`, `re`, `ve`, `ll`) that `rest` starts with
/// after an apostrophe, or 0.
fn contraction(rest: &[u8]) -> usize {
    let at = |k: usize| rest.get(k).map(u8::to_ascii_lowercase);
    let len = match (at(0), at(1)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => 1,
        (Some(b'r' | b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => 2,
        _ => 0,
    };
    if len > 0 && rest.get(len).is_some_and(u8::is_ascii_alphabetic) {
        0
    } else {
        len
    }
}

/// An estimate of the input tokens of `req`'s prompt, as OpenAI counts a chat prompt.
///
/// Counted: every message's text parts, participant name, tool calls (name and arguments) and
/// tool results, with [OpenAI's framing](https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken)
/// of 4 tokens per message (1 more with a name) and 3 priming the reply; each tool definition
/// (name, description and JSON schema, keys and string values counted as text) with its
/// framing; the response format's schema; [`IMAGE_TOKENS_LOW`] for an image with `detail`
/// `"low"`, [`IMAGE_TOKENS_HIGH`] for any other; [`AUDIO_PART_TOKENS`] per audio part. Not
/// counted: reasoning of earlier turns and signatures (providers drop or do not bill them as
/// prompt), metadata (never sent) and extra fields.
///
/// Never fails or panics and does not allocate. Other providers count their own way: treat the
/// figure as an estimate for them (within some 10-20 % for text).
pub fn estimate_request(req: &ChatRequest) -> u64 {
    request_tokens(req, &estimate_text)
}

/// The input tokens of `req`'s prompt for `model`: counted exactly with tiktoken when the
/// `tokenizer` feature is on and `model` is an OpenAI model (`o200k_base` for GPT-4o, GPT-4.1,
/// GPT-4.5, GPT-5, `gpt-oss` and the o-series; `cl100k_base` for older GPT-4 and GPT-3.5), and
/// [`estimate_request`] otherwise. A provider prefix (`openai/gpt-4o`) and a fine-tune prefix
/// (`ft:gpt-4o-mini:…`) are looked through.
///
/// Only the texts are counted exactly: message framing, images, audio and tool definitions are
/// counted as [`estimate_request`] counts them. The encoding is built once, on the first call
/// that needs it (some milliseconds), and shared after that. Never fails or panics.
pub fn count_request(model: &str, req: &ChatRequest) -> u64 {
    #[cfg(feature = "tokenizer")]
    if let Some(bpe) = exact::bpe_for(model) {
        return request_tokens(req, &|text: &str| bpe.count_ordinary(text) as u64);
    }
    let _ = model;
    estimate_request(req)
}

/// The prompt's tokens with `text` counting each piece of text.
fn request_tokens(req: &ChatRequest, text: &dyn Fn(&str) -> u64) -> u64 {
    let mut total = 0u64;
    for message in &req.messages {
        total = total.saturating_add(message_tokens(message, text));
    }
    if !req.messages.is_empty() {
        total = total.saturating_add(REPLY_PRIMING);
    }
    if !req.tools.is_empty() {
        total = total.saturating_add(TOOLS_PREAMBLE);
        for tool in &req.tools {
            let mut t = PER_TOOL + text(&tool.name);
            if let Some(description) = &tool.description {
                t = t.saturating_add(text(description));
            }
            t = t.saturating_add(json_tokens(&tool.parameters, text, 0));
            total = total.saturating_add(t);
        }
    }
    if let Some(ResponseFormat::JsonSchema { name, schema, .. }) = &req.response_format {
        total = total
            .saturating_add(RESPONSE_FORMAT + text(name))
            .saturating_add(json_tokens(schema, text, 0));
    }
    total
}

fn message_tokens(message: &Message, text: &dyn Fn(&str) -> u64) -> u64 {
    let mut total = PER_MESSAGE;
    if let Some(name) = &message.name {
        total = total.saturating_add(PER_NAME + text(name));
    }
    for part in &message.content {
        let t = match part {
            ContentPart::Text(t) => text(t),
            ContentPart::Image { detail, .. } => {
                if detail.as_deref() == Some("low") {
                    IMAGE_TOKENS_LOW
                } else {
                    IMAGE_TOKENS_HIGH
                }
            }
            ContentPart::Audio { .. } => AUDIO_PART_TOKENS,
        };
        total = total.saturating_add(t);
    }
    for call in &message.tool_calls {
        total = total
            .saturating_add(PER_TOOL_CALL + text(&call.name))
            .saturating_add(text(&call.arguments));
    }
    total
}

/// A JSON value's tokens as a model reads a schema: keys and strings as text, one token for
/// each other scalar and for each entry's separators.
fn json_tokens(value: &Value, text: &dyn Fn(&str) -> u64, depth: usize) -> u64 {
    if depth >= MAX_SCHEMA_DEPTH {
        return 1;
    }
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 1,
        Value::String(s) => text(s),
        Value::Array(items) => items.iter().fold(1u64, |acc, v| {
            acc.saturating_add(1 + json_tokens(v, text, depth + 1))
        }),
        Value::Object(map) => map.iter().fold(1u64, |acc, (k, v)| {
            acc.saturating_add(1 + text(k))
                .saturating_add(json_tokens(v, text, depth + 1))
        }),
    }
}

#[cfg(feature = "tokenizer")]
mod exact {
    //! The tiktoken encodings, each built once.

    use std::sync::OnceLock;

    use tiktoken_rs::CoreBPE;

    /// An OpenAI encoding.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Encoding {
        O200k,
        Cl100k,
    }

    /// The encoding of an OpenAI model, or `None` for another model.
    pub(super) fn encoding_for(model: &str) -> Option<Encoding> {
        let m = model.strip_prefix("openai/").unwrap_or(model);
        let m = m.strip_prefix("ft:").unwrap_or(m);
        let o_series = m.len() >= 2 && m.as_bytes()[0] == b'o' && m.as_bytes()[1].is_ascii_digit();
        if o_series
            || [
                "gpt-4o",
                "gpt-4.1",
                "gpt-4.5",
                "gpt-5",
                "chatgpt-4o",
                "gpt-oss",
            ]
            .iter()
            .any(|p| m.starts_with(p))
        {
            Some(Encoding::O200k)
        } else if [
            "gpt-4",
            "gpt-3.5",
            "gpt-35",
            "text-embedding-3",
            "text-embedding-ada",
        ]
        .iter()
        .any(|p| m.starts_with(p))
        {
            Some(Encoding::Cl100k)
        } else {
            None
        }
    }

    /// The built encoding for `model`, or `None` for a model that is not OpenAI's (or if the
    /// encoding could not be built, which does not happen with the data tiktoken-rs ships).
    pub(super) fn bpe_for(model: &str) -> Option<&'static CoreBPE> {
        static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        match encoding_for(model)? {
            Encoding::O200k => O200K
                .get_or_init(|| tiktoken_rs::o200k_base().ok())
                .as_ref(),
            Encoding::Cl100k => CL100K
                .get_or_init(|| tiktoken_rs::cl100k_base().ok())
                .as_ref(),
        }
    }

    /// The exact `o200k_base` count of a text (for tests comparing the estimate).
    #[cfg(test)]
    pub(super) fn o200k(text: &str) -> Option<u64> {
        bpe_for("gpt-4o").map(|bpe| bpe.count_ordinary(text) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Role, Tool, ToolCall};
    use serde_json::json;

    #[test]
    fn empty_text_is_zero_and_any_text_at_least_one() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("a"), 1);
        assert_eq!(estimate_text(" "), 1);
        assert_eq!(estimate_text("\n"), 1);
    }

    #[test]
    fn common_words_are_about_one_token_each() {
        // tiktoken: 10 tokens.
        let n = estimate_text("The quick brown fox jumps over the lazy dog.");
        assert!((9..=11).contains(&n), "{n}");
    }

    #[test]
    fn digits_go_in_groups_of_three() {
        assert_eq!(estimate_text("123456789"), 3);
        assert_eq!(estimate_text("1234"), 2);
    }

    #[test]
    fn non_ascii_text_costs_more_than_its_word_count() {
        let cjk = estimate_text("人工智能是计算机科学的一个分支");
        assert!((7..=15).contains(&cjk), "{cjk}");
    }

    fn text_only(req: &ChatRequest) -> u64 {
        req.messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(ContentPart::as_text)
            .map(estimate_text)
            .sum()
    }

    #[test]
    fn messages_carry_framing_and_the_reply_is_primed() {
        assert_eq!(estimate_request(&ChatRequest::new("m")), 0);
        let one = ChatRequest::new("m").user("Hello there, how are you?");
        assert_eq!(
            estimate_request(&one),
            text_only(&one) + PER_MESSAGE + REPLY_PRIMING
        );
        let two = one.clone().assistant("Fine, thanks.");
        assert_eq!(
            estimate_request(&two),
            text_only(&two) + 2 * PER_MESSAGE + REPLY_PRIMING
        );
        let mut named = Message::user("hi");
        named.name = Some("alice".into());
        let req = ChatRequest::new("m").message(named);
        assert_eq!(
            estimate_request(&req),
            1 + PER_MESSAGE + PER_NAME + estimate_text("alice") + REPLY_PRIMING
        );
    }

    #[test]
    fn images_count_by_detail_and_audio_by_part() {
        let base = ChatRequest::new("m").user_parts([ContentPart::text("Describe it.")]);
        let base_n = estimate_request(&base);
        let high = ChatRequest::new("m").user_parts([
            ContentPart::text("Describe it."),
            ContentPart::image_url("https://example.com/a.png"),
        ]);
        assert_eq!(estimate_request(&high), base_n + IMAGE_TOKENS_HIGH);
        let low = ChatRequest::new("m").user_parts([
            ContentPart::text("Describe it."),
            ContentPart::Image {
                source: crate::types::ImageSource::Url("https://example.com/a.png".into()),
                detail: Some("low".into()),
            },
        ]);
        assert_eq!(estimate_request(&low), base_n + IMAGE_TOKENS_LOW);
        // The image's data is not read as text, however long it is.
        let inline = ChatRequest::new("m").user_parts([
            ContentPart::text("Describe it."),
            ContentPart::image_base64("image/png", "A".repeat(100_000)),
            ContentPart::audio("B".repeat(100_000), "wav"),
        ]);
        assert_eq!(
            estimate_request(&inline),
            base_n + IMAGE_TOKENS_HIGH + AUDIO_PART_TOKENS
        );
    }

    #[test]
    fn tools_count_name_description_and_schema() {
        let schema = json!({
            "type": "object",
            "properties": { "city": { "type": "string", "description": "The city name" } },
            "required": ["city"]
        });
        let plain = ChatRequest::new("m").user("Weather in Paris?");
        let with_tool = plain.clone().tool(Tool::function(
            "get_weather",
            "Current weather for a city",
            schema.clone(),
        ));
        let added = estimate_request(&with_tool) - estimate_request(&plain);
        let schema_n = json_tokens(&schema, &estimate_text, 0);
        assert_eq!(
            added,
            TOOLS_PREAMBLE
                + PER_TOOL
                + estimate_text("get_weather")
                + estimate_text("Current weather for a city")
                + schema_n
        );
        // The schema's keys and strings are all read: about 20 tokens here.
        assert!((12..=30).contains(&schema_n), "{schema_n}");
        // A second tool adds its own cost, not a second preamble.
        let two = with_tool
            .clone()
            .tool(Tool::function("noop", "", json!({})));
        assert_eq!(
            estimate_request(&two) - estimate_request(&with_tool),
            PER_TOOL + estimate_text("noop") + 1
        );
    }

    #[test]
    fn tool_calls_and_results_are_counted() {
        let args = r#"{"city":"Paris","unit":"celsius"}"#;
        let req = ChatRequest::new("m")
            .user("Weather?")
            .message(Message::new(Role::Assistant).with_tool_call(ToolCall::new(
                "call_1",
                "get_weather",
                args,
            )))
            .tool_result("call_1", "18 degrees and sunny");
        let expected = 3 * PER_MESSAGE
            + REPLY_PRIMING
            + estimate_text("Weather?")
            + PER_TOOL_CALL
            + estimate_text("get_weather")
            + estimate_text(args)
            + estimate_text("18 degrees and sunny");
        assert_eq!(estimate_request(&req), expected);
    }

    #[test]
    fn the_response_schema_is_counted() {
        let plain = ChatRequest::new("m").user("List three colours.");
        let schema = json!({"type": "array", "items": {"type": "string"}});
        let shaped = plain.clone().json_schema("colours", schema.clone());
        assert_eq!(
            estimate_request(&shaped) - estimate_request(&plain),
            RESPONSE_FORMAT + estimate_text("colours") + json_tokens(&schema, &estimate_text, 0)
        );
    }

    #[test]
    fn deeply_nested_schemas_are_cut_off() {
        let mut v = json!("leaf");
        for _ in 0..200 {
            v = json!({ "x": v });
        }
        let n = json_tokens(&v, &estimate_text, 0);
        assert!(n < 200, "{n}");
    }

    #[cfg(feature = "tokenizer")]
    #[test]
    fn openai_models_map_to_their_encodings() {
        use exact::{Encoding, encoding_for};
        for m in [
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "gpt-4.1-nano",
            "gpt-5",
            "o1",
            "o3-mini",
            "o4-mini",
            "openai/gpt-4o",
            "ft:gpt-4o-mini:org::abc",
        ] {
            assert_eq!(encoding_for(m), Some(Encoding::O200k), "{m}");
        }
        for m in ["gpt-4", "gpt-4-turbo", "gpt-3.5-turbo"] {
            assert_eq!(encoding_for(m), Some(Encoding::Cl100k), "{m}");
        }
        for m in [
            "claude-sonnet-4-5",
            "deepseek-chat",
            "gemini-2.5-flash",
            "omni",
            "",
        ] {
            assert_eq!(encoding_for(m), None, "{m}");
        }
    }

    #[cfg(feature = "tokenizer")]
    #[test]
    fn count_request_is_exact_for_openai_and_estimates_otherwise() {
        let text = "Tokenization: splitting text into pieces, e.g. 'unbelievably' → 3?";
        let req = ChatRequest::new("m").user(text);
        let exact_text = exact::o200k(text).unwrap();
        assert_eq!(
            count_request("gpt-4o", &req),
            exact_text + PER_MESSAGE + REPLY_PRIMING
        );
        assert_eq!(
            count_request("claude-sonnet-4-5", &req),
            estimate_request(&req)
        );
    }
}
