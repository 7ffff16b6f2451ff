//! Remote images. Gemini takes image bytes inline, so an `http(s)` image URL is fetched here,
//! with the provider's own client and before the request is encoded (encoding is pure and
//! synchronous), and replaced by its base64 bytes.
//!
//! The fetch sends no provider header (the API key never goes to a third party), follows
//! redirects as the client does, refuses bodies over the configured size, and reports failures
//! without headers and without the URL's query string (which may hold a signature):
//! `InvalidRequest` for a non-2xx answer, an oversized image or an unknown media type;
//! `Network` (or `Timeout`) when the image server cannot be reached.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;

use super::request::is_http_url;
use crate::error::{Error, ErrorKind};
use crate::transport::read_body_capped;
use crate::types::{ChatRequest, ContentPart, ImageSource};

/// Whether `req` has an image given by `http(s)` URL.
pub(super) fn has_remote_images(req: &ChatRequest) -> bool {
    remote_urls(req).next().is_some()
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

/// A copy of `req` whose `http(s)` image URLs are replaced by the images' bytes. Each distinct
/// URL is fetched once; all are fetched concurrently.
pub(super) async fn inline_remote_images(
    client: &reqwest::Client,
    req: &ChatRequest,
    max_bytes: usize,
    head_timeout: Duration,
) -> Result<ChatRequest, Error> {
    let mut urls: Vec<&str> = Vec::new();
    for url in remote_urls(req) {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    let fetched = futures::future::try_join_all(
        urls.iter()
            .map(|url| fetch_image(client, url, max_bytes, head_timeout)),
    )
    .await?;
    let images: HashMap<&str, (String, String)> = urls.into_iter().zip(fetched).collect();
    let mut out = req.clone();
    for part in out.messages.iter_mut().flat_map(|m| &mut m.content) {
        if let ContentPart::Image { source, .. } = part
            && let ImageSource::Url(url) = source
            && let Some((media_type, data)) = images.get(url.as_str())
        {
            *source = ImageSource::Base64 {
                media_type: media_type.clone(),
                data: data.clone(),
            };
        }
    }
    Ok(out)
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

/// Fetches one image: its media type and base64 bytes.
async fn fetch_image(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    head_timeout: Duration,
) -> Result<(String, String), Error> {
    let unreachable = |e: reqwest::Error| {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        Error::new(kind, format!("cannot fetch the image {}", shown(url)))
            .with_source(e.without_url())
    };
    let resp = match tokio::time::timeout(head_timeout, client.get(url).send()).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) if e.is_builder() => {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("cannot fetch the image {}: invalid URL", shown(url)),
            ));
        }
        Ok(Err(e)) => return Err(unreachable(e)),
        Err(_) => {
            return Err(Error::timeout(format!(
                "the image {} did not answer within {head_timeout:?}",
                shown(url)
            )));
        }
    };
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "fetching the image {} failed with HTTP {}",
                shown(url),
                status.as_u16()
            ),
        ));
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
    let bytes = read_body_capped(resp, max_bytes).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("the image {} is larger than {max_bytes} bytes", shown(url)),
        )
    })?;
    let media_type = media_type(declared, &bytes).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("cannot tell the media type of the image {}", shown(url)),
        )
    })?;
    Ok((
        media_type,
        base64::engine::general_purpose::STANDARD.encode(&bytes),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_prefers_the_declared_image_type_then_sniffs() {
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(
            media_type(Some("image/webp".into()), png).as_deref(),
            Some("image/webp")
        );
        assert_eq!(
            media_type(Some("application/octet-stream".into()), png).as_deref(),
            Some("image/png")
        );
        assert_eq!(
            media_type(None, b"\xFF\xD8\xFF\xE0").as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(
            media_type(None, b"RIFF\0\0\0\0WEBPVP8 ").as_deref(),
            Some("image/webp")
        );
        assert_eq!(media_type(None, b"GIF89a").as_deref(), Some("image/gif"));
        assert_eq!(media_type(None, b"hello"), None);
        assert_eq!(
            media_type(Some("application/octet-stream".into()), b"hello"),
            None
        );
        assert_eq!(
            media_type(Some("application/pdf".into()), b"hello").as_deref(),
            Some("application/pdf")
        );
    }

    #[test]
    fn shown_urls_lose_credentials_and_query() {
        assert_eq!(
            shown("https://user:pw@img.example.com/a/cat.png?sig=SECRET#x"),
            "https://img.example.com/a/cat.png"
        );
        assert_eq!(shown("not a url"), "(an invalid URL)");
    }
}
