use super::*;
use crate::ErrorKind;

/// Two costs equal to a millionth of a cent.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn table(json: &str) -> PriceTable {
    PriceTable::from_json(json).unwrap()
}

fn err(json: &str) -> String {
    let e = PriceTable::from_json(json).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    e.to_string()
}

#[test]
fn builtin_table_parses_and_has_every_listed_model() {
    // `builtin()` falls back to an empty table: parse the file itself to see its error.
    let parsed = PriceTable::from_json(BUILTIN_JSON).unwrap();
    let builtin = PriceTable::builtin();
    assert_eq!(parsed.len(), builtin.len());
    let expected = [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "openai/gpt-4.1-mini",
        "openai/gpt-4.1-nano",
        "openai/gpt-5",
        "openai/gpt-5-mini",
        "openai/gpt-5-nano",
        "openai/o3",
        "openai/o4-mini",
        "anthropic/claude-opus-4-1",
        "anthropic/claude-sonnet-4-5",
        "anthropic/claude-haiku-4-5",
        "anthropic/claude-3-5-haiku",
        "gemini/gemini-2.5-pro",
        "gemini/gemini-2.5-flash",
        "gemini/gemini-2.5-flash-lite",
        "gemini/gemini-2.0-flash",
        "deepseek/deepseek-chat",
        "deepseek/deepseek-reasoner",
    ];
    for key in expected {
        let (provider, model) = key.split_once('/').unwrap();
        let p = builtin
            .lookup(provider, model)
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(p.input > 0.0 && p.output > 0.0, "{key}");
        assert!(p.cached_input.is_some(), "{key}: cached_input");
        assert!(p.context_window.is_some(), "{key}: context_window");
        assert!(p.max_output_tokens.is_some(), "{key}: max_output_tokens");
        assert!(
            p.source
                .as_deref()
                .is_some_and(|s| s.starts_with("https://"))
        );
        assert!(
            p.date.as_deref().is_some_and(|d| d.len() == 10),
            "{key}: date"
        );
        if provider == "anthropic" {
            // 5-minute writes cost 1.25× input, 1-hour writes 2×, reads 0.1×.
            assert!(close(p.cache_write.unwrap(), p.input * 1.25), "{key}");
            assert!(close(p.cache_write_1h.unwrap(), p.input * 2.0), "{key}");
            assert!(close(p.cached_input.unwrap(), p.input * 0.1), "{key}");
        }
    }
    for (provider, model) in [
        ("gemini", "gemini-2.5-pro"),
        ("anthropic", "claude-sonnet-4-5"),
    ] {
        let p = builtin.lookup(provider, model).unwrap();
        assert_eq!(p.tiers.len(), 1, "{model}");
        assert_eq!(p.tiers[0].above_input_tokens, 200_000);
        assert!(p.tiers[0].input > p.input && p.tiers[0].output > p.output);
    }
    // Every entry's provider is one a provider really calls itself.
    for (provider, _, _) in builtin.iter() {
        assert!(
            ["openai", "anthropic", "gemini", "deepseek"].contains(&provider),
            "{provider}"
        );
    }
}

#[test]
fn model_names_match_exactly_or_with_a_date_or_version_suffix() {
    let t = table(
        r#"{"models": {
            "openai/gpt-4o": {"input": 1, "output": 1},
            "openai/gpt-4.1": {"input": 2, "output": 2},
            "anthropic/claude-3": {"input": 3, "output": 3},
            "gemini/gemini-2.0-flash": {"input": 4, "output": 4}
        }}"#,
    );
    for model in [
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-20240806",
        "gpt-4o-latest",
        "gpt-4o-0613",
        "gpt-4o-001",
    ] {
        assert_eq!(
            t.lookup("openai", model).map(|p| p.input),
            Some(1.0),
            "{model}"
        );
    }
    assert!(t.lookup("gemini", "gemini-2.0-flash-001").is_some());
    for model in [
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-audio-preview",
        "gpt-4o-2024-8-6",
        "gpt-4o-12",
        "gpt-4o-2024-08-06x",
        "gpt-4o-",
        "gpt-4",
        "GPT-4o",
        "gpt-4.1-nano",
        "gpt-4.1-nano-2025-04-14",
        "-latest",
    ] {
        assert!(
            t.lookup("openai", model).is_none(),
            "{model} must not match"
        );
    }
    // A one-digit version is part of the name, not a suffix.
    assert!(t.lookup("anthropic", "claude-3-5").is_none());
    assert!(t.lookup("anthropic", "claude-3-20240307").is_some());
    assert!(t.lookup("gemini", "gemini-2.0-flash-lite").is_none());
    assert!(
        t.lookup("gemini", "gemini-2.0-flash-preview-05-06")
            .is_none()
    );
    // Other providers' models are not served, nor unknown providers.
    assert!(t.lookup("deepseek", "gpt-4o").is_none());
    assert!(t.lookup("", "gpt-4o").is_none());
    // Non-ASCII names do not trip the suffix cut.
    assert!(t.lookup("openai", "gpt-4o-é001").is_none());
    assert!(t.lookup("openai", "ééééééééééé").is_none());
}

#[test]
fn builtin_names_do_not_shadow_each_other() {
    let b = PriceTable::builtin();
    let mini = b.lookup("openai", "gpt-4o-mini-2024-07-18").unwrap();
    assert_eq!(mini.input, 0.15);
    let nano = b.lookup("openai", "gpt-4.1-nano").unwrap();
    assert_eq!(nano.input, 0.10);
    let lite = b.lookup("gemini", "gemini-2.5-flash-lite").unwrap();
    assert_eq!(lite.input, 0.10);
    assert_eq!(
        b.lookup("anthropic", "claude-sonnet-4-5-20250929")
            .unwrap()
            .input,
        3.0
    );
}

#[test]
fn lookup_kind_tries_the_name_then_the_kind() {
    let mut t = PriceTable::builtin().clone();
    t.insert("eu-openai", "gpt-4o", ModelPrice::new(9.0, 9.0));
    assert_eq!(
        t.lookup_kind("eu-openai", "openai", "gpt-4o")
            .unwrap()
            .input,
        9.0
    );
    assert_eq!(
        t.lookup_kind("eu-openai", "openai", "gpt-4o-mini")
            .unwrap()
            .input,
        0.15
    );
    assert_eq!(
        t.lookup_kind("us-openai", "openai", "gpt-4o")
            .unwrap()
            .input,
        2.5
    );
    assert!(
        t.lookup_kind("us-openai", "openai", "gpt-unknown")
            .is_none()
    );
}

#[test]
fn unknown_model_has_no_cost() {
    let usage = Usage::new(10, 10);
    assert_eq!(
        PriceTable::builtin().cost("openai", "gpt-9-ultra", &usage),
        None
    );
    assert_eq!(PriceTable::empty().cost("openai", "gpt-4o", &usage), None);
    assert!(PriceTable::empty().is_empty());
}

// Regression tests named after the bugs peers shipped.

/// LiteLLM #6215, #14849: cached prompt tokens billed at the input rate and again at the
/// cached rate. Cached tokens are a subset of `input_tokens` and billed once.
#[test]
fn litellm_6215_14849_cached_tokens_are_not_billed_twice() {
    let p = ModelPrice::new(2.0, 8.0).with_cached_input(0.5);
    let usage = Usage::new(1_000_000, 0).with_cached_input_tokens(600_000);
    // 400k × $2 + 600k × $0.50.
    assert!(close(p.cost(&usage), 0.8 + 0.3));
    // Without a cached price, cached tokens cost the input price, once.
    assert!(close(ModelPrice::new(2.0, 8.0).cost(&usage), 2.0));
}

/// LiteLLM #10567, #18599: reasoning tokens not billed, or billed alone. They are part of
/// `output_tokens` and billed with them, once.
#[test]
fn litellm_10567_18599_reasoning_tokens_are_billed_once_as_output() {
    let p = ModelPrice::new(1.0, 4.0);
    let usage = Usage::new(0, 1_000_000).with_reasoning_tokens(900_000);
    assert!(close(p.cost(&usage), 4.0));
}

/// LiteLLM #6575: Anthropic cache writes not priced. They cost the write rate (1.25× input
/// for 5 minutes, 2× for an hour), and are part of `input_tokens`, billed once.
#[test]
fn litellm_6575_cache_writes_are_priced() {
    let p = PriceTable::builtin()
        .lookup("anthropic", "claude-sonnet-4-5")
        .unwrap();
    // (Below the 200k long-context tier.)
    let usage = Usage::new(100_000, 0)
        .with_cached_input_tokens(10_000)
        .with_cache_creation_input_tokens(50_000)
        .with_cache_creation_1h_input_tokens(20_000);
    // 40k × $3 + 10k × $0.30 + 30k × $3.75 + 20k × $6.
    let cost = p.cost(&usage);
    assert!(close(cost, 0.12 + 0.003 + 0.1125 + 0.12), "{cost}");
    // Writes without a 1-hour split are 5-minute writes.
    let usage = Usage::new(1_000, 0).with_cache_creation_input_tokens(1_000);
    assert!(close(p.cost(&usage), 0.00375));
    // No write price: writes cost the input price; no 1-hour price: the 5-minute one.
    let plain = ModelPrice::new(1.0, 1.0);
    let usage = Usage::new(2_000_000, 0)
        .with_cache_creation_input_tokens(2_000_000)
        .with_cache_creation_1h_input_tokens(1_000_000);
    assert!(close(plain.cost(&usage), 2.0));
    assert!(close(plain.clone().with_cache_write(1.5).cost(&usage), 3.0));
}

/// LiteLLM #13724: tiered prices ignored. Above the threshold, the tier prices the whole
/// request, output included.
#[test]
fn litellm_13724_tiers_price_the_whole_request() {
    let b = PriceTable::builtin();
    let pro = b.lookup("gemini", "gemini-2.5-pro").unwrap();
    // At the threshold: base prices.
    assert!(close(
        pro.cost(&Usage::new(200_000, 1_000_000)),
        0.25 + 10.0
    ));
    // Above it: the tier's, for every token.
    let usage = Usage::new(300_000, 1_000_000).with_cached_input_tokens(100_000);
    assert!(close(pro.cost(&usage), 0.5 + 0.025 + 15.0));
    assert!(close(pro.estimate(300_000, 1_000_000), 0.75 + 15.0));
    assert!(close(pro.estimate(200_000, 0), 0.25));

    let sonnet = b.lookup("anthropic", "claude-sonnet-4-5").unwrap();
    let usage = Usage::new(400_000, 100_000)
        .with_cached_input_tokens(100_000)
        .with_cache_creation_input_tokens(100_000)
        .with_cache_creation_1h_input_tokens(50_000);
    // 200k × $6 + 100k × $0.60 + 50k × $7.50 + 50k × $12 + 100k × $22.50.
    assert!(close(sonnet.cost(&usage), 1.2 + 0.06 + 0.375 + 0.6 + 2.25));

    // Several tiers: the highest one exceeded applies, whatever their order.
    let p = ModelPrice::new(1.0, 1.0).with_tiers(vec![
        PriceTier::new(500, 3.0, 3.0),
        PriceTier::new(100, 2.0, 2.0),
    ]);
    assert!(close(p.cost(&Usage::new(100, 0)), 100e-6));
    assert!(close(p.cost(&Usage::new(200, 0)), 400e-6));
    assert!(close(p.cost(&Usage::new(1_000, 0)), 3_000e-6));
}

#[test]
fn inconsistent_counts_are_clamped_not_negative() {
    let p = ModelPrice::new(1.0, 1.0).with_cached_input(0.5);
    let usage = Usage::new(10, 0)
        .with_cached_input_tokens(8)
        .with_cache_creation_input_tokens(8)
        .with_cache_creation_1h_input_tokens(99);
    let cost = p.cost(&usage);
    // 8 cached, the 2 left written (1 h), nothing uncached.
    assert!(close(cost, (8.0 * 0.5 + 2.0) / 1e6), "{cost}");
    let huge = Usage::new(u64::MAX, u64::MAX).with_cached_input_tokens(u64::MAX);
    assert!(p.cost(&huge).is_finite());
}

#[test]
fn overrides_add_and_replace_entries() {
    let mine = table(
        r#"{"source": "https://example.com/contract", "date": "2026-11-30", "models": {
            "openai/gpt-4o": {"input": 1.0, "output": 2.0},
            "groq/llama-3.3-70b-versatile": {"input": 0.59, "output": 0.79,
                                             "date": "2026-12-01"},
            "openrouter/openai/gpt-4o": {"input": 2.5, "output": 10}
        }}"#,
    );
    let t = PriceTable::builtin().clone().with_overrides(mine);
    let gpt4o = t.lookup("openai", "gpt-4o").unwrap();
    assert_eq!(
        (gpt4o.input, gpt4o.output, gpt4o.cached_input),
        (1.0, 2.0, None)
    );
    assert_eq!(
        gpt4o.source.as_deref(),
        Some("https://example.com/contract")
    );
    assert_eq!(gpt4o.date.as_deref(), Some("2026-11-30"));
    let llama = t.lookup("groq", "llama-3.3-70b-versatile").unwrap();
    assert_eq!(llama.date.as_deref(), Some("2026-12-01"));
    // The key splits at its first `/`.
    assert!(t.lookup("openrouter", "openai/gpt-4o").is_some());
    // Untouched entries stay.
    assert_eq!(t.lookup("openai", "gpt-4o-mini").unwrap().input, 0.15);
    assert_eq!(t.len(), PriceTable::builtin().len() + 2);
}

#[test]
fn malformed_price_files_name_the_entry_and_the_field() {
    let cases = [
        (r#"{"models": {"#, "prices: invalid JSON"),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1, "cached_input": "x", "output": 2}}}"#,
            r#"prices: "openai/gpt-4o".cached_input: expected a non-negative number, found "x""#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": -1, "output": 2}}}"#,
            r#"prices: "openai/gpt-4o".input: expected a non-negative number, found -1"#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1, "output": null}}}"#,
            r#""openai/gpt-4o".output: expected a non-negative number, found null"#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1}}}"#,
            r#""openai/gpt-4o": missing field "output""#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1, "output": 1, "cahced_input": 1}}}"#,
            r#""openai/gpt-4o".cahced_input: unknown field"#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1, "output": 1, "context_window": 1.5}}}"#,
            r#""openai/gpt-4o".context_window: expected a non-negative integer, found 1.5"#,
        ),
        (
            r#"{"models": {"gemini/x": {"input": 1, "output": 1,
                "tiers": [{"input": 2, "output": 2}]}}}"#,
            r#""gemini/x".tiers[0]: missing field "above_input_tokens""#,
        ),
        (
            r#"{"models": {"gemini/x": {"input": 1, "output": 1,
                "tiers": [{"above_input_tokens": 5, "input": 2, "output": 2, "extra": 1}]}}}"#,
            r#""gemini/x".tiers[0].extra: unknown field"#,
        ),
        (
            r#"{"models": {"gemini/x": {"input": 1, "output": 1, "tiers": {}}}}"#,
            r#""gemini/x".tiers: expected an array"#,
        ),
        (
            r#"{"models": {"gpt-4o": {"input": 1, "output": 1}}}"#,
            r#"prices: "gpt-4o": a key must be "provider/model""#,
        ),
        (
            r#"{"models": {"/gpt-4o": {"input": 1, "output": 1}}}"#,
            r#""/gpt-4o": a key must be "provider/model""#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": 3}}"#,
            r#""openai/gpt-4o": expected an object, found 3"#,
        ),
        (
            r#"{"models": {"openai/gpt-4o": {"input": 1, "output": 1, "date": 20261202}}}"#,
            r#""openai/gpt-4o".date: expected a string, found 20261202"#,
        ),
        (r#"{"model": {}}"#, r#"prices: "model": unknown field"#),
        (r#"{}"#, r#"prices: missing field "models""#),
        (r#"[]"#, "prices: expected an object"),
        (r#"{"models": []}"#, "prices: models: expected an object"),
        (
            r#"{"models": {}, "date": 1}"#,
            "prices: date: expected a string",
        ),
    ];
    for (json, expected) in cases {
        let msg = err(json);
        assert!(
            msg.contains(expected),
            "{json}\n  gave {msg}\n  want {expected}"
        );
    }
    // Long values are cut short in messages.
    let long = format!(
        r#"{{"models": {{"openai/x": {{"input": "{}", "output": 1}}}}}}"#,
        "é".repeat(100)
    );
    assert!(err(&long).contains('…'));
}

#[test]
fn empty_models_is_an_empty_table() {
    assert!(table(r#"{"models": {}}"#).is_empty());
}
