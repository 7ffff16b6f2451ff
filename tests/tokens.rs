//! Token estimates through the public API: accuracy against tiktoken (with the `tokenizer`
//! feature) on the prose and code samples in `tests/fixtures/tokens/`, and properties of the
//! heuristic on any input.

use modelgate::tokens::{estimate_request, estimate_text};
use modelgate::{ChatRequest, ContentPart};
use proptest::prelude::*;

/// Every sample: real-looking English prose and Rust, Python and JavaScript source, a few KB each.
const SAMPLES: [(&str, &str); 5] = [
    (
        "english_essay.txt",
        include_str!("fixtures/tokens/english_essay.txt"),
    ),
    (
        "english_docs.md",
        include_str!("fixtures/tokens/english_docs.md"),
    ),
    (
        "rust_sample.rs",
        include_str!("fixtures/tokens/rust_sample.rs"),
    ),
    (
        "python_sample.py",
        include_str!("fixtures/tokens/python_sample.py"),
    ),
    ("js_sample.js", include_str!("fixtures/tokens/js_sample.js")),
];

#[cfg(feature = "tokenizer")]
#[test]
fn the_estimate_is_within_15_percent_of_tiktoken_on_prose_and_code() {
    let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs ships o200k_base");
    let mut report = String::new();
    let mut failures = Vec::new();
    for (name, text) in SAMPLES {
        assert!(text.len() > 2000, "{name} is a real sample");
        let exact = bpe.encode_ordinary(text).len() as f64;
        let estimate = estimate_text(text) as f64;
        let error = (estimate - exact) / exact;
        report.push_str(&format!(
            "{name}: tiktoken {exact}, estimate {estimate}, {:+.1} %\n",
            error * 100.0
        ));
        if error.abs() > 0.15 {
            failures.push(name);
        }
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "off by more than 15 %: {failures:?}\n{report}"
    );
}

#[cfg(feature = "tokenizer")]
#[test]
fn count_request_counts_openai_text_exactly() {
    let bpe = tiktoken_rs::o200k_base().expect("tiktoken-rs ships o200k_base");
    let (_, essay) = SAMPLES[0];
    let req = ChatRequest::new("gpt-4o-mini").user(essay);
    let counted = modelgate::tokens::count_request("gpt-4o-mini", &req);
    let exact = bpe.encode_ordinary(essay).len() as u64;
    // The text exactly, plus one message's framing (4) and the reply's priming (3).
    assert_eq!(counted, exact + 7);
    // An estimate for a model tiktoken does not know.
    assert_eq!(
        modelgate::tokens::count_request("claude-sonnet-4-5", &req),
        estimate_request(&req)
    );
}

#[test]
fn samples_cost_what_their_size_suggests() {
    // Without tiktoken: prose and code run at some 3 to 6 bytes per token.
    for (name, text) in SAMPLES {
        let n = estimate_text(text) as usize;
        assert!(
            (text.len() / 6..=text.len() / 3).contains(&n),
            "{name}: {n} tokens for {} bytes",
            text.len()
        );
    }
}

#[test]
fn a_request_costs_more_than_its_texts() {
    let (_, code) = SAMPLES[2];
    let req = ChatRequest::new("m")
        .system("Review this code.")
        .user_parts([ContentPart::text(code)]);
    let n = estimate_request(&req);
    assert!(n > estimate_text(code) + estimate_text("Review this code."));
}

proptest! {
    #[test]
    fn never_panics_and_any_text_costs_something(s in any::<String>()) {
        let n = estimate_text(&s);
        prop_assert_eq!(n == 0, s.is_empty());
        prop_assert!(n <= s.len() as u64);
    }

    #[test]
    fn concatenation_is_nearly_additive(a in any::<String>(), b in any::<String>()) {
        let (ea, eb) = (estimate_text(&a), estimate_text(&b));
        let joined = estimate_text(&format!("{a}{b}"));
        // Joining can merge the pieces at the seam, or split them differently there: a few
        // tokens either way, never more.
        prop_assert!(joined + 3 >= ea + eb, "{joined} vs {ea} + {eb}");
        prop_assert!(joined <= ea + eb + 3, "{joined} vs {ea} + {eb}");
    }

    #[test]
    fn prose_like_text_is_nearly_additive(
        a in "[A-Za-z0-9 ,.;:()\\n'_-]{0,200}",
        b in "[A-Za-z0-9 ,.;:()\\n'_-]{0,200}",
    ) {
        let (ea, eb) = (estimate_text(&a), estimate_text(&b));
        let joined = estimate_text(&format!("{a}{b}"));
        prop_assert!(joined + 3 >= ea + eb, "{joined} vs {ea} + {eb}");
        prop_assert!(joined <= ea + eb + 3, "{joined} vs {ea} + {eb}");
    }
}
