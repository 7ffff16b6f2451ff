//! Routing rules: pick a route from the prompt (its estimated size, images, audio, tools and
//! tags). First match wins; a rule route has a default.
//!
//! The seed's routing table, in a few lines:
//!
//! ```
//! use modelgate::router::{Condition, Rules};
//! let auto = Rules::new()
//!     .when(Condition::has_images(), "vision")                    // Gemini
//!     .when(Condition::tag("quality", "accuracy"), "accurate")     // Claude
//!     .when(Condition::min_input_tokens(100_000), "long")         // a cheaper long-context model
//!     .when(Condition::max_input_tokens(499), "cheap")            // DeepSeek: under 500 tokens
//!     .otherwise("gpt");                                           // everything else
//! # let _ = auto;
//! ```

use crate::types::ChatRequest;

/// A test on a request, for a [`Rules`] route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition(Test);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    MinInputTokens(u64),
    MaxInputTokens(u64),
    HasImages,
    HasAudio,
    HasTools,
    Tag(String, String),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    /// The prompt's estimated input tokens ([`tokens::estimate_request`](crate::tokens::estimate_request))
    /// are at least `n`.
    pub fn min_input_tokens(n: u64) -> Self {
        Condition(Test::MinInputTokens(n))
    }

    /// The prompt's estimated input tokens are at most `n`.
    pub fn max_input_tokens(n: u64) -> Self {
        Condition(Test::MaxInputTokens(n))
    }

    /// A message carries an image.
    pub fn has_images() -> Self {
        Condition(Test::HasImages)
    }

    /// A message carries audio.
    pub fn has_audio() -> Self {
        Condition(Test::HasAudio)
    }

    /// The request offers tools.
    pub fn has_tools() -> Self {
        Condition(Test::HasTools)
    }

    /// The request's `metadata` tag `key` equals `value`.
    pub fn tag(key: impl Into<String>, value: impl Into<String>) -> Self {
        Condition(Test::Tag(key.into(), value.into()))
    }

    /// Both this and `other` hold.
    pub fn and(self, other: Condition) -> Self {
        match self.0 {
            Test::All(mut all) => {
                all.push(other);
                Condition(Test::All(all))
            }
            test => Condition(Test::All(vec![Condition(test), other])),
        }
    }

    /// This or `other` holds.
    pub fn or(self, other: Condition) -> Self {
        match self.0 {
            Test::Any(mut any) => {
                any.push(other);
                Condition(Test::Any(any))
            }
            test => Condition(Test::Any(vec![Condition(test), other])),
        }
    }

    /// Every one of `conditions` holds (true when there are none).
    pub fn all(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Condition(Test::All(conditions.into_iter().collect()))
    }

    /// At least one of `conditions` holds (false when there are none).
    pub fn any(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Condition(Test::Any(conditions.into_iter().collect()))
    }

    /// This does not hold.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Condition(Test::Not(Box::new(self)))
    }

    /// Whether `req`, whose estimated input tokens `tokens` gives (called at most once), meets
    /// the condition.
    pub(crate) fn matches(&self, req: &ChatRequest, tokens: &mut dyn FnMut() -> u64) -> bool {
        match &self.0 {
            Test::MinInputTokens(n) => tokens() >= *n,
            Test::MaxInputTokens(n) => tokens() <= *n,
            Test::HasImages => req.has_images(),
            Test::HasAudio => req.has_audio(),
            Test::HasTools => !req.tools.is_empty(),
            Test::Tag(k, v) => req.metadata.get(k).is_some_and(|x| x == v),
            Test::All(c) => c.iter().all(|c| c.matches(req, tokens)),
            Test::Any(c) => c.iter().any(|c| c.matches(req, tokens)),
            Test::Not(c) => !c.matches(req, tokens),
        }
    }
}

/// A route of rules instead of targets: the first rule whose condition holds names the route
/// that serves the request (a route of targets or another route of rules), else the default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Rules {
    pub(crate) rules: Vec<(Condition, String)>,
    pub(crate) default: Option<String>,
}

impl Rules {
    /// No rules yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: requests meeting `condition` go to `route` (unless an earlier rule matched).
    pub fn when(mut self, condition: Condition, route: impl Into<String>) -> Self {
        self.rules.push((condition, route.into()));
        self
    }

    /// The route of requests no rule matched. Without one, such a request fails with
    /// `ErrorKind::NotFound`.
    pub fn otherwise(mut self, route: impl Into<String>) -> Self {
        self.default = Some(route.into());
        self
    }

    /// The routes this route can lead to.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|(_, r)| r.as_str())
            .chain(self.default.as_deref())
    }

    /// The route `req` goes to, `None` when no rule matches and there is no default.
    pub(crate) fn pick<'r>(
        &'r self,
        req: &ChatRequest,
        tokens: &mut dyn FnMut() -> u64,
    ) -> Option<&'r str> {
        self.rules
            .iter()
            .find(|(c, _)| c.matches(req, tokens))
            .map(|(_, r)| r.as_str())
            .or(self.default.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ContentPart;

    fn seed() -> Rules {
        Rules::new()
            .when(Condition::has_images(), "vision")
            .when(Condition::tag("quality", "accuracy"), "accurate")
            .when(Condition::max_input_tokens(499), "cheap")
            .otherwise("gpt")
    }

    fn pick(rules: &Rules, req: &ChatRequest, tokens: u64) -> Option<String> {
        rules.pick(req, &mut || tokens).map(str::to_owned)
    }

    #[test]
    fn the_seed_table_routes_each_kind_of_prompt() {
        let rules = seed();
        let short = ChatRequest::new("auto").user("hi");
        assert_eq!(pick(&rules, &short, 10).as_deref(), Some("cheap"));
        assert_eq!(pick(&rules, &short, 499).as_deref(), Some("cheap"));
        assert_eq!(pick(&rules, &short, 500).as_deref(), Some("gpt"));
        let image = ChatRequest::new("auto").user_parts([
            ContentPart::text("what is this?"),
            ContentPart::image_url("https://example.com/a.png"),
        ]);
        assert_eq!(pick(&rules, &image, 10).as_deref(), Some("vision"));
        let accurate = ChatRequest::new("auto")
            .user("hi")
            .metadata("quality", "accuracy");
        assert_eq!(pick(&rules, &accurate, 10).as_deref(), Some("accurate"));
        let other_tag = ChatRequest::new("auto")
            .user("hi")
            .metadata("quality", "fast");
        assert_eq!(pick(&rules, &other_tag, 10_000).as_deref(), Some("gpt"));
    }

    #[test]
    fn combinations_and_negation() {
        let rules = Rules::new()
            .when(
                Condition::has_tools().and(Condition::min_input_tokens(100).not()),
                "small-tools",
            )
            .when(
                Condition::has_audio().or(Condition::tag("team", "voice")),
                "voice",
            );
        let tool =
            crate::types::Tool::function("f", "does f", serde_json::json!({"type": "object"}));
        let with_tools = ChatRequest::new("r").user("x").tool(tool);
        assert_eq!(
            pick(&rules, &with_tools, 50).as_deref(),
            Some("small-tools")
        );
        assert_eq!(pick(&rules, &with_tools, 150), None);
        let voice = ChatRequest::new("r").user_parts([ContentPart::audio("AAAA", "wav")]);
        assert_eq!(pick(&rules, &voice, 1).as_deref(), Some("voice"));
        let tagged = ChatRequest::new("r").user("x").metadata("team", "voice");
        assert_eq!(pick(&rules, &tagged, 1).as_deref(), Some("voice"));
        assert!(Condition::all([]).matches(&tagged, &mut || 0));
        assert!(!Condition::any([]).matches(&tagged, &mut || 0));
    }

    #[test]
    fn the_estimate_is_read_only_when_a_rule_needs_it() {
        let rules = Rules::new()
            .when(Condition::has_images(), "vision")
            .otherwise("gpt");
        let mut calls = 0;
        let req = ChatRequest::new("r").user("x");
        rules.pick(&req, &mut || {
            calls += 1;
            5
        });
        assert_eq!(calls, 0);
    }
}
