//! A provider under the name a gateway config gives it (`[providers.eu-openai]` of kind
//! `openai`): its answers, streams and errors carry that name, and its prices are found by
//! name, then by kind.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::provider::{CallOptions, ChatProvider};
use crate::types::{ChatRequest, ChatResponse, ChatStream};

/// `inner` under another name.
pub(crate) struct Named {
    name: String,
    inner: Arc<dyn ChatProvider>,
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("kind", &self.inner.kind())
            .finish()
    }
}

impl Named {
    /// `inner` named `name`; `inner` itself when the names agree.
    pub(crate) fn wrap(name: &str, inner: Arc<dyn ChatProvider>) -> Arc<dyn ChatProvider> {
        if inner.name() == name {
            return inner;
        }
        Arc::new(Named {
            name: name.to_owned(),
            inner,
        })
    }

    fn rename(&self, err: Error) -> Error {
        err.with_provider(self.name.clone())
    }
}

#[async_trait]
impl ChatProvider for Named {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        self.inner.kind()
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, Error> {
        self.chat_with(req, &CallOptions::default()).await
    }

    async fn chat_stream(&self, req: &ChatRequest) -> Result<ChatStream, Error> {
        self.chat_stream_with(req, &CallOptions::default()).await
    }

    async fn chat_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatResponse, Error> {
        let mut r = self
            .inner
            .chat_with(req, opts)
            .await
            .map_err(|e| self.rename(e))?;
        r.provider.clone_from(&self.name);
        Ok(r)
    }

    async fn chat_stream_with(
        &self,
        req: &ChatRequest,
        opts: &CallOptions<'_>,
    ) -> Result<ChatStream, Error> {
        let mut s = self
            .inner
            .chat_stream_with(req, opts)
            .await
            .map_err(|e| self.rename(e))?;
        s.set_provider(self.name.clone());
        Ok(s)
    }
}
