//! Value parsers of the config file: durations, sizes, addresses, budget windows and scopes, key
//! sources and hedge policies. Each names what it expected and what it found, and none of them
//! ever repeats a string that could be a secret.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{HedgeSpec, KeySpec};
use crate::router::{BudgetScope, BudgetWindow};

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"1d"` (humantime's syntax).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("expected a duration like \"500ms\", \"30s\" or \"1d\", found {s:?}"))
}

/// Parses `"4MiB"`, `"512KiB"`, `"1MB"`, `"100B"` or a plain number of bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let err = || format!("expected a size like \"4MiB\", \"512KiB\" or \"1MB\", found {s:?}");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(err()),
    };
    if number.is_empty() {
        return Err(err());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(multiplier).ok_or_else(err);
    }
    let n: f64 = number.parse().map_err(|_| err())?;
    let bytes = (n * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// Parses a budget window: a duration (`"1h"`, `"1d"`) or `"monthly"` (calendar months, UTC).
pub(crate) fn parse_window(s: &str) -> Result<BudgetWindow, String> {
    if s.trim().eq_ignore_ascii_case("monthly") {
        return Ok(BudgetWindow::Monthly);
    }
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(BudgetWindow::Every(d)),
        Ok(_) => Err("a budget window must be longer than zero".into()),
        Err(_) => Err(format!(
            "expected a window like \"1h\", \"1d\" or \"monthly\", found {s:?}"
        )),
    }
}

/// A visitor of one string, parsed by `parse`, with `expecting` for any other type.
struct StrVisitor<F> {
    expecting: &'static str,
    parse: F,
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for StrVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

fn from_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(StrVisitor { expecting, parse })
}

const DURATION: &str = "a duration like \"500ms\"";

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_str(d, DURATION, parse_duration)
}

pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A size in bytes: a string like `"4MiB"` or a number.
pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct SizeVisitor;
    impl Visitor<'_> for SizeVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size like \"4MiB\" or a number of bytes")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("expected a size, found {v}")))
        }
    }
    d.deserialize_any(SizeVisitor)
}

pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    from_str(d, "an address like \"127.0.0.1:4000\"", |s| {
        s.trim().parse().map_err(|_| {
            format!("expected an address like \"127.0.0.1:4000\" (IP and port), found {s:?}")
        })
    })
}

pub(crate) fn window<'de, D: Deserializer<'de>>(d: D) -> Result<BudgetWindow, D::Error> {
    from_str(d, "a window like \"1d\" or \"monthly\"", parse_window)
}

pub(crate) fn total() -> BudgetWindow {
    BudgetWindow::Total
}

/// `{ route = "chat" }`, `{ target = "openai/gpt-4o" }`, `{ tag = { team = "search" } }` or
/// `{ each_tag = "user" }`; omitted: everything.
pub(crate) fn scope<'de, D: Deserializer<'de>>(d: D) -> Result<BudgetScope, D::Error> {
    #[derive(Deserialize)]
    #[serde(
        deny_unknown_fields,
        expecting = "a scope like { route = \"chat\" }, { target = \"provider/model\" }, { tag = { team = \"search\" } } or { each_tag = \"user\" }"
    )]
    struct Raw {
        route: Option<String>,
        target: Option<String>,
        tag: Option<IndexMap<String, String>>,
        each_tag: Option<String>,
    }
    let raw = Raw::deserialize(d)?;
    let set = [
        raw.route.is_some(),
        raw.target.is_some(),
        raw.tag.is_some(),
        raw.each_tag.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        return Err(de::Error::custom(format!(
            "expected exactly one of `route`, `target`, `tag` or `each_tag`, found {set}"
        )));
    }
    if let Some(route) = raw.route {
        return Ok(BudgetScope::Route(route));
    }
    if let Some(target) = raw.target {
        return match target.split_once('/') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(BudgetScope::Target {
                provider: p.to_owned(),
                model: m.to_owned(),
            }),
            _ => Err(de::Error::custom(format!(
                "expected a target like \"provider/model\", found {target:?}"
            ))),
        };
    }
    if let Some(tag) = raw.tag {
        let mut it = tag.into_iter();
        return match (it.next(), it.next()) {
            (Some((key, value)), None) => Ok(BudgetScope::Tag { key, value }),
            (None, _) => Err(de::Error::custom(
                "expected one tag like { team = \"search\" }, found an empty table",
            )),
            (Some(_), Some(_)) => Err(de::Error::custom(
                "expected one tag like { team = \"search\" }, found several (a budget counts one tag)",
            )),
        };
    }
    Ok(BudgetScope::EachTagValue(raw.each_tag.unwrap_or_default()))
}

impl<'de> Deserialize<'de> for HedgeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "a hedge policy like { after = \"2s\" } or { percentile = 0.95 }"
        )]
        struct Raw {
            #[serde(default, deserialize_with = "opt_duration")]
            after: Option<Duration>,
            percentile: Option<f64>,
        }
        match Raw::deserialize(d)? {
            Raw {
                after: Some(a),
                percentile: None,
            } => Ok(HedgeSpec::After(a)),
            Raw {
                after: None,
                percentile: Some(p),
            } => Ok(HedgeSpec::Percentile(p)),
            _ => Err(de::Error::custom(
                "expected exactly one of `after` (a delay) or `percentile` (of observed latency)",
            )),
        }
    }
}

const KEY_SPEC: &str = "a key source like { env = \"VAR\" }, { file = \"PATH\" } or { command = [\"PROG\", \"ARG\"], ttl = \"5m\" }";

impl<'de> Deserialize<'de> for KeySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            env: Option<String>,
            file: Option<PathBuf>,
            command: Option<Vec<String>>,
            #[serde(default, deserialize_with = "opt_duration")]
            ttl: Option<Duration>,
        }

        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeySpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(KEY_SPEC)
            }
            // Never echo the string: it is most likely the key itself.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<KeySpec, E> {
                Err(E::custom(format!(
                    "expected {KEY_SPEC}, found a string (keys are never written in the config itself)"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeySpec, A::Error> {
                let raw = Raw::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let ttl = raw.ttl;
                let spec = match (raw.env, raw.file, raw.command) {
                    (Some(var), None, None) => KeySpec::Env(var),
                    (None, Some(path), None) => KeySpec::File(path),
                    (None, None, Some(argv)) => KeySpec::Command { argv, ttl },
                    _ => {
                        return Err(de::Error::custom(
                            "expected exactly one of `env`, `file` or `command`",
                        ));
                    }
                };
                if ttl.is_some() && !matches!(spec, KeySpec::Command { .. }) {
                    return Err(de::Error::custom("`ttl` applies to a `command` only"));
                }
                Ok(spec)
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("7b"), Ok(7));
        for bad in [
            "",
            "MiB",
            "4 MiBs",
            "-1MB",
            "1..2MB",
            "99999999999999GiB",
            "4TB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_size("big").unwrap_err(),
            "expected a size like \"4MiB\", \"512KiB\" or \"1MB\", found \"big\""
        );
    }

    #[test]
    fn durations_and_windows() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_window("monthly"), Ok(BudgetWindow::Monthly));
        assert_eq!(
            parse_window("1h"),
            Ok(BudgetWindow::Every(Duration::from_secs(3600)))
        );
        assert!(parse_window("0s").is_err());
    }
}
