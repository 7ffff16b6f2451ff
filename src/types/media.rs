//! Media fetched on behalf of one request, shared by all its attempts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::{Error, ErrorKind};

/// Images fetched from URLs for one request, shared by all its attempts so that a retry or
/// hedge does not fetch them again.
///
/// A provider that needs image bytes inline (Gemini) fetches each `http(s)` image URL of a
/// request once per cache: attempts that ask for a URL while it is being fetched wait for that
/// fetch, later attempts reuse its result, and a fetch that failed stays failed (its error is
/// given again, not retried) for as long as the cache lives. Create one per request and drop it
/// with the request: it holds the images' bytes.
///
/// Results are kept apart by the rules they were fetched under (size caps, time limit, whether
/// private hosts are allowed), so a provider with stricter rules never reuses what a more
/// permissive one fetched.
///
/// [`MediaCache::new`] does not allocate; the cache allocates when the first image is fetched.
/// It is `Send + Sync` and cheap to share by reference between concurrent attempts.
#[derive(Default)]
pub struct MediaCache {
    entries: Mutex<HashMap<MediaKey, Arc<OnceCell<Fetched>>>>,
}

impl MediaCache {
    /// An empty cache. Never fails and does not allocate.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many URLs the cache holds a result (an image or a failure) or a fetch under way for.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was fetched through the cache yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MediaKey, Arc<OnceCell<Fetched>>>> {
        // A poisoned map is still a consistent map: entries are only ever inserted whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The image under `key`: the cached result, the result of a fetch already under way, or
    /// the result of `fetch`, which runs only when neither exists (or when the attempt that was
    /// fetching was dropped before it finished). A failure is remembered and rebuilt, with its
    /// kind and message, for every later call.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        key: MediaKey,
        fetch: F,
    ) -> Result<Arc<InlineImage>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<InlineImage, Error>>,
    {
        // The lock is held only to find or insert the cell, never across an await.
        let cell = self.lock().entry(key).or_default().clone();
        let fetched = cell
            .get_or_init(|| async {
                fetch().await.map(Arc::new).map_err(|e| FailedFetch {
                    kind: e.kind(),
                    message: e.message().to_owned(),
                })
            })
            .await;
        match fetched {
            Ok(image) => Ok(Arc::clone(image)),
            Err(failed) => Err(Error::new(failed.kind, failed.message.clone())),
        }
    }
}

impl std::fmt::Debug for MediaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The images themselves (megabytes of base64) are left out.
        f.debug_struct("MediaCache")
            .field("urls", &self.len())
            .finish()
    }
}

/// What a cached fetch produced.
type Fetched = Result<Arc<InlineImage>, FailedFetch>;

/// A failed fetch as it is remembered: [`Error`] is not `Clone`, so its kind and message are
/// kept and a new error is built from them each time.
#[derive(Debug)]
struct FailedFetch {
    kind: ErrorKind,
    message: String,
}

/// The rules a fetch followed. Two fetches of one URL under different rules may end
/// differently, so they are cached apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FetchRules {
    /// Whether private, loopback and other non-public addresses may be fetched.
    pub(crate) allow_private: bool,
    /// The cap on one image.
    pub(crate) max_image_bytes: usize,
    /// The cap on all the images of a request.
    pub(crate) max_total_bytes: usize,
    /// The time one fetch may take.
    pub(crate) timeout: Duration,
}

/// A cache key: the URL and the rules it is fetched under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MediaKey {
    pub(crate) rules: FetchRules,
    pub(crate) url: String,
}

/// One fetched image, ready to send inline.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InlineImage {
    /// The media type (`image/png`).
    pub(crate) media_type: String,
    /// The bytes, base64-encoded (standard alphabet, padded).
    pub(crate) data: String,
    /// How many bytes the image has (before encoding).
    pub(crate) size: usize,
}

/// The images of one request that were given by `http(s)` URL, by URL. The images are shared
/// (not copied) with the [`MediaCache`] they came from. An empty map does not allocate.
#[derive(Debug, Default, Clone)]
pub(crate) struct InlineImages {
    by_url: HashMap<String, Arc<InlineImage>>,
}

impl InlineImages {
    /// Adds (or replaces) the image for `url`.
    pub(crate) fn insert(&mut self, url: String, image: Arc<InlineImage>) {
        self.by_url.insert(url, image);
    }

    /// The image fetched for `url`, if it was.
    pub(crate) fn get(&self, url: &str) -> Option<&InlineImage> {
        self.by_url.get(url).map(Arc::as_ref)
    }

    /// How many images there are.
    #[cfg_attr(not(test), allow(dead_code))]
    #[allow(dead_code)] // read by tests
    pub(crate) fn len(&self) -> usize {
        self.by_url.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(url: &str) -> MediaKey {
        MediaKey {
            rules: FetchRules {
                allow_private: false,
                max_image_bytes: 10,
                max_total_bytes: 10,
                timeout: Duration::from_secs(1),
            },
            url: url.to_owned(),
        }
    }

    fn png() -> InlineImage {
        InlineImage {
            media_type: "image/png".into(),
            data: "AAAA".into(),
            size: 3,
        }
    }

    #[test]
    fn new_caches_are_empty_shareable_and_quiet() {
        fn shareable<T: Send + Sync + std::fmt::Debug + Default>() {}
        shareable::<MediaCache>();
        let cache = MediaCache::new();
        assert!(cache.is_empty());
        assert_eq!(format!("{cache:?}"), "MediaCache { urls: 0 }");
    }

    #[tokio::test]
    async fn one_fetch_per_key_and_failures_stay_failed() {
        let cache = MediaCache::new();
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            let image = cache
                .get_or_fetch(key("http://a/x.png"), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(png())
                })
                .await
                .unwrap();
            assert_eq!(*image, png());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        for _ in 0..3 {
            let err = cache
                .get_or_fetch(key("http://a/missing.png"), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Error::new(ErrorKind::InvalidRequest, "HTTP 404"))
                })
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest);
            assert_eq!(err.message(), "HTTP 404");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Other rules, other entry.
        let mut strict = key("http://a/x.png");
        strict.rules.max_image_bytes = 1;
        cache
            .get_or_fetch(strict, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(png())
            })
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(cache.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_fetch_lets_the_next_caller_fetch() {
        let cache = MediaCache::new();
        let stalled = cache.get_or_fetch(key("http://a/x.png"), || async {
            std::future::pending::<()>().await;
            Ok(png())
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(1), stalled)
                .await
                .is_err()
        );
        let image = cache
            .get_or_fetch(key("http://a/x.png"), || async { Ok(png()) })
            .await
            .unwrap();
        assert_eq!(image.size, 3);
    }
}
