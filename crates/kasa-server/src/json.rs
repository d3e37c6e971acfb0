//! JSON shapes shared by the whole API (see `docs/api.md`, "One contract"): integers that can
//! pass 2^53 (ids, amounts, balances, timestamps) are decimal strings, so that a JavaScript
//! client never loses precision (on input a plain JSON integer is also accepted when it fits
//! in 64 bits); money is an amount of minor units next to its `currency`; times are RFC 3339
//! UTC strings in `*_at` fields; every list is `{"data", "has_more", "next_cursor"}`.
//! Unknown fields are refused.
//!
//! The ledger API's own shapes (accounts and transfers) keep TigerBeetle's field names, flags
//! as lists of names and its nanosecond `timestamp`.

use kasa_core::{Account, AccountBalance, AccountFlags, PendingStatus, Transfer, TransferFlags};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A `u128` written as a decimal string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dec128(pub u128);

/// A `u64` written as a decimal string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dec64(pub u64);

impl PartialSchema for Dec128 {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{1,39}$"))
            .description(Some("An unsigned 128-bit integer as a decimal string"))
            .into()
    }
}

impl ToSchema for Dec128 {}

impl PartialSchema for Dec64 {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{1,20}$"))
            .description(Some("An unsigned 64-bit integer as a decimal string"))
            .into()
    }
}

impl ToSchema for Dec64 {}

impl Serialize for Dec128 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for Dec64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct DecimalVisitor {
    max: u128,
    what: &'static str,
}

impl Visitor<'_> for DecimalVisitor {
    type Value = u128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a decimal string of digits (0 to {})", self.what, self.max)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u128, E> {
        if v.is_empty() || v.len() > 39 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        match v.parse::<u128>() {
            Ok(n) if n <= self.max => Ok(n),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u128, E> {
        if v as u128 <= self.max {
            Ok(v as u128)
        } else {
            Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u128, E> {
        if v >= 0 {
            self.visit_u64(v as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u128, E> {
        Err(E::invalid_value(de::Unexpected::Float(v), &self))
    }
}

impl<'de> Deserialize<'de> for Dec128 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecimalVisitor { max: u128::MAX, what: "a 128-bit unsigned integer" }).map(Dec128)
    }
}

impl<'de> Deserialize<'de> for Dec64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecimalVisitor { max: u64::MAX as u128, what: "a 64-bit unsigned integer" })
            .map(|v| Dec64(v as u64))
    }
}

/// Flags as a list of names, decoded against a table of (name, bit).
fn flags_from_names<'de, D: Deserializer<'de>>(d: D, table: &'static [(&'static str, u16)]) -> Result<u16, D::Error> {
    let names: Vec<String> = Vec::deserialize(d)?;
    let mut bits = 0;
    for name in names {
        match table.iter().find(|(n, _)| *n == name) {
            Some((_, bit)) => bits |= bit,
            None => {
                let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                // The name is the client's: not quoted back (see `body::without_values`).
                return Err(de::Error::custom(format!("unknown flag, expected one of {}", known.join(", "))));
            }
        }
    }
    Ok(bits)
}

fn flag_names(bits: u16, table: &'static [(&'static str, u16)]) -> Vec<&'static str> {
    table.iter().filter(|(_, bit)| bits & bit != 0).map(|(name, _)| *name).collect()
}

fn account_flags<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    flags_from_names(d, AccountFlags::NAMES)
}

fn transfer_flags<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    flags_from_names(d, TransferFlags::NAMES)
}

/// An account to create. Balances and timestamp are accepted only so that a client that
/// sends a full TigerBeetle account gets the ledger's result code for them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    id: Dec128,
    #[serde(default)]
    debits_pending: Dec128,
    #[serde(default)]
    debits_posted: Dec128,
    #[serde(default)]
    credits_pending: Dec128,
    #[serde(default)]
    credits_posted: Dec128,
    #[serde(default)]
    user_data_128: Dec128,
    #[serde(default)]
    user_data_64: Dec64,
    #[serde(default)]
    user_data_32: u32,
    ledger: u32,
    code: u16,
    #[serde(default, deserialize_with = "account_flags")]
    #[schema(value_type = Vec<String>)]
    flags: u16,
    #[serde(default)]
    timestamp: Dec64,
}

impl From<AccountInput> for Account {
    fn from(a: AccountInput) -> Account {
        Account {
            id: a.id.0,
            debits_pending: a.debits_pending.0,
            debits_posted: a.debits_posted.0,
            credits_pending: a.credits_pending.0,
            credits_posted: a.credits_posted.0,
            user_data_128: a.user_data_128.0,
            user_data_64: a.user_data_64.0,
            user_data_32: a.user_data_32,
            reserved: 0,
            ledger: a.ledger,
            code: a.code,
            flags: AccountFlags(a.flags),
            timestamp: a.timestamp.0,
        }
    }
}

/// A transfer to create. Only `id` is required; what else is needed depends on the flags,
/// and the ledger says what is missing with its result code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    id: Dec128,
    #[serde(default)]
    debit_account_id: Dec128,
    #[serde(default)]
    credit_account_id: Dec128,
    #[serde(default)]
    amount: Dec128,
    #[serde(default)]
    pending_id: Dec128,
    #[serde(default)]
    user_data_128: Dec128,
    #[serde(default)]
    user_data_64: Dec64,
    #[serde(default)]
    user_data_32: u32,
    #[serde(default)]
    timeout: u32,
    #[serde(default)]
    ledger: u32,
    #[serde(default)]
    code: u16,
    #[serde(default, deserialize_with = "transfer_flags")]
    #[schema(value_type = Vec<String>)]
    flags: u16,
    #[serde(default)]
    timestamp: Dec64,
}

impl From<TransferInput> for Transfer {
    fn from(t: TransferInput) -> Transfer {
        Transfer {
            id: t.id.0,
            debit_account_id: t.debit_account_id.0,
            credit_account_id: t.credit_account_id.0,
            amount: t.amount.0,
            pending_id: t.pending_id.0,
            user_data_128: t.user_data_128.0,
            user_data_64: t.user_data_64.0,
            user_data_32: t.user_data_32,
            timeout: t.timeout,
            ledger: t.ledger,
            code: t.code,
            flags: TransferFlags(t.flags),
            timestamp: t.timestamp.0,
        }
    }
}

/// An account as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOutput {
    id: Dec128,
    debits_pending: Dec128,
    debits_posted: Dec128,
    credits_pending: Dec128,
    credits_posted: Dec128,
    user_data_128: Dec128,
    user_data_64: Dec64,
    user_data_32: u32,
    ledger: u32,
    code: u16,
    flags: Vec<&'static str>,
    timestamp: Dec64,
}

impl From<&Account> for AccountOutput {
    fn from(a: &Account) -> Self {
        AccountOutput {
            id: Dec128(a.id),
            debits_pending: Dec128(a.debits_pending),
            debits_posted: Dec128(a.debits_posted),
            credits_pending: Dec128(a.credits_pending),
            credits_posted: Dec128(a.credits_posted),
            user_data_128: Dec128(a.user_data_128),
            user_data_64: Dec64(a.user_data_64),
            user_data_32: a.user_data_32,
            ledger: a.ledger,
            code: a.code,
            flags: flag_names(a.flags.0, AccountFlags::NAMES),
            timestamp: Dec64(a.timestamp),
        }
    }
}

/// A transfer as the API returns it; pending transfers also say whether they are still open.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferOutput {
    id: Dec128,
    debit_account_id: Dec128,
    credit_account_id: Dec128,
    amount: Dec128,
    pending_id: Dec128,
    user_data_128: Dec128,
    user_data_64: Dec64,
    user_data_32: u32,
    timeout: u32,
    ledger: u32,
    code: u16,
    flags: Vec<&'static str>,
    timestamp: Dec64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_status: Option<&'static str>,
}

impl TransferOutput {
    /// The output shape of `t`, with the status if it is a pending transfer.
    pub fn new(t: &Transfer, pending_status: Option<PendingStatus>) -> Self {
        TransferOutput {
            id: Dec128(t.id),
            debit_account_id: Dec128(t.debit_account_id),
            credit_account_id: Dec128(t.credit_account_id),
            amount: Dec128(t.amount),
            pending_id: Dec128(t.pending_id),
            user_data_128: Dec128(t.user_data_128),
            user_data_64: Dec64(t.user_data_64),
            user_data_32: t.user_data_32,
            timeout: t.timeout,
            ledger: t.ledger,
            code: t.code,
            flags: flag_names(t.flags.0, TransferFlags::NAMES),
            timestamp: Dec64(t.timestamp),
            pending_status: pending_status.map(PendingStatus::name),
        }
    }
}

/// One entry of an account's balance history.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOutput {
    timestamp: Dec64,
    debits_pending: Dec128,
    debits_posted: Dec128,
    credits_pending: Dec128,
    credits_posted: Dec128,
}

impl From<&AccountBalance> for BalanceOutput {
    fn from(b: &AccountBalance) -> Self {
        BalanceOutput {
            timestamp: Dec64(b.timestamp),
            debits_pending: Dec128(b.debits_pending),
            debits_posted: Dec128(b.debits_posted),
            credits_pending: Dec128(b.credits_pending),
            credits_posted: Dec128(b.credits_posted),
        }
    }
}

/// The result of one item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// The item's position in the request.
    pub index: usize,
    /// The stable result code.
    pub result: &'static str,
    /// For `ok` and `exists`: the object's timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Dec64>,
    /// For transfers that are `ok` or `exists`: the amount moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Dec128>,
}

/// A batch response: one result per item, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    /// The results.
    pub results: Vec<ItemResult>,
}

/// A page of a list: the one list shape of the whole API.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, newest first.
    pub data: Vec<T>,
    /// Whether more items follow.
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items read (the extra one says whether more follow),
    /// with the cursor of the last item kept.
    pub fn from_lookahead(mut data: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let has_more = data.len() > limit;
        data.truncate(limit);
        let next_cursor = if has_more { data.last().map(cursor_of) } else { None };
        Page { data, has_more, next_cursor }
    }

    /// A page whose cursor the caller computed.
    pub fn new(data: Vec<T>, next_cursor: Option<String>) -> Page<T> {
        Page { has_more: next_cursor.is_some(), data, next_cursor }
    }
}

/// The (year, month, day) of a day number counted from 1970-01-01 (Howard Hinnant's
/// algorithm).
pub fn civil_date(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A time: nanoseconds since the Unix epoch, written as an RFC 3339 UTC string with nine
/// fractional digits (`2026-11-30T05:27:21.123456789Z`), so that strings sort as times do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub u64);

impl Rfc3339 {
    /// The string's bytes, written digit by digit: every response carries a few times, and
    /// the formatting machinery took several times as long.
    fn to_bytes(self) -> [u8; 30] {
        fn digits(out: &mut [u8], mut value: u64) {
            for slot in out.iter_mut().rev() {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        let seconds = self.0 / 1_000_000_000;
        let rest = seconds % 86_400;
        // A u64 of nanoseconds ends in 2554: the year always has four digits.
        let (year, month, day) = civil_date(seconds / 86_400);
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        digits(&mut out[0..4], year.unsigned_abs());
        digits(&mut out[5..7], month.unsigned_abs());
        digits(&mut out[8..10], day.unsigned_abs());
        digits(&mut out[11..13], rest / 3600);
        digits(&mut out[14..16], rest % 3600 / 60);
        digits(&mut out[17..19], rest % 60);
        digits(&mut out[20..29], self.0 % 1_000_000_000);
        out
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes();
        s.serialize_str(std::str::from_utf8(&bytes).map_err(serde::ser::Error::custom)?)
    }
}

impl PartialSchema for Rfc3339 {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .description(Some("An RFC 3339 UTC time with nanoseconds"))
            .into()
    }
}

impl ToSchema for Rfc3339 {}

/// An optional time that is absent (null) when zero.
pub fn rfc3339_or_null(nanos: u64) -> Option<Rfc3339> {
    (nanos != 0).then_some(Rfc3339(nanos))
}

/// An amount of minor units in a request: a decimal string (or a JSON integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmountInput(pub kasa_core::money::Amount);

impl<'de> Deserialize<'de> for AmountInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecimalVisitor { max: u64::MAX as u128, what: "an amount of minor units" })
            .map(|v| AmountInput(kasa_core::money::Amount::new(v as u64)))
    }
}

impl PartialSchema for AmountInput {
    fn schema() -> RefOr<Schema> {
        Dec64::schema()
    }
}

impl ToSchema for AmountInput {}

/// An amount of minor units in a response: a decimal string.
pub fn amount(a: kasa_core::money::Amount) -> String {
    a.minor().to_string()
}

/// Checks a request's optional `currency` against the one the endpoint works in.
pub fn check_currency(given: Option<&str>, expected: kasa_core::money::Currency) -> Result<(), crate::Problem> {
    match given {
        None => Ok(()),
        Some(code) if code == expected.code() => Ok(()),
        Some(code) => Err(crate::Problem::of(
            "currency_not_supported",
            format!("this amount is in {expected}, found currency '{}'", code.chars().take(8).collect::<String>()),
        )),
    }
}

/// A batch lookup request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupInput {
    /// The ids to look up.
    #[schema(value_type = Vec<Dec128>)]
    pub ids: Bounded<Dec128>,
}

/// The start of the error message a [`Bounded`] list gives when it is too long; the HTTP
/// layer recognises it to answer `too_many_items`.
pub const TOO_MANY_ITEMS: &str = "too many items";

/// A JSON array of at most [`kasa_core::ITEMS_PER_COMMAND_MAX`] items. The parser stops at
/// the first item over the limit, so a body of a million tiny objects never becomes a
/// million values in memory.
#[derive(Debug)]
pub struct Bounded<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SeqVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {} items", kasa_core::ITEMS_PER_COMMAND_MAX)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(kasa_core::ITEMS_PER_COMMAND_MAX));
                while let Some(item) = seq.next_element()? {
                    if out.len() == kasa_core::ITEMS_PER_COMMAND_MAX {
                        return Err(de::Error::custom(format!(
                            "{TOO_MANY_ITEMS}: a batch holds at most {} items",
                            kasa_core::ITEMS_PER_COMMAND_MAX
                        )));
                    }
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(SeqVisitor(std::marker::PhantomData)).map(Bounded)
    }
}

/// A batch lookup response: found objects in request order, and the ids not found.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupOutput<T> {
    /// The objects found, in the order asked.
    pub data: Vec<T>,
    /// The ids with no object.
    pub not_found: Vec<Dec128>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit writer against the formatting it replaced, at the ends of the range
    /// and across days, leap days and centuries.
    #[test]
    fn rfc3339_matches_the_formatted_string() {
        let formatted = |nanos: u64| {
            let seconds = nanos / 1_000_000_000;
            let rest = seconds % 86_400;
            let (year, month, day) = civil_date(seconds / 86_400);
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
                rest / 3600,
                rest % 3600 / 60,
                rest % 60,
                nanos % 1_000_000_000
            )
        };
        let mut nanos = 0u64;
        let mut values = vec![0, 1, 999_999_999, 1_000_000_000, u64::MAX, u64::MAX - 1, 951_782_400_000_000_000];
        for _ in 0..20_000 {
            nanos = nanos.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            values.push(nanos);
        }
        for value in values {
            let time = Rfc3339(value);
            assert_eq!(time.to_string(), formatted(value));
            assert_eq!(serde_json::to_string(&time).unwrap(), format!("\"{}\"", formatted(value)));
        }
        assert_eq!(Rfc3339(951_782_400_000_000_000).to_string(), "2000-02-29T00:00:00.000000000Z");
    }
}
