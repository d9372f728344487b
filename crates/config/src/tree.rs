//! A location-annotated view of a YAML document, used to point validation
//! errors (which happen after typed deserialisation) at a line and column,
//! and to refuse unsupported keys at the key's own position.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Line and column (1-based) in a YAML file; `line == 0` means unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub(crate) fn from_location(l: &serde_saphyr::Location) -> Pos {
        Pos {
            line: l.line() as u32,
            column: l.column() as u32,
        }
    }
}

/// One YAML node with the position of its value.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Keys (with their own positions) and values, in document order.
    Map(Vec<(String, Pos, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// The position of `key` itself (not its value).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, p, _)| *p),
            _ => None,
        }
    }

    pub fn index(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn entries(&self) -> &[(String, Pos, Node)] {
        match &self.kind {
            Kind::Map(e) => e,
            _ => &[],
        }
    }
}

/// Inner payload deserialised inside a `Spanned` wrapper.
struct Inner(Kind);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

macro_rules! scalar {
    ($name:ident, $t:ty) => {
        fn $name<E: de::Error>(self, _v: $t) -> Result<Inner, E> {
            Ok(Inner(Kind::Scalar))
        }
    };
}

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Inner;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    scalar!(visit_bool, bool);
    scalar!(visit_i64, i64);
    scalar!(visit_u64, u64);
    scalar!(visit_i128, i128);
    scalar!(visit_u128, u128);
    scalar!(visit_f64, f64);
    scalar!(visit_str, &str);
    scalar!(visit_bytes, &[u8]);
    fn visit_unit<E: de::Error>(self) -> Result<Inner, E> {
        Ok(Inner(Kind::Scalar))
    }
    fn visit_none<E: de::Error>(self) -> Result<Inner, E> {
        Ok(Inner(Kind::Scalar))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Inner, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inner, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Spanned<Inner>>()? {
            items.push(Node {
                pos: Pos::from_location(&n.referenced),
                kind: n.value.0,
            });
        }
        Ok(Inner(Kind::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Inner, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
            let v = map.next_value::<Spanned<Inner>>()?;
            entries.push((
                k.value.0,
                Pos::from_location(&k.referenced),
                Node {
                    pos: Pos::from_location(&v.referenced),
                    kind: v.value.0,
                },
            ));
        }
        Ok(Inner(Kind::Map(entries)))
    }
}

/// A mapping key rendered as text (non-string keys become their YAML text).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KV;
        impl<'de> Visitor<'de> for KV {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(KeyText(String::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(KeyText(String::new()))
            }
        }
        // Ask for a string so YAML 1.1 words (`y`, `on`) keep their text.
        d.deserialize_str(KV)
    }
}

/// Parses `text` into a position tree. An empty document gives an empty map.
pub(crate) fn parse_tree(text: &str) -> Result<Node, serde_saphyr::Error> {
    let root: Option<Spanned<Inner>> = serde_saphyr::from_str(text)?;
    Ok(match root {
        Some(r) => Node {
            pos: Pos::from_location(&r.referenced),
            kind: r.value.0,
        },
        None => Node {
            pos: Pos { line: 1, column: 1 },
            kind: Kind::Map(Vec::new()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_key_and_value_positions() {
        let t = parse_tree("a: 1\nb:\n  - x: 2\n    y: [1, 2]\n").unwrap();
        assert_eq!(t.key_pos("a"), Some(Pos { line: 1, column: 1 }));
        let b = t.get("b").unwrap();
        let item = b.index(0).unwrap();
        assert_eq!(item.key_pos("y"), Some(Pos { line: 4, column: 5 }));
        assert_eq!(item.get("x").unwrap().pos, Pos { line: 3, column: 8 });
    }
}
