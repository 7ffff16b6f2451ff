//! Fetching the images a request gives by `http(s)` URL, for providers that take image bytes
//! inline (Gemini). Fetching is I/O, so it lives here and not in the (pure) provider modules.
//!
//! Fetching on behalf of a caller is server-side request forgery waiting to happen in a
//! gateway, so it is off unless the provider's builder turns it on, and then:
//!
//! - **Only public addresses.** Private, loopback, link-local, unique-local, unspecified,
//!   multicast, shared (CGNAT, `100.64.0.0/10`), documentation and other reserved addresses
//!   are refused (see [`is_public`]), including IPv4 addresses inside IPv6 ones (`::ffff:…`,
//!   NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). The check is on the addresses the client
//!   connects to: a dedicated client resolves names through [`PublicOnly`], which drops the
//!   non-public addresses (so a name cannot be re-resolved to another address between check and
//!   connection), and IP-literal URLs, which are never resolved, are checked before sending
//!   and in the redirect policy. That client never uses a proxy (a proxy would resolve the
//!   names itself) and follows at most [`MAX_REDIRECTS`] redirects, to `http(s)` URLs only.
//!   The builder can allow non-public hosts (tests, a trusted internal network).
//! - **Capped.** At most so many distinct URLs per request, so many bytes per image and so
//!   many bytes for all of a request's images (counted while the bodies stream in, so an
//!   oversized body is never held whole), and a time limit per fetch.
//! - **Once per request.** With a [`MediaCache`], every attempt of one request (retries,
//!   hedges) shares one fetch of each URL.
//! - **The caller's problem.** Every failure (a refused address, an unreachable host, a
//!   timeout, a non-2xx answer, an oversized image, an unknown media type) is
//!   `ErrorKind::InvalidRequest`: it is not retried and does not count against the provider's
//!   circuit, because the provider was never called.
//!
//! No provider header goes to the image host (the API key never leaves for a third party), no
//! `Referer` either, and errors show URLs without their query string (which may hold a
//! signature) or user info.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;
use reqwest::redirect;

use crate::error::{Error, ErrorKind};
use crate::types::media::{FetchRules, InlineImage, InlineImages, MediaKey};
use crate::types::{ChatRequest, ContentPart, ImageSource, MediaCache};

/// The default cap on how many distinct image URLs one request may have: 16.
pub(crate) const DEFAULT_MAX_IMAGE_URLS: usize = 16;
/// The default cap on one fetched image: 20 MiB.
pub(crate) const DEFAULT_MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The default cap on all the images fetched for one request: 20 MiB (Gemini's limit for a
/// whole request with inline data).
pub(crate) const DEFAULT_MAX_TOTAL_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The default time one image fetch may take, body included: 30 s.
pub(crate) const DEFAULT_IMAGE_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How many redirects one image fetch follows.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// How a provider fetches image URLs, as its builder was told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageOptions {
    /// The provider's name, for configuration errors (`gemini`).
    pub(crate) provider: &'static str,
    /// The builder's type name, for the hints in errors (`GeminiBuilder`).
    pub(crate) builder: &'static str,
    /// Whether image URLs are fetched at all.
    pub(crate) enabled: bool,
    /// Whether non-public addresses may be fetched.
    pub(crate) allow_private: bool,
    /// The cap on distinct image URLs per request.
    pub(crate) max_urls: usize,
    /// The cap on one image.
    pub(crate) max_image_bytes: usize,
    /// The cap on all the images of a request.
    pub(crate) max_total_bytes: usize,
    /// The time one fetch may take.
    pub(crate) timeout: Duration,
    /// The time connecting may take.
    pub(crate) connect_timeout: Duration,
}

impl ImageOptions {
    /// Fetching off, everything else at its default.
    pub(crate) fn new(provider: &'static str, builder: &'static str) -> Self {
        ImageOptions {
            provider,
            builder,
            enabled: false,
            allow_private: false,
            max_urls: DEFAULT_MAX_IMAGE_URLS,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_IMAGE_BYTES,
            timeout: DEFAULT_IMAGE_FETCH_TIMEOUT,
            connect_timeout: crate::transport::Timeouts::default().connect,
        }
    }
}

/// Fetches a provider's image URLs under its rules (see the module documentation).
#[derive(Debug)]
pub(crate) struct ImageFetcher {
    /// The dedicated client; `None` when fetching is off.
    client: Option<reqwest::Client>,
    rules: FetchRules,
    max_urls: usize,
    builder: &'static str,
}

impl ImageFetcher {
    /// A fetcher for `options`; when fetching is on, with its own client.
    ///
    /// # Errors
    /// `ErrorKind::Config` when a cap or a timeout is zero or the client cannot be built.
    pub(crate) fn new(options: ImageOptions) -> Result<Self, Error> {
        let provider = options.provider;
        for (value, name) in [
            (options.max_urls, "max_image_urls"),
            (options.max_image_bytes, "max_image_bytes"),
            (options.max_total_bytes, "max_total_image_bytes"),
        ] {
            if value == 0 {
                return Err(Error::config(format!(
                    "{provider}: {name} must be greater than zero"
                )));
            }
        }
        if options.timeout.is_zero() {
            return Err(Error::config(format!(
                "{provider}: image_fetch_timeout must be greater than zero"
            )));
        }
        let client = if options.enabled {
            Some(image_client(
                options.allow_private,
                options.connect_timeout,
            )?)
        } else {
            None
        };
        Ok(ImageFetcher {
            client,
            rules: FetchRules {
                allow_private: options.allow_private,
                max_image_bytes: options.max_image_bytes,
                max_total_bytes: options.max_total_bytes,
                timeout: options.timeout,
            },
            max_urls: options.max_urls,
            builder: options.builder,
        })
    }
}

/// The client that fetches images: public addresses only (unless allowed), no proxy, no
/// `Referer`, a bounded number of redirects.
fn image_client(allow_private: bool, connect: Duration) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect)
        .no_proxy()
        .referer(false)
        .redirect(redirect_policy(allow_private))
        .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(PublicOnly);
    }
    builder.build().map_err(|e| {
        Error::config("cannot build the image-fetching HTTP client").with_source(e.without_url())
    })
}

/// Follows at most [`MAX_REDIRECTS`] redirects, to `http(s)` URLs whose host, when it is an IP
/// literal, is public (or `allow_private`). Host names are checked by the resolver.
fn redirect_policy(allow_private: bool) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused::TooManyRedirects);
        }
        match check_target(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// Why a fetch was refused before (or instead of) connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The host is (or resolves only to) a non-public address.
    NotPublic,
    /// A redirect to something other than `http(s)`.
    Scheme,
    /// A URL without a host.
    NoHost,
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::NotPublic => {
                "the host is a private, loopback, link-local or otherwise non-public address"
            }
            Refused::Scheme => "it redirects to a URL that is not http(s)",
            Refused::NoHost => "the URL has no host",
            Refused::TooManyRedirects => "it redirects too many times",
        })
    }
}

impl std::error::Error for Refused {}

/// Whether `url` may be fetched: `http(s)`, with a host, and not a non-public IP literal
/// (unless `allow_private`). Host names pass: the resolver checks their addresses.
fn check_target(url: &reqwest::Url, allow_private: bool) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    let host = url.host_str().ok_or(Refused::NoHost)?;
    // The URL parser has normalized IPv4 literals (`2130706433`, `0x7f.1` are `127.0.0.1`)
    // and put IPv6 ones in brackets.
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match literal.parse::<IpAddr>() {
        Ok(ip) if !allow_private && !is_public(ip) => Err(Refused::NotPublic),
        _ => Ok(()),
    }
}

/// A resolver that keeps only public addresses and fails when none is left.
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(
                    Box::new(Refused::NotPublic) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is a public (globally routable unicast) address. Not public: unspecified,
/// "this network" (`0.0.0.0/8`), private (`10/8`, `172.16/12`, `192.168/16`), shared/CGNAT
/// (`100.64/10`), loopback (`127/8`, `::1`), link-local (`169.254/16`, `fe80::/10`), IETF
/// protocol assignments (`192.0.0/24`), documentation, benchmarking (`198.18/15`), the
/// deprecated 6to4 relay (`192.88.99/24`), multicast, reserved (`240/4`) and broadcast;
/// in IPv6 also `::/64` (unspecified, loopback, IPv4-compatible, IPv4-translated), unique-local
/// (`fc00::/7`), site-local (`fec0::/10`), local-use NAT64 (`64:ff9b:1::/48`), discard-only
/// (`100::/64`) and documentation (`2001:db8::/32`). An IPv4 address inside an IPv6 one
/// (`::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) is judged as that
/// IPv4 address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let not_public = a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !not_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    let not_public = s[0..4] == [0; 4]
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || (s[0] == 0x100 && s[1..4] == [0; 3])
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xff00) == 0xff00;
    !not_public
}

/// Whether `url` is an `http://` or `https://` URL (the scheme in any case).
pub(crate) fn is_http_url(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

fn remote_urls(req: &ChatRequest) -> impl Iterator<Item = &str> {
    req.messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            ContentPart::Image {
                source: ImageSource::Url(url),
                ..
            } if is_http_url(url) => Some(url.as_str()),
            _ => None,
        })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
}

/// The images `req` gives by `http(s)` URL, fetched under `fetcher`'s rules, each distinct URL
/// once and all concurrently; through `cache` when given, so that every attempt of one request
/// shares one fetch of each URL. A request without such URLs costs nothing (and allocates
/// nothing).
///
/// # Errors
/// `ErrorKind::InvalidRequest` when the request has an image URL and fetching is off, has more
/// distinct image URLs than allowed, or an image cannot be fetched (refused address,
/// unreachable host, timeout, non-2xx answer, oversized image or images, unknown media type).
pub(crate) async fn resolve_images(
    fetcher: &ImageFetcher,
    req: &ChatRequest,
    cache: Option<&MediaCache>,
) -> Result<InlineImages, Error> {
    let mut urls: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for url in remote_urls(req) {
        if seen.insert(url) {
            urls.push(url);
            if urls.len() > fetcher.max_urls {
                return Err(invalid(format!(
                    "the request has more than {} distinct image URLs (raise the cap with \
                     {}::max_image_urls)",
                    fetcher.max_urls, fetcher.builder
                )));
            }
        }
    }
    let Some(first) = urls.first() else {
        return Ok(InlineImages::default());
    };
    let Some(client) = &fetcher.client else {
        return Err(invalid(format!(
            "the image {} was not fetched: this provider needs image bytes inline and fetching \
             image URLs is off; send the bytes (ContentPart::image_base64) or a base64 data: \
             URL, or turn fetching on with {}::fetch_image_urls(true)",
            shown(first),
            fetcher.builder
        )));
    };
    let rules = fetcher.rules;
    let timeout = req.timeout.map_or(rules.timeout, |t| t.min(rules.timeout));
    let budget = AtomicUsize::new(rules.max_total_bytes);
    let budget = &budget;
    let fetches = urls.iter().map(|&url| async move {
        let fetch = || fetch_image(client, url, fetcher, timeout, budget);
        let image = match cache {
            Some(cache) => {
                let key = MediaKey {
                    rules,
                    url: url.to_owned(),
                };
                cache.get_or_fetch(key, fetch).await?
            }
            None => Arc::new(fetch().await?),
        };
        Ok::<_, Error>((url, image))
    });
    let fetched = futures::future::try_join_all(fetches).await?;
    // Images another attempt fetched drew on that attempt's budget: count them all.
    let total = fetched
        .iter()
        .fold(0usize, |sum, (_, image)| sum.saturating_add(image.size));
    if total > rules.max_total_bytes {
        return Err(total_too_large(fetcher));
    }
    let mut images = InlineImages::default();
    for (url, image) in fetched {
        images.insert(url.to_owned(), image);
    }
    Ok(images)
}

fn total_too_large(fetcher: &ImageFetcher) -> Error {
    invalid(format!(
        "the request's images are larger than {} bytes in total (raise the cap with \
         {}::max_total_image_bytes)",
        fetcher.rules.max_total_bytes, fetcher.builder
    ))
}

/// The URL as errors show it: no user info, query or fragment.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// Fetches one image within `timeout`, drawing its bytes from `budget`.
async fn fetch_image(
    client: &reqwest::Client,
    url: &str,
    fetcher: &ImageFetcher,
    timeout: Duration,
    budget: &AtomicUsize,
) -> Result<InlineImage, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        invalid(format!(
            "cannot fetch the image {}: invalid URL",
            shown(url)
        ))
    })?;
    check_target(&parsed, fetcher.rules.allow_private)
        .map_err(|refused| refused_error(url, refused, fetcher))?;
    match tokio::time::timeout(timeout, download(client, parsed, url, fetcher, budget)).await {
        Ok(result) => result,
        Err(_) => Err(invalid(format!(
            "the image {} did not arrive within {timeout:?}",
            shown(url)
        ))),
    }
}

async fn download(
    client: &reqwest::Client,
    parsed: reqwest::Url,
    url: &str,
    fetcher: &ImageFetcher,
    budget: &AtomicUsize,
) -> Result<InlineImage, Error> {
    let mut resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| fetch_error(url, &e, fetcher))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(invalid(format!(
            "fetching the image {} failed with HTTP {}",
            shown(url),
            status.as_u16()
        )));
    }
    let declared = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty());
    let max = fetcher.rules.max_image_bytes;
    let too_large = || {
        invalid(format!(
            "the image {} is larger than {max} bytes",
            shown(url)
        ))
    };
    let announced = resp.content_length();
    if announced.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let mut bytes: Vec<u8> =
        Vec::with_capacity(announced.map_or(0, |len| usize::try_from(len).unwrap_or(max)));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fetch_error(url, &e, fetcher))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(chunk.len())
            })
            .map_err(|_| total_too_large(fetcher))?;
        bytes.extend_from_slice(&chunk);
    }
    let media_type = media_type(declared, &bytes).ok_or_else(|| {
        invalid(format!(
            "cannot tell the media type of the image {}",
            shown(url)
        ))
    })?;
    Ok(InlineImage {
        media_type,
        data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        size: bytes.len(),
    })
}

fn refused_error(url: &str, refused: Refused, fetcher: &ImageFetcher) -> Error {
    let hint = if refused == Refused::NotPublic {
        format!(
            " (allow such hosts with {}::allow_private_image_hosts(true))",
            fetcher.builder
        )
    } else {
        String::new()
    };
    invalid(format!(
        "refused to fetch the image {}: {refused}{hint}",
        shown(url)
    ))
}

/// A failed send or body read, as the caller's error: the refusal it hides, or what went wrong
/// (from the innermost cause, which names no URL).
fn fetch_error(url: &str, e: &reqwest::Error, fetcher: &ImageFetcher) -> Error {
    let mut innermost: Option<&dyn std::error::Error> = None;
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused_error(url, *refused, fetcher);
        }
        innermost = Some(cause);
        next = cause.source();
    }
    let cause = innermost.map_or_else(|| "the request failed".to_owned(), ToString::to_string);
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect ({cause})")
    } else {
        cause
    };
    invalid(format!("cannot fetch the image {}: {what}", shown(url)))
}

/// The declared `image/*` type; else the type the bytes show; else any specific declared type
/// (Gemini also takes PDFs and other documents inline).
fn media_type(declared: Option<String>, bytes: &[u8]) -> Option<String> {
    if let Some(d) = &declared
        && d.starts_with("image/")
    {
        return declared;
    }
    let sniffed = match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [
            _,
            _,
            _,
            _,
            b'f',
            b't',
            b'y',
            b'p',
            b'h',
            b'e',
            b'i',
            b'c' | b'x',
            ..,
        ] => Some("image/heic"),
        [
            _,
            _,
            _,
            _,
            b'f',
            b't',
            b'y',
            b'p',
            b'm',
            b'i',
            b'f',
            b'1',
            ..,
        ] => Some("image/heif"),
        [b'%', b'P', b'D', b'F', ..] => Some("application/pdf"),
        _ => None,
    };
    sniffed.map(str::to_owned).or_else(|| {
        declared.filter(|d| d != "application/octet-stream" && d != "binary/octet-stream")
    })
}
