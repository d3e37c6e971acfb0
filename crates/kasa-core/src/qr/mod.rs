//! EMV merchant-presented QR codes (EMVCo's "MPM" layout): decode a payload into its fields,
//! check it, name its scheme, and encode fields back into a payload.
//!
//! A payload is a string of fields, each a two-digit id, a two-digit length and a value of
//! that many characters (characters, not bytes: names and cities may be Chinese or Korean).
//! Field `00` comes first, field `63` last, and `63` holds the CRC-16/CCITT-FALSE ([`crc16`])
//! of the UTF-8 bytes up to and including its own `6304`. Some ids hold templates, fields of
//! the same layout nested once ([`is_template`]). The decoder borrows every value from the
//! payload and allocates two vectors, so a merchant's terminal or a benchmark can decode a
//! million payloads a second on one core.
//!
//! What it does not do: it checks the layout and the values EMVCo fixes (format indicator,
//! initiation method, currency, amount, country, the CRC), not the rules of each scheme (a
//! PIX key's format, a PromptPay number), and it does no I/O.
//!
//! ```
//! use kasa_core::qr::{decode, encode, Scheme};
//!
//! // Singapore's PayNow, from the shared test data.
//! let text = "00020101021126400009SG.PAYNOW010120213200002150HWCF030115204000053037025802SG\
//!             5923NATIONAL HEALTHCARE GRO6009Singapore6304DF3F";
//! let payload = decode(text).unwrap();
//! assert_eq!(payload.scheme(), Scheme::PayNow);
//! assert_eq!(payload.sub(26, 2), Some("200002150HWCF"));
//! assert_eq!(payload.merchant_name(), Some("NATIONAL HEALTHCARE GRO"));
//! assert_eq!(encode(&payload.to_values()).unwrap(), text);
//! ```

mod crc;
pub mod kasa;
pub mod scheme;

pub use crc::crc16;
pub use scheme::{Scheme, KASA_GUI};

use crate::money::Currency;
use std::collections::BTreeMap;
use std::fmt;

/// The longest payload, in characters. EMVCo says 512, but real codes are longer (the test
/// data has an SGQR code of 1,069 characters carrying thirteen schemes' accounts); the
/// largest QR code (version 40) holds 2,953 bytes, so 4,096 never refuses a code a camera
/// can read.
pub const PAYLOAD_CHARS_MAX: usize = 4096;

/// The longest payload in bytes, checked before anything is counted: four bytes per character
/// of the character bound, so nothing longer is ever scanned.
const PAYLOAD_BYTES_MAX: usize = PAYLOAD_CHARS_MAX * 4;

/// The longest value: its length has two digits.
pub const VALUE_CHARS_MAX: usize = 99;

/// Whether field `id` is a template whose value is itself fields: the merchant account
/// templates (26-51), additional data (62), the merchant's name in another language (64) and
/// the unreserved template 80.
///
/// EMVCo calls 81-99 unreserved templates too, but they are kept as plain values here: the
/// shared test data (EMVCo's own sample, as the libraries that read it report it) keeps its
/// field 91 as a string while it reads the same content under 80 as a template.
pub fn is_template(id: u8) -> bool {
    matches!(id, 26..=51 | 62 | 64 | 80)
}

/// Where a refusal is: a field, or a field inside a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The top-level id.
    pub id: u8,
    /// The id inside the template `id`, if the refusal is there.
    pub sub: Option<u8>,
}

impl Tag {
    fn top(id: u8) -> Tag {
        Tag { id, sub: None }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            None => write!(f, "{:02}", self.id),
            Some(sub) => write!(f, "{:02}.{:02}", self.id, sub),
        }
    }
}

/// Why a payload was refused, in the order the decoder checks: layout, position, checksum,
/// then values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Longer than [`PAYLOAD_CHARS_MAX`] characters.
    TooLong,
    /// An id that is not two digits.
    BadId,
    /// A length that is not two digits, is zero, or runs past the end of the payload or
    /// template; or a value too long to encode.
    BadLength,
    /// An id seen twice at the same level.
    DuplicateField,
    /// Field `00` is not the first.
    NotFirst,
    /// Field `63` is not the last.
    NotLast,
    /// A field the layout needs is absent.
    MissingField,
    /// The checksum in field `63` is not the checksum of the payload.
    BadCrc,
    /// A value that breaks its field's format.
    BadValue,
}

impl Reason {
    /// The reason's stable name, as printed by `kasa qr decode`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::TooLong => "too_long",
            Reason::BadId => "bad_id",
            Reason::BadLength => "bad_length",
            Reason::DuplicateField => "duplicate_field",
            Reason::NotFirst => "not_first",
            Reason::NotLast => "not_last",
            Reason::MissingField => "missing_field",
            Reason::BadCrc => "bad_crc",
            Reason::BadValue => "bad_value",
        }
    }
}

/// A refused payload: the reason and, where there is one, the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", reason.name(), field.map(|tag| format!(" at field {tag}")).unwrap_or_default())]
pub struct QrError {
    /// Why.
    pub reason: Reason,
    /// Where, if the reason is about one field.
    pub field: Option<Tag>,
}

fn refuse(reason: Reason, field: Option<Tag>) -> QrError {
    QrError { reason, field }
}

/// A top-level field of a decoded payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The two-digit id, 0 to 99.
    pub id: u8,
    /// The value as it is in the payload (for a template, its fields undecoded).
    pub value: &'a str,
    /// For a template, its fields' range in [`Payload`]'s list of sub-fields.
    subs: Option<(u16, u16)>,
}

/// A field inside a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sub<'a> {
    /// The two-digit id inside the template.
    pub id: u8,
    /// The value.
    pub value: &'a str,
}

/// A decoded, checked payload, borrowing from the string it was decoded from.
#[derive(Clone, Debug)]
pub struct Payload<'a> {
    text: &'a str,
    fields: Vec<Field<'a>>,
    subs: Vec<Sub<'a>>,
    scheme: Scheme,
}

/// A field's value for [`encode`]: text, or a template's fields by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A plain value.
    Text(String),
    /// A template's fields.
    Template(BTreeMap<u8, String>),
}

/// `text`'s first `n` characters and the rest, or `None` if it has fewer.
fn take_chars(text: &str, n: usize) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if bytes.len() >= n && bytes[..n].is_ascii() {
        return Some(text.split_at(n));
    }
    match text.char_indices().nth(n) {
        Some((at, _)) => Some(text.split_at(at)),
        None if text.chars().count() == n => Some((text, "")),
        None => None,
    }
}

fn two_digits(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// Calls `each` with every (id, value) of `text`, a run of fields; `parent` is the template's
/// id, to name the place of a refusal. Refuses a repeated id.
fn split<'a>(mut text: &'a str, parent: Option<u8>, mut each: impl FnMut(u8, &'a str)) -> Result<(), QrError> {
    let tag = |id: u8| match parent {
        None => Tag::top(id),
        Some(parent) => Tag { id: parent, sub: Some(id) },
    };
    let mut seen: u128 = 0;
    while !text.is_empty() {
        let bytes = text.as_bytes();
        let Some(id) = bytes.get(..2).and_then(two_digits) else {
            return Err(refuse(if bytes.len() < 2 { Reason::BadLength } else { Reason::BadId }, parent.map(Tag::top)));
        };
        let length = bytes.get(2..4).and_then(two_digits).filter(|&length| length > 0);
        let Some(length) = length else { return Err(refuse(Reason::BadLength, Some(tag(id)))) };
        let Some((value, rest)) = take_chars(&text[4..], usize::from(length)) else {
            return Err(refuse(Reason::BadLength, Some(tag(id))));
        };
        if seen & (1 << id) != 0 {
            return Err(refuse(Reason::DuplicateField, Some(tag(id))));
        }
        seen |= 1 << id;
        each(id, value);
        text = rest;
    }
    Ok(())
}

/// Decodes and checks a payload. Every refusal names its reason and, where there is one, the
/// field; nothing in `text` can make it panic.
pub fn decode(text: &str) -> Result<Payload<'_>, QrError> {
    let chars = if text.is_ascii() { text.len() } else { text.chars().count() };
    if text.len() > PAYLOAD_BYTES_MAX || chars > PAYLOAD_CHARS_MAX {
        return Err(refuse(Reason::TooLong, None));
    }
    let mut fields = Vec::with_capacity(24);
    split(text, None, |id, value| fields.push(Field { id, value, subs: None }))?;

    match fields.iter().position(|field| field.id == 0) {
        Some(0) => {}
        Some(_) => return Err(refuse(Reason::NotFirst, Some(Tag::top(0)))),
        None => return Err(refuse(Reason::MissingField, Some(Tag::top(0)))),
    }
    let Some(crc_at) = fields.iter().position(|field| field.id == 63) else {
        return Err(refuse(Reason::MissingField, Some(Tag::top(63))));
    };
    if crc_at != fields.len() - 1 {
        return Err(refuse(Reason::NotLast, Some(Tag::top(63))));
    }
    let stated = fields[crc_at].value;
    // Four upper-case hex digits, as EMVCo writes them: `62ca` is not `62CA`, so that one
    // changed character is always refused.
    if stated.len() != 4 || !stated.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)) {
        return Err(refuse(Reason::BadValue, Some(Tag::top(63))));
    }
    // The checksum covers every byte but its own four hex digits, which end the payload.
    let computed = crc16(&text.as_bytes()[..text.len() - 4]);
    if u16::from_str_radix(stated, 16) != Ok(computed) {
        return Err(refuse(Reason::BadCrc, Some(Tag::top(63))));
    }

    let mut subs = Vec::with_capacity(32);
    for field in &mut fields {
        if is_template(field.id) {
            let start = subs.len();
            split(field.value, Some(field.id), |id, value| subs.push(Sub { id, value }))?;
            // At most 4,096 characters of 4-character headers: the counts fit in a u16.
            field.subs = Some((start as u16, subs.len() as u16));
        }
    }
    let mut payload = Payload { text, fields, subs, scheme: Scheme::Emvco };
    payload.check_values()?;
    payload.scheme = scheme::detect(
        payload.account_ids(),
        payload.text(58),
        payload.text(15).is_some() || payload.text(16).is_some(),
    );
    Ok(payload)
}

/// Digits with at most one `.`, at least one digit, at most 13 characters: EMVCo's format of
/// an amount (54) and a fixed fee (56).
fn is_amount(value: &str) -> bool {
    value.len() <= 13
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
}

fn all_digits(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_digit())
}

impl<'a> Payload<'a> {
    /// The values EMVCo fixes. Lenient where the field data is: a merchant category code of
    /// three digits, and fee fields beside an indicator that does not call for them, are in
    /// real codes that the schemes' own apps accept.
    fn check_values(&self) -> Result<(), QrError> {
        let bad = |id| Err(refuse(Reason::BadValue, Some(Tag::top(id))));
        let missing = |tag| Err(refuse(Reason::MissingField, Some(tag)));
        if self.text(0) != Some("01") {
            return bad(0);
        }
        if self.text(1).is_some_and(|method| method != "11" && method != "12") {
            return bad(1);
        }
        if self.text(52).is_some_and(|mcc| mcc.len() > 4 || !all_digits(mcc)) {
            return bad(52);
        }
        match self.text(53) {
            None => return missing(Tag::top(53)),
            Some(currency) if currency.len() != 3 || !all_digits(currency) => return bad(53),
            Some(_) => {}
        }
        if self.text(54).is_some_and(|amount| !is_amount(amount)) {
            return bad(54);
        }
        match self.text(55) {
            None | Some("01") => {}
            Some("02") if self.text(56).is_none() => return missing(Tag::top(56)),
            Some("03") if self.text(57).is_none() => return missing(Tag::top(57)),
            Some("02" | "03") => {}
            Some(_) => return bad(55),
        }
        if self.text(56).is_some_and(|fee| !is_amount(fee)) {
            return bad(56);
        }
        if self.text(57).is_some_and(|percent| percent.len() > 5 || !is_amount(percent)) {
            return bad(57);
        }
        match self.text(58) {
            None => return missing(Tag::top(58)),
            Some(country) if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) => return bad(58),
            Some(_) => {}
        }
        if !self.fields.iter().any(|field| (2..=51).contains(&field.id)) {
            return missing(Tag::top(26));
        }
        for field in &self.fields {
            let Some(subs) = self.subs_of(field) else { continue };
            let has = |id| subs.iter().any(|sub| sub.id == id);
            let needed: &[u8] = match field.id {
                26..=51 | 80 => &[0],
                64 => &[0, 1],
                _ => &[],
            };
            if let Some(&id) = needed.iter().find(|&&id| !has(id)) {
                return missing(Tag { id: field.id, sub: Some(id) });
            }
        }
        Ok(())
    }

    /// The globally unique ids (sub-field `00`) of the merchant account templates and the
    /// unreserved template.
    fn account_ids(&self) -> impl Iterator<Item = &'a str> + Clone + '_ {
        self.fields
            .iter()
            .filter(|field| matches!(field.id, 26..=51 | 80))
            .filter_map(|field| self.subs_of(field)?.iter().find(|sub| sub.id == 0).map(|sub| sub.value))
    }

    /// The payload as it was decoded.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The top-level fields, in the payload's order.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// A template field's own fields, or `None` for a plain field.
    pub fn subs_of(&self, field: &Field<'a>) -> Option<&[Sub<'a>]> {
        let (start, end) = field.subs?;
        self.subs.get(usize::from(start)..usize::from(end))
    }

    /// The value of field `id`, if present (for a template, undecoded).
    pub fn text(&self, id: u8) -> Option<&'a str> {
        self.fields.iter().find(|field| field.id == id).map(|field| field.value)
    }

    /// The value of `sub` in template `id`, if both are present.
    pub fn sub(&self, id: u8, sub: u8) -> Option<&'a str> {
        let field = self.fields.iter().find(|field| field.id == id)?;
        self.subs_of(field)?.iter().find(|s| s.id == sub).map(|s| s.value)
    }

    /// The scheme, from the merchant account templates' ids.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether the code is for one payment (`12`) rather than reused (`11`, or absent).
    pub fn is_dynamic(&self) -> bool {
        self.text(1) == Some("12")
    }

    /// The merchant's name (field 59).
    pub fn merchant_name(&self) -> Option<&'a str> {
        self.text(59)
    }

    /// The ISO 4217 numeric code of the currency (field 53, checked to be three digits).
    pub fn currency_numeric(&self) -> u16 {
        self.text(53).and_then(|code| code.parse().ok()).unwrap_or(0)
    }

    /// The currency, if Kasa's currency table has it.
    pub fn currency(&self) -> Option<Currency> {
        Currency::from_numeric(self.currency_numeric())
    }

    /// The amount as written (field 54), in major units with an optional decimal point.
    pub fn amount(&self) -> Option<&'a str> {
        self.text(54)
    }

    /// Every field as an owned [`Value`], keyed by id: what [`encode`] takes.
    pub fn to_values(&self) -> BTreeMap<u8, Value> {
        self.fields
            .iter()
            .map(|field| {
                let value = match self.subs_of(field) {
                    None => Value::Text(field.value.to_string()),
                    Some(subs) => Value::Template(subs.iter().map(|sub| (sub.id, sub.value.to_string())).collect()),
                };
                (field.id, value)
            })
            .collect()
    }
}

/// Appends one field, refusing an id over 99 or a value of no characters or more than 99.
fn push_field(out: &mut String, id: u8, value: &str, tag: Tag) -> Result<(), QrError> {
    if id > 99 {
        return Err(refuse(Reason::BadId, Some(tag)));
    }
    let chars = value.chars().count();
    if chars == 0 || chars > VALUE_CHARS_MAX {
        return Err(refuse(Reason::BadLength, Some(tag)));
    }
    use fmt::Write;
    write!(out, "{id:02}{chars:02}{value}").expect("writing to a String cannot fail");
    Ok(())
}

/// Builds a payload from fields: ids in ascending order (so `00` first), lengths counted in
/// characters, then `6304` and the checksum. A field `63` among `fields` is ignored (it is
/// recomputed), so a decoded payload's [`Payload::to_values`] encodes back to it when its
/// fields were in ascending order. The result is decoded before it is returned, so `encode`
/// refuses, with the decoder's reasons, anything `decode` would.
pub fn encode(fields: &BTreeMap<u8, Value>) -> Result<String, QrError> {
    let mut out = String::with_capacity(256);
    for (&id, value) in fields {
        if id == 63 {
            continue;
        }
        match value {
            Value::Text(text) => push_field(&mut out, id, text, Tag::top(id))?,
            Value::Template(subs) => {
                if !is_template(id) {
                    return Err(refuse(Reason::BadValue, Some(Tag::top(id))));
                }
                let mut inner = String::new();
                for (&sub, text) in subs {
                    push_field(&mut inner, sub, text, Tag { id, sub: Some(sub) })?;
                }
                push_field(&mut out, id, &inner, Tag::top(id))?;
            }
        }
    }
    out.push_str("6304");
    let crc = crc16(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    decode(&out)?;
    Ok(out)
}

/// A decoded payload's fields for serde: a map from each two-digit id to its value, or, for a
/// template, to a map of its own two-digit ids ([`Payload::fields_map`]).
pub struct FieldsMap<'p, 'a>(&'p Payload<'a>);

/// A template's fields for serde.
struct SubsMap<'p, 'a>(&'p [Sub<'a>]);

/// An id's two digits, without allocating.
struct Id(u8);

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let digits = [b'0' + self.0 / 10 % 10, b'0' + self.0 % 10];
        serializer.serialize_str(std::str::from_utf8(&digits).unwrap_or("??"))
    }
}

impl serde::Serialize for SubsMap<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for sub in self.0 {
            map.serialize_entry(&Id(sub.id), sub.value)?;
        }
        map.end()
    }
}

impl serde::Serialize for FieldsMap<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.fields.len()))?;
        for field in &self.0.fields {
            match self.0.subs_of(field) {
                None => map.serialize_entry(&Id(field.id), field.value)?,
                Some(subs) => map.serialize_entry(&Id(field.id), &SubsMap(subs))?,
            }
        }
        map.end()
    }
}

impl<'a> Payload<'a> {
    /// The fields, in the payload's order, as a map for serde (what `kasa qr decode` prints as
    /// `fields`).
    pub fn fields_map(&self) -> FieldsMap<'_, 'a> {
        FieldsMap(self)
    }
}
