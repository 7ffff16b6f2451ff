//! Deserialization helpers that keep stream decoding allocation-free: borrowed optional strings,
//! and the first element of an array without building a `Vec`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

/// An optional string borrowed from the input when it has no escapes. (serde borrows a bare
/// `Cow<str>` field, but a `Cow` inside an `Option` would always be copied.)
pub(crate) fn opt_cow<'de, D>(d: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(d)?.map(|b| b.0))
}

/// The first element of an array (or `None` for `null` or `[]`); the rest are skipped unread.
pub(crate) fn first<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct First<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for First<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array or null")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_option(First(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Chunk<'a> {
        #[serde(default, borrow, deserialize_with = "opt_cow")]
        text: Option<Cow<'a, str>>,
        #[serde(default, deserialize_with = "first")]
        items: Option<u32>,
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let c: Chunk<'_> = serde_json::from_str(r#"{"text":"plain","items":[7,8,9]}"#).unwrap();
        assert!(matches!(c.text, Some(Cow::Borrowed("plain"))));
        assert_eq!(c.items, Some(7));
        let c: Chunk<'_> = serde_json::from_str(r#"{"text":"a\"b","items":[]}"#).unwrap();
        assert!(matches!(c.text, Some(Cow::Owned(ref s)) if s == "a\"b"));
        assert_eq!(c.items, None);
        let c: Chunk<'_> = serde_json::from_str(r#"{"text":null,"items":null}"#).unwrap();
        assert!(c.text.is_none() && c.items.is_none());
    }
}
