//! Bounded input types: every string and list that goes into a command has one, and the
//! bound is checked where the input enters (the HTTP layer builds these types before any
//! command exists), again by the decoder, and nowhere else. A value that can be built can
//! therefore always be encoded and read back: a refused request never leaves behind a
//! journal frame that the next start cannot decode.
//!
//! [`Text`] is a string with a rule ([`TextRule`]): a byte bound for the codec plus whatever
//! else makes it valid (no control characters, digits only, ...). [`BoundedVec`] is a list
//! of at most `N` items. Both refuse bad values in their `Deserialize`, with the same check
//! as their constructor, so the codec and the constructor can never disagree.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// What makes a string valid for one kind of text.
pub trait TextRule {
    /// The most bytes (UTF-8) it may have: the bound the decoder enforces.
    const MAX_BYTES: usize;
    /// What it is, for error messages ("a memo").
    const WHAT: &'static str;
    /// Whether the value shows in `Debug` (false for personal data).
    const DEBUG_SHOWS: bool = true;
    /// Checks everything beyond the byte bound; says what is wrong.
    fn check(value: &str) -> Result<(), String>;
}

/// A string that its rule accepts. See the module documentation. Up to 24 bytes it is kept
/// inline (a name, a code, a phone number), with no allocation of its own.
pub struct Text<R: TextRule> {
    value: compact_str::CompactString,
    rule: PhantomData<fn() -> R>,
}

impl<R: TextRule> Text<R> {
    /// Checks `value` against the rule.
    pub fn new(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.len() > R::MAX_BYTES {
            return Err(format!("{} is at most {} bytes, found {}", R::WHAT, R::MAX_BYTES, value.len()));
        }
        R::check(&value)?;
        Ok(Text { value: compact_str::CompactString::from(value.as_str()), rule: PhantomData })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<R: TextRule> Clone for Text<R> {
    fn clone(&self) -> Self {
        Text { value: self.value.clone(), rule: PhantomData }
    }
}

impl<R: TextRule> PartialEq for Text<R> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<R: TextRule> Eq for Text<R> {}

impl<R: TextRule> PartialOrd for Text<R> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<R: TextRule> Ord for Text<R> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<R: TextRule> std::hash::Hash for Text<R> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<R: TextRule> fmt::Debug for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if R::DEBUG_SHOWS {
            fmt::Debug::fmt(&self.value, f)
        } else {
            f.write_str("***")
        }
    }
}

impl<R: TextRule> Serialize for Text<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de, R: TextRule> Deserialize<'de> for Text<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<R: TextRule> Visitor<'_> for V<R> {
            type Value = Text<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{} of at most {} bytes", R::WHAT, R::MAX_BYTES)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<R>, E> {
                // The length first: a corrupt or hostile value is refused before it is copied.
                if v.len() > R::MAX_BYTES {
                    return Err(E::custom(format!("{} is at most {} bytes, found {}", R::WHAT, R::MAX_BYTES, v.len())));
                }
                Text::new(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// No control characters (newlines, escapes, NUL): text shown to other people.
pub fn no_control(value: &str, what: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("{what} may not contain control characters, found U+{:04X}", c as u32)),
        None => Ok(()),
    }
}

/// A label people read (a name, a reason): not blank, at most `max` characters, no control
/// characters.
pub fn label(value: &str, max: usize, what: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} may not be empty"));
    }
    chars_at_most(value, max, what)?;
    no_control(value, what)
}

/// At most `max` characters (not bytes: 50 Korean characters are 150 bytes).
pub fn chars_at_most(value: &str, max: usize, what: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max {
        return Err(format!("{what} is at most {max} characters, found {chars}"));
    }
    Ok(())
}

/// Exactly digits, `len` of them (a range).
pub fn digits(value: &str, len: std::ops::RangeInclusive<usize>, what: &str) -> Result<(), String> {
    if !len.contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} is {} to {} digits", len.start(), len.end()));
    }
    Ok(())
}

/// Defines a [`TextRule`] and its [`Text`] alias in one place.
macro_rules! text_rule {
    ($(#[$meta:meta])* $alias:ident, $rule:ident, $max:expr, $what:literal, $debug:expr, |$v:ident| $check:expr) => {
        $(#[$meta])*
        pub type $alias = $crate::text::Text<$rule>;

        #[doc = concat!("The rule of [`", stringify!($alias), "`].")]
        #[derive(Clone, Copy, Debug)]
        pub enum $rule {}

        impl $crate::text::TextRule for $rule {
            const MAX_BYTES: usize = $max;
            const WHAT: &'static str = $what;
            const DEBUG_SHOWS: bool = $debug;
            fn check($v: &str) -> Result<(), String> {
                $check
            }
        }
    };
}
pub(crate) use text_rule;

/// A list of at most `N` items; the decoder stops at the first item over the bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

// By hand: an empty list needs no `T: Default`.
impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        BoundedVec(Vec::new())
    }
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// Checks the length.
    pub fn new(items: Vec<T>) -> Result<Self, String> {
        if items.len() > N {
            return Err(format!("at most {N} items, found {}", items.len()));
        }
        Ok(BoundedVec(items))
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The items, owned.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = BoundedVec<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(item) = seq.next_element()? {
                    if out.len() == N {
                        return Err(de::Error::custom(format!("at most {N} items")));
                    }
                    out.push(item);
                }
                Ok(BoundedVec(out))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    text_rule!(
        /// A test text.
        Word, WordRule, 8, "a word", true, |v| no_control(v, "a word")
    );

    #[test]
    fn the_decoder_refuses_what_the_constructor_refuses() {
        let ok = Word::new("hello").unwrap();
        assert_eq!(crate::codec::decode::<Word>(&crate::codec::encode(&ok)), Ok(ok));
        assert!(Word::new("far too long").is_err());
        assert!(Word::new("a\nb").is_err());
        // Bytes that a constructor would refuse, written by hand as a postcard string.
        let long = crate::codec::encode("far too long");
        assert!(crate::codec::decode::<Word>(&long).is_err());
        let control = crate::codec::encode("a\u{7}b");
        assert!(crate::codec::decode::<Word>(&control).is_err());
    }

    #[test]
    fn a_bounded_vec_refuses_one_item_too_many() {
        let three: BoundedVec<u8, 3> = BoundedVec::new(vec![1, 2, 3]).unwrap();
        assert_eq!(crate::codec::decode::<BoundedVec<u8, 3>>(&crate::codec::encode(&three)), Ok(three));
        assert!(BoundedVec::<u8, 3>::new(vec![0; 4]).is_err());
        assert!(crate::codec::decode::<BoundedVec<u8, 3>>(&crate::codec::encode(&vec![0u8; 4])).is_err());
    }
}
