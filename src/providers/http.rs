//! The one HTTP provider every built-in provider is: an [`Endpoint`] (where and how to send)
//! and a [`Dialect`] (how to translate). The public provider types wrap it and get their
//! [`ChatProvider`](crate::ChatProvider) impl from [`http_chat_provider!`].

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::provider::CallOptions;
use crate::transport::{Call, Dialect, Endpoint};
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// An endpoint and the dialect it speaks.
pub(crate) struct HttpProvider {
    pub(crate) endpoint: Endpoint,
    pub(crate) dialect: Box<dyn Dialect>,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("provider", &self.dialect.provider())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl HttpProvider {
    pub(crate) fn new(endpoint: Endpoint, dialect: impl Dialect + 'static) -> Self {
        HttpProvider {
            endpoint,
            dialect: Box::new(dialect),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.dialect.provider()
    }

    pub(crate) async fn chat(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        self.endpoint
            .chat(self.dialect.as_ref(), &Call::new(req, opts))
            .await
    }

    pub(crate) async fn chat_stream(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        self.endpoint
            .chat_stream(self.dialect.as_ref(), &Call::new(req, opts))
            .await
    }
}

/// The `ChatProvider` impl of a public provider type whose `http` field is an [`HttpProvider`].
macro_rules! http_chat_provider {
    ($provider:ty) => {
        #[async_trait::async_trait]
        impl $crate::provider::ChatProvider for $provider {
            fn name(&self) -> &str {
                self.http.name()
            }

            async fn chat(
                &self,
                req: &$crate::types::ChatRequest,
            ) -> Result<$crate::types::ChatResponse, $crate::error::Error> {
                self.http
                    .chat(req, &$crate::provider::CallOptions::default())
                    .await
            }

            async fn chat_stream(
                &self,
                req: &$crate::types::ChatRequest,
            ) -> Result<$crate::types::ChatStream, $crate::error::Error> {
                self.http
                    .chat_stream(req, &$crate::provider::CallOptions::default())
                    .await
            }

            async fn chat_with(
                &self,
                req: &$crate::types::ChatRequest,
                opts: &$crate::provider::CallOptions<'_>,
            ) -> Result<$crate::types::ChatResponse, $crate::error::Error> {
                self.http.chat(req, opts).await
            }

            async fn chat_stream_with(
                &self,
                req: &$crate::types::ChatRequest,
                opts: &$crate::provider::CallOptions<'_>,
            ) -> Result<$crate::types::ChatStream, $crate::error::Error> {
                self.http.chat_stream(req, opts).await
            }
        }
    };
}

pub(crate) use http_chat_provider;

/// The JSON body of one call: `body` serialized, with the call's extra fields merged into its
/// top level (they win over ours).
///
/// The merge goes through our own JSON text rather than `serde_json::to_value`, which would
/// widen `f32`s (`0.7` would be sent as `0.699999988079071`); with no extra fields the body is
/// serialized once and not parsed back.
pub(crate) fn json_body(body: &impl Serialize, call: &Call<'_>) -> Result<Vec<u8>, Error> {
    let ours = serde_json::to_vec(body).map_err(encode_error)?;
    if !call.has_extra() {
        return Ok(ours);
    }
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&ours).map_err(encode_error)?;
    for (k, v) in call.extra() {
        map.insert(k.to_owned(), v.clone());
    }
    serde_json::to_vec(&map).map_err(encode_error)
}

/// A request that cannot be written as JSON (a non-finite float, a map with non-string keys).
pub(crate) fn encode_error(e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "the request cannot be encoded as JSON",
    )
    .with_source(e)
}
