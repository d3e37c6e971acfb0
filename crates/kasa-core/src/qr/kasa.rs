//! Kasa's own codes: the payloads Kasa issues for its merchants' stores, and how a scanned
//! one is read back.
//!
//! A Kasa code is an EMV payload whose merchant account template 26 holds Kasa's globally
//! unique id ([`KASA_GUI`]) in `00`, the store's reference (`str_12`) in `01` and, for a code
//! made for one sale (initiation method `12`), the sale's reference in `02`: the payment's id
//! and a token that only Kasa can derive (`pay_34.` and 32 hex digits), so that nobody can
//! guess another sale's code. A store's static code (`11`) has no amount; the user enters it.
//! The other fields are EMV's own: category code, currency (`410`, won), amount (`54`, a
//! one-sale code only), country `KR`, the merchant's display name.

use super::{decode, encode, refuse, Payload, QrError, Reason, Scheme, Tag, Value, KASA_GUI};
use crate::money::{Amount, Currency};
use std::collections::BTreeMap;

/// The template that holds Kasa's account fields.
pub const KASA_TEMPLATE: u8 = 26;

/// What a store's code says about its merchant.
#[derive(Clone, Copy, Debug)]
pub struct StoreCode<'a> {
    /// The store's id.
    pub store_id: u64,
    /// The merchant's display name.
    pub merchant_name: &'a str,
    /// The merchant category code, four digits.
    pub mcc: &'a str,
}

/// A one-sale code's own part: its payment and the payment's token, and the amount.
#[derive(Clone, Copy, Debug)]
pub struct Sale<'a> {
    /// The payment's id.
    pub payment_id: u64,
    /// The payment's token (32 hex digits, derived by the HTTP layer).
    pub token: &'a str,
    /// The amount, in won.
    pub amount: Amount,
}

/// A Kasa code as read from a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KasaCode {
    /// The store.
    pub store_id: u64,
    /// For a one-sale code: the payment's id and token.
    pub sale: Option<(u64, String)>,
    /// The amount the code states, if any, in won.
    pub amount: Option<Amount>,
    /// The merchant's name as the code shows it (field 59), if it has one.
    pub merchant_name: Option<String>,
}

/// The payload of a store's code: static without `sale`, for one sale with it.
pub fn payload(store: StoreCode, sale: Option<Sale>) -> Result<String, QrError> {
    let mut account = BTreeMap::from([(0, KASA_GUI.to_string()), (1, format!("str_{}", store.store_id))]);
    let mut fields = BTreeMap::from([
        (0, Value::Text("01".into())),
        (1, Value::Text(if sale.is_some() { "12" } else { "11" }.into())),
        (52, Value::Text(store.mcc.into())),
        (53, Value::Text(format!("{:03}", Currency::KRW.numeric()))),
        (58, Value::Text("KR".into())),
        (59, Value::Text(store.merchant_name.into())),
    ]);
    if let Some(sale) = sale {
        account.insert(2, format!("pay_{}.{}", sale.payment_id, sale.token));
        fields.insert(54, Value::Text(sale.amount.minor().to_string()));
    }
    fields.insert(KASA_TEMPLATE, Value::Template(account));
    encode(&fields)
}

/// Reads a decoded payload of the Kasa scheme. A payload of another scheme is the caller's to
/// refuse (by its [`Payload::scheme`]); here it is `bad_value` at `26.00`.
pub fn read(payload: &Payload) -> Result<KasaCode, QrError> {
    let at = |sub| Some(Tag { id: KASA_TEMPLATE, sub: Some(sub) });
    if payload.scheme() != Scheme::Kasa
        || !payload.sub(KASA_TEMPLATE, 0).is_some_and(|g| g.eq_ignore_ascii_case(KASA_GUI))
    {
        return Err(refuse(Reason::BadValue, at(0)));
    }
    let reference = payload.sub(KASA_TEMPLATE, 1).ok_or(refuse(Reason::MissingField, at(1)))?;
    let store_id = number_after(reference, "str_").ok_or(refuse(Reason::BadValue, at(1)))?;
    if payload.currency_numeric() != Currency::KRW.numeric() {
        return Err(refuse(Reason::BadValue, Some(Tag { id: 53, sub: None })));
    }
    let amount = match payload.amount() {
        None => None,
        Some(text) => Some(won(text).ok_or(refuse(Reason::BadValue, Some(Tag { id: 54, sub: None })))?),
    };
    let sale = match (payload.is_dynamic(), payload.sub(KASA_TEMPLATE, 2)) {
        (false, None) => None,
        (false, Some(_)) => return Err(refuse(Reason::BadValue, at(2))),
        (true, None) => return Err(refuse(Reason::MissingField, at(2))),
        (true, Some(sale)) => {
            let (payment, token) = sale.split_once('.').ok_or(refuse(Reason::BadValue, at(2)))?;
            let payment_id = number_after(payment, "pay_").ok_or(refuse(Reason::BadValue, at(2)))?;
            if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(refuse(Reason::BadValue, at(2)));
            }
            Some((payment_id, token.to_string()))
        }
    };
    Ok(KasaCode { store_id, sale, amount, merchant_name: payload.merchant_name().map(String::from) })
}

/// Decodes `text` and reads it as a Kasa code; `Ok(Err(scheme))` for a valid code of another
/// scheme.
pub fn read_text(text: &str) -> Result<Result<KasaCode, Scheme>, QrError> {
    let payload = decode(text)?;
    if payload.scheme() != Scheme::Kasa {
        return Ok(Err(payload.scheme()));
    }
    read(&payload).map(Ok)
}

/// `{prefix}{n}` with `n` a positive number without leading zeros.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let digits = text.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 19 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// An EMV amount in won: digits, optionally with a decimal point and only zeros after it.
fn won(text: &str) -> Option<Amount> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse::<u64>().ok().map(Amount::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: StoreCode = StoreCode { store_id: 12, merchant_name: "카페 Kasa", mcc: "5812" };

    #[test]
    fn a_static_code_reads_back_as_its_store() {
        let text = payload(STORE, None).unwrap();
        let code = read_text(&text).unwrap().unwrap();
        let name = Some("카페 Kasa".to_string());
        assert_eq!(code, KasaCode { store_id: 12, sale: None, amount: None, merchant_name: name });
        let decoded = decode(&text).unwrap();
        assert_eq!(decoded.merchant_name(), Some("카페 Kasa"));
        assert!(!decoded.is_dynamic());
    }

    #[test]
    fn a_one_sale_code_reads_back_with_its_payment_and_amount() {
        let token = "0123456789abcdef0123456789abcdef";
        let sale = Sale { payment_id: 34, token, amount: Amount::new(4_500) };
        let text = payload(STORE, Some(sale)).unwrap();
        let code = read_text(&text).unwrap().unwrap();
        let sale = Some((34, token.into()));
        let name = Some("카페 Kasa".to_string());
        assert_eq!(code, KasaCode { store_id: 12, sale, amount: Some(Amount::new(4_500)), merchant_name: name });
    }

    #[test]
    fn codes_of_other_schemes_and_broken_kasa_codes_are_told_apart() {
        let paynow = "00020101021126400009SG.PAYNOW010120213200002150HWCF030115204000053037025802SG5923NATIONAL \
                      HEALTHCARE GRO6009Singapore6304DF3F";
        assert_eq!(read_text(paynow).unwrap(), Err(Scheme::PayNow));
        let broken = |account: BTreeMap<u8, String>, dynamic: bool| {
            let fields = BTreeMap::from([
                (0, Value::Text("01".into())),
                (1, Value::Text(if dynamic { "12" } else { "11" }.into())),
                (26, Value::Template(account)),
                (53, Value::Text("410".into())),
                (58, Value::Text("KR".into())),
            ]);
            read_text(&encode(&fields).unwrap()).unwrap_err().to_string()
        };
        let gui = (0, KASA_GUI.to_string());
        assert_eq!(broken(BTreeMap::from([gui.clone()]), false), "missing_field at field 26.01");
        assert_eq!(broken(BTreeMap::from([gui.clone(), (1, "str_012".into())]), false), "bad_value at field 26.01");
        assert_eq!(broken(BTreeMap::from([gui.clone(), (1, "mch_1".into())]), false), "bad_value at field 26.01");
        assert_eq!(broken(BTreeMap::from([gui.clone(), (1, "str_1".into())]), true), "missing_field at field 26.02");
        let short = BTreeMap::from([gui.clone(), (1, "str_1".into()), (2, "pay_3.abc".into())]);
        assert_eq!(broken(short, true), "bad_value at field 26.02");
        let stray = BTreeMap::from([gui, (1, "str_1".into()), (2, format!("pay_3.{}", "a".repeat(32)))]);
        assert_eq!(broken(stray, false), "bad_value at field 26.02");
    }

    #[test]
    fn amounts_are_whole_won() {
        assert_eq!(won("4500"), Some(Amount::new(4_500)));
        assert_eq!(won("4500.00"), Some(Amount::new(4_500)));
        for bad in ["4500.50", ".5", "", "1e3", "-1", "99999999999999999999"] {
            assert_eq!(won(bad), None, "{bad}");
        }
    }
}
