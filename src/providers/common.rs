//! What every provider builder shares: credentials, base URL, HTTP client, timeouts, headers.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use crate::error::Error;
use crate::transport::{self, Credential, DEFAULT_MAX_BODY, Endpoint, Timeouts};

/// How a provider wants its key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth {
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// The key as the value of this header (`x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

impl Auth {
    /// The header the key goes in.
    pub(crate) fn header_name(self) -> HeaderName {
        match self {
            Auth::Bearer => reqwest::header::AUTHORIZATION,
            Auth::Header(name) => HeaderName::from_static(name),
        }
    }

    /// The header value carrying `key`, marked sensitive; `None` when a header cannot carry it.
    pub(crate) fn header_value(self, key: &str) -> Option<HeaderValue> {
        let mut value = match self {
            Auth::Bearer => {
                let mut value = String::with_capacity(7 + key.len());
                value.push_str("Bearer ");
                value.push_str(key);
                HeaderValue::try_from(value).ok()?
            }
            Auth::Header(_) => HeaderValue::from_str(key).ok()?,
        };
        value.set_sensitive(true);
        Some(value)
    }
}

/// Settings common to every provider builder. Setters never fail; [`Settings::endpoint`] checks.
#[derive(Default)]
pub(crate) struct Settings {
    /// A fixed key (`api_key`, the environment) or a source (`api_key_source`); the last set wins.
    pub(crate) api_key: Option<Credential>,
    pub(crate) base_url: Option<String>,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) timeouts: Option<Timeouts>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_body: Option<usize>,
    pub(crate) prices: Option<std::sync::Arc<crate::pricing::PriceTable>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("api_key", &self.api_key)
            .field("base_url", &self.base_url)
            .field("timeouts", &self.timeouts)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A process environment variable, when set and valid Unicode.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Settings {
    /// Reads the key from `key_var` and an optional base URL from `base_var`.
    // The OpenAI-format providers go through `from_vars` so that tests can inject variables;
    // other providers may call this directly.
    #[allow(dead_code)]
    pub(crate) fn from_env(
        key_var: &str,
        base_var: &str,
        key_required: bool,
    ) -> Result<Self, Error> {
        Self::from_vars(key_var, base_var, key_required, env_var)
    }

    /// As [`Settings::from_env`], reading variables through `var` (tests pass a map: setting
    /// real environment variables is `unsafe` and races with other test threads).
    pub(crate) fn from_vars(
        key_var: &str,
        base_var: &str,
        key_required: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut settings = Settings::default();
        match var(key_var) {
            Some(key) if !key.trim().is_empty() => {
                settings.api_key = Some(Credential::Static(key.trim().into()));
            }
            _ if key_required => {
                return Err(Error::config(format!(
                    "environment variable {key_var} is not set"
                )));
            }
            _ => {}
        }
        if let Some(base) = var(base_var)
            && !base.trim().is_empty()
        {
            settings.base_url = Some(base.trim().to_owned());
        }
        Ok(settings)
    }

    /// Checks everything and builds the endpoint.
    pub(crate) fn endpoint(
        self,
        provider: &str,
        default_base: &str,
        auth: Auth,
        key_required: bool,
        mut headers: HeaderMap,
    ) -> Result<Endpoint, Error> {
        let base = self.base_url.unwrap_or_else(|| default_base.to_owned());
        let base = base.trim().trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(Error::config(format!(
                    "{provider}: base URL `{base}` is not an http(s) URL"
                )));
            }
        }
        let credential = match (self.api_key, key_required) {
            (Some(Credential::Static(key)), _) if !key.expose_secret().is_empty() => {
                let value = auth.header_value(key.expose_secret()).ok_or_else(|| {
                    Error::config(format!(
                        "{provider}: the API key has characters a header cannot carry"
                    ))
                })?;
                headers.insert(auth.header_name(), value);
                Some(Credential::Static(key))
            }
            (Some(Credential::Source(source)), _) => Some(Credential::Source(source)),
            (_, true) => return Err(Error::config(format!("{provider}: no API key was given"))),
            _ => None,
        };
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::config(format!("{provider}: `{name}` is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::config(format!("{provider}: bad value for header `{name}`")))?;
            headers.insert(name, value);
        }
        let timeouts = self.timeouts.unwrap_or_default();
        if timeouts.first_byte.is_zero()
            || timeouts.idle.is_zero()
            || timeouts.total.is_some_and(|t| t.is_zero())
        {
            return Err(Error::config(format!(
                "{provider}: timeouts must be greater than zero"
            )));
        }
        let client = match self.http_client {
            Some(client) => client,
            None if timeouts.connect != Timeouts::default().connect => {
                transport::build_client(timeouts.connect)?
            }
            None => transport::shared_client(),
        };
        Ok(Endpoint {
            client,
            base_url: base,
            headers,
            credential,
            auth,
            timeouts,
            max_body: self.max_body.unwrap_or(DEFAULT_MAX_BODY),
            prices: self.prices,
        })
    }
}

/// The setters every provider builder has, on a struct with a `settings: Settings` field.
macro_rules! common_builder_methods {
    () => {
        /// Sets the API key. It is kept as a `SecretString`: never printed, logged or put in errors.
        /// Replaces a source set with `api_key_source`.
        pub fn api_key(mut self, key: impl Into<String>) -> Self {
            self.settings.api_key = Some($crate::transport::Credential::Static(
                secrecy::SecretString::from(key.into()),
            ));
            self
        }

        /// Asks `source` for the API key at every request instead of using a fixed one: a file
        /// re-read when it changes, a command re-run after a TTL, an environment variable, or
        /// your own [`CredentialSource`](crate::credentials::CredentialSource) (see
        /// [`credentials`](crate::credentials)). Replaces a key set with `api_key`.
        ///
        /// A request whose key cannot be had fails with the source's error (the built-in sources
        /// give `ErrorKind::Auth`) and is not sent; a key a header cannot carry gives
        /// `ErrorKind::Config`. The key a request was sent with is scrubbed from its errors.
        pub fn api_key_source(
            mut self,
            source: std::sync::Arc<dyn $crate::credentials::CredentialSource>,
        ) -> Self {
            self.settings.api_key = Some($crate::transport::Credential::Source(source));
            self
        }

        /// Sets the base URL (a proxy, a gateway, a local simulator). Checked by `build()`.
        pub fn base_url(mut self, url: impl Into<String>) -> Self {
            self.settings.base_url = Some(url.into());
            self
        }

        /// Uses this `reqwest::Client`, so several providers share one connection pool.
        /// Without it, every provider shares a process-wide client.
        pub fn http_client(mut self, client: reqwest::Client) -> Self {
            self.settings.http_client = Some(client);
            self
        }

        /// Sets every timeout at once (see [`Timeouts`](crate::Timeouts) for the defaults).
        pub fn timeouts(mut self, timeouts: crate::Timeouts) -> Self {
            self.settings.timeouts = Some(timeouts);
            self
        }

        /// Sets the whole-call timeout (`None` for no limit); a request's own timeout wins.
        pub fn request_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.settings
                .timeouts
                .get_or_insert_with(Default::default)
                .total = timeout;
            self
        }

        /// Sets the longest wait for the response head.
        pub fn first_byte_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings
                .timeouts
                .get_or_insert_with(Default::default)
                .first_byte = timeout;
            self
        }

        /// Sets the longest silence between two reads of a stream.
        pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings
                .timeouts
                .get_or_insert_with(Default::default)
                .idle = timeout;
            self
        }

        /// Adds a header sent with every request (checked by `build()`).
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.settings.headers.push((name.into(), value.into()));
            self
        }

        /// Caps the size of a non-streamed response body (default 32 MiB); larger bodies fail
        /// with `ErrorKind::Decode`.
        pub fn max_response_bytes(mut self, max: usize) -> Self {
            self.settings.max_body = Some(max);
            self
        }

        /// Prices responses from this table instead of the built-in one
        /// ([`PriceTable::builtin`](crate::pricing::PriceTable::builtin)), for the models it
        /// has (start from `PriceTable::builtin().clone()` and add overrides to keep the
        /// others). A table passed with a call's
        /// [`CallOptions::prices`](crate::CallOptions::prices) wins over this one.
        pub fn prices(mut self, prices: std::sync::Arc<crate::pricing::PriceTable>) -> Self {
            self.settings.prices = Some(prices);
            self
        }
    };
}

pub(crate) use common_builder_methods;
