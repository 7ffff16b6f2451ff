//! Prices per model and the exact cost of a call.
//!
//! A [`PriceTable`] maps `provider/model` to a [`ModelPrice`] in US dollars per million tokens.
//! The crate ships one ([`PriceTable::builtin`], read from the providers' pricing pages; each
//! entry names its `source` page and the `date` it was read), and every
//! [`ChatResponse`](crate::ChatResponse) from a built-in provider carries its
//! [`cost`](crate::ChatResponse::cost) computed from it, unless the provider reported a cost
//! itself (OpenRouter's `usage.cost`), which wins.
//!
//! # Cost rules
//!
//! With the normalized [`Usage`] (`input_tokens` is the whole prompt, cached and cache-written
//! tokens included; `output_tokens` includes reasoning):
//!
//! ```text
//! cost = (input − cached − cache-written) × input
//!      + cached × cached_input                     (input when absent)
//!      + 5-minute cache writes × cache_write        (input when absent)
//!      + 1-hour cache writes × cache_write_1h       (cache_write when absent)
//!      + output × output                            (reasoning included, billed once)
//! ```
//!
//! all divided by one million. Cached and cache-written tokens are never billed twice, and
//! reasoning tokens are billed as output, once. When the prompt's `input_tokens` exceed a
//! tier's `above_input_tokens` (the highest such tier), that tier's prices apply to the **whole**
//! request, output included (Gemini 2.5 Pro and Claude Sonnet 4.5 above 200k prompt tokens).
//!
//! # Model names
//!
//! A model matches its key exactly, or when it is the key followed by a date or version suffix:
//! `-YYYY-MM-DD`, `-YYYYMMDD`, `-MMDD`, `-NNN` or `-latest` (`gpt-4o-2024-08-06`,
//! `claude-sonnet-4-5-20250929`, `gemini-2.0-flash-001`). Nothing else matches: `gpt-4o-mini`
//! is not `gpt-4o`, and an unknown model has no cost (`None`), never a guess.
//!
//! # Example
//!
//! ```
//! use modelgate::Usage;
//! use modelgate::pricing::PriceTable;
//!
//! # fn main() -> Result<(), modelgate::Error> {
//! // 1,000 prompt tokens of which 800 were read from the cache, 200 output tokens.
//! let usage = Usage::new(1_000, 200).with_cached_input_tokens(800);
//! let cost = PriceTable::builtin().cost("openai", "gpt-4o-mini-2024-07-18", &usage);
//! // 200 × $0.15 + 800 × $0.075 + 200 × $0.60, per million tokens.
//! assert!((cost.unwrap() - 0.00021).abs() < 1e-12);
//!
//! // Your own prices (a negotiated rate, a model the table lacks) override the built-in ones.
//! let mine = PriceTable::from_json(
//!     r#"{ "models": { "openai/gpt-4o-mini": { "input": 0.10, "output": 0.40 } } }"#,
//! )?;
//! let prices = PriceTable::builtin().clone().with_overrides(mine);
//! let cost = prices.cost("openai", "gpt-4o-mini", &Usage::new(1_000_000, 0));
//! assert_eq!(cost, Some(0.10));
//! # Ok(()) }
//! ```
//!
//! # Price file format
//!
//! ```json
//! { "date": "2026-12-02",
//!   "models": {
//!     "openai/gpt-4o-mini": { "input": 0.15, "cached_input": 0.075, "output": 0.60,
//!                             "context_window": 128000, "max_output_tokens": 16384,
//!                             "source": "https://platform.openai.com/docs/pricing" },
//!     "anthropic/claude-sonnet-4-5": { "input": 3.0, "cached_input": 0.30, "cache_write": 3.75,
//!                             "cache_write_1h": 6.0, "output": 15.0,
//!                             "tiers": [ { "above_input_tokens": 200000, "input": 6.0,
//!                                          "cached_input": 0.60, "cache_write": 7.50,
//!                                          "cache_write_1h": 12.0, "output": 22.50 } ] } } }
//! ```
//!
//! `input` and `output` are required (a tier's too, with its `above_input_tokens`); every other
//! field is optional. `source` and `date` may also sit at the top level, for the entries that
//! have none of their own. The provider is the provider's [`name()`](crate::ChatProvider::name)
//! (`openai`, `anthropic`, `gemini`, `deepseek`, an OpenAI-compatible preset's name such as
//! `groq`); the key splits at its first `/`, so `openrouter/openai/gpt-4o` is OpenRouter's
//! `openai/gpt-4o`. Unknown fields are errors, so that a typo is not silently ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::error::Error;
use crate::types::Usage;

/// The built-in price table's data file.
const BUILTIN_JSON: &str = include_str!("prices.json");

/// Tokens per unit of price.
const PER_MILLION: f64 = 1_000_000.0;

/// Prices from a number of prompt tokens on: above `above_input_tokens` prompt tokens, these
/// prices apply to the whole request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PriceTier {
    /// The tier applies when the prompt's `input_tokens` exceed this.
    pub above_input_tokens: u64,
    /// USD per million uncached prompt tokens.
    pub input: f64,
    /// USD per million prompt tokens read from the cache (`input` when `None`).
    pub cached_input: Option<f64>,
    /// USD per million prompt tokens written to the cache with the default (5-minute) TTL
    /// (`input` when `None`).
    pub cache_write: Option<f64>,
    /// USD per million prompt tokens written to the cache with a 1-hour TTL (`cache_write`
    /// when `None`).
    pub cache_write_1h: Option<f64>,
    /// USD per million output tokens, reasoning included.
    pub output: f64,
}

impl PriceTier {
    /// A tier from `above_input_tokens` prompt tokens on, with these input and output prices
    /// (USD per million tokens) and no cache prices of its own.
    pub fn new(above_input_tokens: u64, input: f64, output: f64) -> Self {
        PriceTier {
            above_input_tokens,
            input,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
            output,
        }
    }

    /// Sets the price of prompt tokens read from the cache.
    #[must_use]
    pub fn with_cached_input(mut self, price: f64) -> Self {
        self.cached_input = Some(price);
        self
    }

    /// Sets the price of prompt tokens written to the cache (5-minute TTL).
    #[must_use]
    pub fn with_cache_write(mut self, price: f64) -> Self {
        self.cache_write = Some(price);
        self
    }

    /// Sets the price of prompt tokens written to the cache with a 1-hour TTL.
    #[must_use]
    pub fn with_cache_write_1h(mut self, price: f64) -> Self {
        self.cache_write_1h = Some(price);
        self
    }

    fn rates(&self) -> Rates {
        Rates::new(
            self.input,
            self.cached_input,
            self.cache_write,
            self.cache_write_1h,
            self.output,
        )
    }
}

/// The prices of one model, in US dollars per million tokens.
///
/// ```
/// use modelgate::Usage;
/// use modelgate::pricing::{ModelPrice, PriceTier};
/// let price = ModelPrice::new(1.25, 10.0)
///     .with_cached_input(0.125)
///     .with_tiers(vec![PriceTier::new(200_000, 2.50, 15.0).with_cached_input(0.25)]);
/// assert_eq!(price.cost(&Usage::new(1_000_000, 0)), 2.50); // above 200k: the tier's price
/// assert_eq!(price.estimate(100_000, 100_000), 0.125 + 1.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelPrice {
    /// USD per million uncached prompt tokens.
    pub input: f64,
    /// USD per million prompt tokens read from the cache (`input` when `None`).
    pub cached_input: Option<f64>,
    /// USD per million prompt tokens written to the cache with the default (5-minute) TTL
    /// (`input` when `None`).
    pub cache_write: Option<f64>,
    /// USD per million prompt tokens written to the cache with a 1-hour TTL (`cache_write`
    /// when `None`).
    pub cache_write_1h: Option<f64>,
    /// USD per million output tokens, reasoning included.
    pub output: f64,
    /// The most tokens the model reads and writes in one request, when known.
    pub context_window: Option<u64>,
    /// The most tokens the model writes in one answer, when known.
    pub max_output_tokens: Option<u64>,
    /// Prices from a number of prompt tokens on (see [`PriceTier`]).
    pub tiers: Vec<PriceTier>,
    /// Where the prices were read (the provider's pricing page).
    pub source: Option<String>,
    /// When the prices were read (`YYYY-MM-DD`).
    pub date: Option<String>,
}

impl ModelPrice {
    /// A price of `input` per million uncached prompt tokens and `output` per million output
    /// tokens (USD), with no cache prices, limits or tiers (add them with the `with_*` setters).
    pub fn new(input: f64, output: f64) -> Self {
        ModelPrice {
            input,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
            output,
            context_window: None,
            max_output_tokens: None,
            tiers: Vec::new(),
            source: None,
            date: None,
        }
    }

    /// Sets the price of prompt tokens read from the cache.
    #[must_use]
    pub fn with_cached_input(mut self, price: f64) -> Self {
        self.cached_input = Some(price);
        self
    }

    /// Sets the price of prompt tokens written to the cache (5-minute TTL).
    #[must_use]
    pub fn with_cache_write(mut self, price: f64) -> Self {
        self.cache_write = Some(price);
        self
    }

    /// Sets the price of prompt tokens written to the cache with a 1-hour TTL.
    #[must_use]
    pub fn with_cache_write_1h(mut self, price: f64) -> Self {
        self.cache_write_1h = Some(price);
        self
    }

    /// Sets the context window.
    #[must_use]
    pub fn with_context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// Sets the most tokens one answer may have.
    #[must_use]
    pub fn with_max_output_tokens(mut self, tokens: u64) -> Self {
        self.max_output_tokens = Some(tokens);
        self
    }

    /// Sets the tiers (in any order: the highest one a prompt exceeds applies).
    #[must_use]
    pub fn with_tiers(mut self, tiers: Vec<PriceTier>) -> Self {
        self.tiers = tiers;
        self
    }

    /// Sets where the prices were read.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets when the prices were read.
    #[must_use]
    pub fn with_date(mut self, date: impl Into<String>) -> Self {
        self.date = Some(date.into());
        self
    }

    /// The prices that apply to a prompt of `input_tokens`: the highest tier it exceeds, else
    /// the base prices.
    fn rates_for(&self, input_tokens: u64) -> Rates {
        let mut best: Option<&PriceTier> = None;
        for tier in &self.tiers {
            if input_tokens > tier.above_input_tokens
                && best.is_none_or(|b| tier.above_input_tokens > b.above_input_tokens)
            {
                best = Some(tier);
            }
        }
        match best {
            Some(tier) => tier.rates(),
            None => Rates::new(
                self.input,
                self.cached_input,
                self.cache_write,
                self.cache_write_1h,
                self.output,
            ),
        }
    }

    /// The cost in US dollars of a call with this usage (see the [module docs](self) for the
    /// rules). Counts that do not add up (more cached tokens than prompt tokens) are clamped,
    /// never negative.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let r = self.rates_for(usage.input_tokens);
        let input = usage.input_tokens;
        let cached = usage.cached_input_tokens.min(input);
        let written = usage
            .cache_creation_input_tokens
            .min(input.saturating_sub(cached));
        let written_1h = usage.cache_creation_1h_input_tokens.min(written);
        let written_5m = written - written_1h;
        let uncached = input - cached - written;
        (uncached as f64 * r.input
            + cached as f64 * r.cached_input
            + written_5m as f64 * r.cache_write
            + written_1h as f64 * r.cache_write_1h
            + usage.output_tokens as f64 * r.output)
            / PER_MILLION
    }

    /// The cost in US dollars of `input_tokens` uncached prompt tokens and `output_tokens`
    /// output tokens, tiers applied: a request's worst case before it is sent (with
    /// `output_tokens` its `max_tokens`, or the model's [`max_output_tokens`](Self::max_output_tokens)).
    pub fn estimate(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        let r = self.rates_for(input_tokens);
        (input_tokens as f64 * r.input + output_tokens as f64 * r.output) / PER_MILLION
    }
}

/// The five prices that apply to one request, defaults filled in.
#[derive(Debug, Clone, Copy)]
struct Rates {
    input: f64,
    cached_input: f64,
    cache_write: f64,
    cache_write_1h: f64,
    output: f64,
}

impl Rates {
    fn new(
        input: f64,
        cached_input: Option<f64>,
        cache_write: Option<f64>,
        cache_write_1h: Option<f64>,
        output: f64,
    ) -> Self {
        let cache_write = cache_write.unwrap_or(input);
        Rates {
            input,
            cached_input: cached_input.unwrap_or(input),
            cache_write,
            cache_write_1h: cache_write_1h.unwrap_or(cache_write),
            output,
        }
    }
}

/// Prices by provider and model.
///
/// Lookups allocate nothing: the table is a map of providers, each a map of models.
/// See the [module docs](self) for how model names match and how a cost is computed.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct PriceTable {
    providers: BTreeMap<String, BTreeMap<String, Arc<ModelPrice>>>,
}

// Short on purpose: a table is printed inside `CallOptions` and router debug output.
impl std::fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceTable")
            .field("providers", &self.providers.len())
            .field("models", &self.len())
            .finish()
    }
}

impl PriceTable {
    /// The table shipped with the crate (`src/pricing/prices.json`), parsed once.
    ///
    /// If the shipped file could not be parsed (a packaging error; a unit test guards against
    /// it), this is an empty table: costs are then unknown, and nothing panics.
    pub fn builtin() -> &'static PriceTable {
        static BUILTIN: OnceLock<PriceTable> = OnceLock::new();
        BUILTIN.get_or_init(|| PriceTable::from_json(BUILTIN_JSON).unwrap_or_default())
    }

    /// A table with no prices.
    pub fn empty() -> Self {
        PriceTable::default()
    }

    /// Reads a table from JSON in the [price file format](self#price-file-format).
    ///
    /// # Errors
    /// `ErrorKind::Config` when the text is not JSON, or not that format: a missing `models`,
    /// a key without `/`, a missing `input` or `output`, a price that is not a non-negative
    /// number, a token count that is not a non-negative integer, a tier without
    /// `above_input_tokens`, or an unknown field. The message names the entry and the field, as
    /// in `prices: "openai/gpt-4o".cached_input: expected a non-negative number, found "x"`.
    pub fn from_json(json: &str) -> Result<PriceTable, Error> {
        parse(json).map_err(|msg| Error::config(format!("prices: {msg}")))
    }

    /// Reads a table from a JSON file (see [`from_json`](Self::from_json)).
    ///
    /// # Errors
    /// `ErrorKind::Config` when the file cannot be read, or for any error of
    /// [`from_json`](Self::from_json); the message starts with the file's path.
    pub fn from_file(path: impl AsRef<Path>) -> Result<PriceTable, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "{}: cannot read the price file: {e}",
                path.display()
            ))
        })?;
        parse(&text).map_err(|msg| Error::config(format!("{}: prices: {msg}", path.display())))
    }

    /// This table with `other`'s entries added, each replacing this table's entry for the same
    /// provider and model.
    #[must_use]
    pub fn with_overrides(mut self, other: PriceTable) -> PriceTable {
        for (provider, models) in other.providers {
            self.providers.entry(provider).or_default().extend(models);
        }
        self
    }

    /// Sets the price of `provider`'s `model` (replacing any).
    pub fn insert(
        &mut self,
        provider: impl Into<String>,
        model: impl Into<String>,
        price: ModelPrice,
    ) {
        self.providers
            .entry(provider.into())
            .or_default()
            .insert(model.into(), Arc::new(price));
    }

    /// The price of `provider`'s `model`: its exact entry, or the entry it is a dated or
    /// versioned name of (see the [module docs](self#model-names)). `None` when unknown.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Arc<ModelPrice>> {
        let models = self.providers.get(provider)?;
        if let Some(price) = models.get(model) {
            return Some(price);
        }
        let bytes = model.as_bytes();
        SUFFIXES.iter().find_map(|shape| {
            let cut = bytes.len().checked_sub(shape.len())?;
            if cut == 0 || !suffix_matches(&bytes[cut..], shape) {
                return None;
            }
            // The suffix is ASCII and starts with `-`, so `cut` is a char boundary.
            models.get(model.get(..cut)?)
        })
    }

    /// The price of `model` at a provider named `name` whose kind is `kind` (a gateway's
    /// `eu-openai` of kind `openai`): by name first, then by kind, so the built-in prices
    /// serve renamed providers. `None` when neither knows the model.
    pub fn lookup_kind(&self, name: &str, kind: &str, model: &str) -> Option<&Arc<ModelPrice>> {
        self.lookup(name, model).or_else(|| {
            if kind == name {
                None
            } else {
                self.lookup(kind, model)
            }
        })
    }

    /// The cost in US dollars of a call to `provider`'s `model` with this usage, or `None`
    /// when the model has no price.
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<f64> {
        self.lookup(provider, model).map(|p| p.cost(usage))
    }

    /// Every entry as `(provider, model, price)`, in order of provider then model.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Arc<ModelPrice>)> {
        self.providers.iter().flat_map(|(provider, models)| {
            models
                .iter()
                .map(move |(model, price)| (provider.as_str(), model.as_str(), price))
        })
    }

    /// How many entries the table has.
    pub fn len(&self) -> usize {
        self.providers.values().map(BTreeMap::len).sum()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.providers.values().all(BTreeMap::is_empty)
    }
}

/// The date and version suffixes a model name may add to its key: `D` is an ASCII digit,
/// anything else itself. Longest first, so that a name is cut at its longest suffix.
const SUFFIXES: [&[u8]; 5] = [
    b"-DDDD-DD-DD", // -2024-07-18
    b"-DDDDDDDD",   // -20250929
    b"-latest",
    b"-DDDD", // -0613
    b"-DDD",  // -001
];

fn suffix_matches(tail: &[u8], shape: &[u8]) -> bool {
    tail.len() == shape.len()
        && tail.iter().zip(shape).all(|(&c, &s)| match s {
            b'D' => c.is_ascii_digit(),
            _ => c == s,
        })
}

// ---------------------------------------------------------------------------------------------
// Parsing. Not a hot path: the JSON is read into a `Value` so that every message can name the
// entry and the field.

const ENTRY_FIELDS: &[&str] = &[
    "input",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "output",
    "context_window",
    "max_output_tokens",
    "tiers",
    "source",
    "date",
];

const TIER_FIELDS: &[&str] = &[
    "above_input_tokens",
    "input",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "output",
];

fn parse(json: &str) -> Result<PriceTable, String> {
    let root: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(root) = root else {
        return Err(format!(
            "expected an object with \"models\", found {}",
            shown(&root)
        ));
    };
    let mut source = None;
    let mut date = None;
    let mut models = None;
    for (key, value) in &root {
        match key.as_str() {
            "models" => models = Some(value),
            "source" => source = Some(string(value, key)?),
            "date" => date = Some(string(value, key)?),
            _ => {
                return Err(format!(
                    "{key:?}: unknown field (expected \"models\", \"source\" or \"date\")"
                ));
            }
        }
    }
    let Some(models) = models else {
        return Err("missing field \"models\"".to_owned());
    };
    let Value::Object(models) = models else {
        return Err(format!(
            "models: expected an object of \"provider/model\" keys, found {}",
            shown(models)
        ));
    };
    let mut table = PriceTable::empty();
    for (key, value) in models {
        let (provider, model) = match key.split_once('/') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => (p, m),
            _ => return Err(format!("{key:?}: a key must be \"provider/model\"")),
        };
        let mut price = entry(value).map_err(|msg| format!("{key:?}{msg}"))?;
        if price.source.is_none() {
            price.source.clone_from(&source);
        }
        if price.date.is_none() {
            price.date.clone_from(&date);
        }
        table.insert(provider, model, price);
    }
    Ok(table)
}

/// One entry; errors start with the path below the entry (`.cached_input: …`).
fn entry(value: &Value) -> Result<ModelPrice, String> {
    let obj = object(value, ENTRY_FIELDS)?;
    let mut price = ModelPrice::new(
        required_price(obj, "input")?,
        required_price(obj, "output")?,
    );
    price.cached_input = optional_price(obj, "cached_input")?;
    price.cache_write = optional_price(obj, "cache_write")?;
    price.cache_write_1h = optional_price(obj, "cache_write_1h")?;
    price.context_window = optional_count(obj, "context_window")?;
    price.max_output_tokens = optional_count(obj, "max_output_tokens")?;
    if let Some(v) = obj.get("source") {
        price.source = Some(string(v, ".source")?);
    }
    if let Some(v) = obj.get("date") {
        price.date = Some(string(v, ".date")?);
    }
    if let Some(tiers) = obj.get("tiers") {
        let Value::Array(tiers) = tiers else {
            return Err(format!(".tiers: expected an array, found {}", shown(tiers)));
        };
        for (i, t) in tiers.iter().enumerate() {
            price
                .tiers
                .push(tier(t).map_err(|msg| format!(".tiers[{i}]{msg}"))?);
        }
    }
    Ok(price)
}

fn tier(value: &Value) -> Result<PriceTier, String> {
    let obj = object(value, TIER_FIELDS)?;
    let Some(above) = optional_count(obj, "above_input_tokens")? else {
        return Err(": missing field \"above_input_tokens\"".to_owned());
    };
    let mut tier = PriceTier::new(
        above,
        required_price(obj, "input")?,
        required_price(obj, "output")?,
    );
    tier.cached_input = optional_price(obj, "cached_input")?;
    tier.cache_write = optional_price(obj, "cache_write")?;
    tier.cache_write_1h = optional_price(obj, "cache_write_1h")?;
    Ok(tier)
}

fn object<'a>(value: &'a Value, fields: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let Value::Object(obj) = value else {
        return Err(format!(": expected an object, found {}", shown(value)));
    };
    if let Some(unknown) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(format!(
            ".{unknown}: unknown field (expected one of {})",
            fields.join(", ")
        ));
    }
    Ok(obj)
}

fn required_price(obj: &Map<String, Value>, field: &str) -> Result<f64, String> {
    optional_price(obj, field)?.ok_or_else(|| format!(": missing field \"{field}\""))
}

fn optional_price(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, String> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
            _ => Err(format!(
                ".{field}: expected a non-negative number, found {}",
                shown(v)
            )),
        },
    }
}

fn optional_count(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            format!(
                ".{field}: expected a non-negative integer, found {}",
                shown(v)
            )
        }),
    }
}

/// A string field; `label` starts the message (`source`, or `.source` below an entry).
fn string(value: &Value, label: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!(
            "{label}: expected a string, found {}",
            shown(value)
        )),
    }
}

/// A value as a message shows it: its JSON, cut short when long.
fn shown(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 40 {
        let mut cut = 40;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
