//! Source documents as the engine reads them: parsed once, only the fields the
//! compiled mapping uses, into slot-indexed nodes so that `apply` never looks a
//! field up by name.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Which fields of an object to keep, by slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proj {
    /// Field names in slot order.
    pub keys: Vec<Box<str>>,
    /// Projection of each slot's value (its elements, for arrays).
    pub children: Vec<Proj>,
    /// Keep every field (an expression reads the whole object), by name.
    pub keep_all: bool,
    /// `(name, slot)` sorted by length then name, for the parser.
    sorted: Vec<(Box<str>, usize)>,
    /// For each key length, the range of `sorted` with that length: a document
    /// key is mostly rejected by its length alone, without touching its bytes
    /// (an order has about a hundred keys, of which a mapping reads a few).
    by_len: Vec<(u32, u32)>,
}

impl Proj {
    /// Slot of `name`, adding it if needed.
    pub fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.keys.iter().position(|k| &**k == name) {
            return i;
        }
        self.keys.push(name.into());
        self.children.push(Proj::default());
        self.keys.len() - 1
    }

    /// Freezes the lookup tables after the last `slot` call.
    pub fn finish(&mut self) {
        self.sorted = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        self.sorted.sort_by(|a, b| by_len_then_bytes(&a.0, &b.0));
        let longest = self.sorted.last().map_or(0, |(k, _)| k.len());
        self.by_len = vec![(0, 0); longest + 1];
        for (i, (k, _)) in self.sorted.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let range = &mut self.by_len[k.len()];
            if range.0 == range.1 {
                *range = (i, i + 1);
            } else {
                range.1 = i + 1;
            }
        }
        for c in &mut self.children {
            c.finish();
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        let &(start, end) = self.by_len.get(key.len())?;
        self.sorted
            .get(start as usize..end as usize)?
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, i)| *i)
    }
}

fn by_len_then_bytes(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A parsed (projected) JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// Field absent from the document.
    Missing,
    /// JSON `null`.
    Null,
    /// JSON boolean.
    Bool(bool),
    /// JSON number, as written (exact: no float round trip).
    Num(Cow<'a, str>),
    /// JSON string.
    Str(Cow<'a, str>),
    /// JSON array.
    Arr(Vec<Node<'a>>),
    /// JSON object, projected: one node per slot of the projection.
    Obj(Vec<Node<'a>>),
    /// JSON object kept whole (read by an expression), by name.
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Field by projection slot, falling back to the name for objects kept whole.
    pub(crate) fn field(&self, slot: usize, name: &str) -> &Node<'a> {
        match self {
            Node::Obj(v) => v.get(slot).unwrap_or(&Node::Missing),
            Node::Map(m) => m
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .unwrap_or(&Node::Missing),
            _ => &Node::Missing,
        }
    }

    /// Builds the projected view of an already parsed `serde_json::Value`.
    pub(crate) fn from_value(v: &'a serde_json::Value, p: &Proj) -> Node<'a> {
        use serde_json::Value as V;
        match v {
            V::Null => Node::Null,
            V::Bool(b) => Node::Bool(*b),
            V::Number(n) => Node::Num(Cow::Owned(n.to_string())),
            V::String(s) => Node::Str(Cow::Borrowed(s)),
            V::Array(a) => Node::Arr(a.iter().map(|x| Node::from_value(x, p)).collect()),
            V::Object(m) if p.keep_all => Node::Map(
                m.iter()
                    .map(|(k, x)| {
                        (
                            Cow::Borrowed(k.as_str()),
                            Node::from_value(x, p.child_all()),
                        )
                    })
                    .collect(),
            ),
            V::Object(m) => Node::Obj(
                p.keys
                    .iter()
                    .zip(&p.children)
                    .map(|(k, c)| {
                        m.get(&**k)
                            .map_or(Node::Missing, |x| Node::from_value(x, c))
                    })
                    .collect(),
            ),
        }
    }
}

static KEEP_ALL: std::sync::LazyLock<Proj> = std::sync::LazyLock::new(|| Proj {
    keep_all: true,
    ..Proj::default()
});

impl Proj {
    fn child_all(&self) -> &Proj {
        &KEEP_ALL
    }
}

/// Deepest nesting accepted while parsing a source document; Shopify payloads
/// nest about six levels, so this only stops hostile input from exhausting the stack.
pub(crate) const MAX_SOURCE_DEPTH: usize = 64;

pub(crate) struct Seed<'p> {
    pub proj: &'p Proj,
    pub depth: usize,
}

const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Num(Cow::Owned(v.to_string())))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        if self.depth >= MAX_SOURCE_DEPTH {
            return Err(serde::de::Error::custom("source document nests too deeply"));
        }
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(n) = seq.next_element_seed(Seed {
            proj: self.proj,
            depth: self.depth + 1,
        })? {
            out.push(n);
        }
        Ok(Node::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        if self.depth >= MAX_SOURCE_DEPTH {
            return Err(serde::de::Error::custom("source document nests too deeply"));
        }
        let depth = self.depth + 1;
        if self.proj.keep_all {
            let mut out = Vec::new();
            while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                if k == NUMBER_TOKEN {
                    let s: Cow<'de, str> = map.next_value()?;
                    return Ok(Node::Num(s));
                }
                let v = map.next_value_seed(Seed {
                    proj: &KEEP_ALL,
                    depth,
                })?;
                out.push((k, v));
            }
            return Ok(Node::Map(out));
        }
        let mut slots: Option<Vec<Node<'de>>> = None;
        while let Some(k) = map.next_key::<KeyStr<'de>>()? {
            let k = k.0;
            if slots.is_none() && k == NUMBER_TOKEN {
                // serde_json's arbitrary_precision hands numbers over as this
                // one-entry map; keeping the text keeps decimals exact.
                let s: Cow<'de, str> = map.next_value()?;
                return Ok(Node::Num(s));
            }
            let slots = slots.get_or_insert_with(|| vec![Node::Missing; self.proj.keys.len()]);
            match self.proj.find(&k) {
                Some(i) => {
                    slots[i] = map.next_value_seed(Seed {
                        proj: &self.proj.children[i],
                        depth,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Node::Obj(slots.unwrap_or_else(|| {
            vec![Node::Missing; self.proj.keys.len()]
        })))
    }
}

/// A map key borrowed from the input when it has no escapes.
struct KeyStr<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses JSON text keeping only what `proj` asks for.
pub(crate) fn parse<'a>(json: &'a str, proj: &Proj) -> Result<Node<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    // serde_json's own recursion limit (128) stays on; ours is stricter and covers
    // skipped subtrees only through serde_json's limit, which is enough.
    let node = Seed { proj, depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(node)
}
