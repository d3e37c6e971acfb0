//! The EMV QR decoder against real payloads: `tests/data/emv_qr.tsv` is a copy of the
//! project's shared test data (`shared/testdata/emv_qr.tsv`: 63 payloads from the EMVCo
//! specification and open-source libraries of seven schemes, each with its source), kept in
//! the repository so that a clean clone tests the same. Every valid payload decodes to
//! exactly the fields the file states, under the scheme it names; every invalid one is
//! refused for the reason written out below. A property test encodes random fields and
//! decodes them back.

use kasa_core::qr::{decode, encode, Reason, Scheme, Tag, Value, PAYLOAD_CHARS_MAX};
use proptest::prelude::*;
use std::collections::BTreeMap;

const TSV: &str = include_str!("data/emv_qr.tsv");

/// The scheme Kasa names for the TSV's description of a payload's origin.
fn scheme_of(description: &str) -> Scheme {
    const NAMES: &[(&str, Scheme)] = &[
        ("EMVCo MPM", Scheme::Emvco),
        ("Thai PromptPay", Scheme::PromptPay),
        ("Brazil", Scheme::Pix),
        ("Singapore PayNow", Scheme::PayNow),
        ("Singapore SGQR", Scheme::Sgqr),
        ("Indonesia QRIS", Scheme::Qris),
        ("Korea BC Card", Scheme::BcCard),
    ];
    NAMES
        .iter()
        .find(|(start, _)| description.starts_with(start))
        .map(|&(_, scheme)| scheme)
        .unwrap_or_else(|| panic!("no scheme for {description:?}"))
}

/// Why each invalid payload is refused, by its line in the file.
const REFUSALS: &[(usize, Reason, &str)] = &[
    (3, Reason::BadCrc, "63"),       // the spec's sample with its checksum replaced
    (6, Reason::MissingField, "63"), // no checksum field at all
    (7, Reason::BadLength, "63"),    // ends in "63" with no length
    (8, Reason::BadLength, "63"),    // ends in "6304" with no value
    (9, Reason::BadValue, "63"),     // "6304XXXX"
    (31, Reason::BadCrc, "63"),      // PIX with its checksum replaced
    (55, Reason::BadCrc, "63"),      // QRIS transfer whose stated checksum is wrong
    (56, Reason::BadLength, "80"),   // "5303365802ID": 80 with the length "2I"
    (60, Reason::NotFirst, "00"),    // 01 before 00
];

struct Row<'a> {
    line: usize,
    payload: &'a str,
    crc_ok: bool,
    scheme: &'a str,
    expected: serde_json::Value,
}

fn rows() -> Vec<Row<'static>> {
    let mut lines = TSV.lines().enumerate();
    let (_, header) = lines.next().unwrap();
    assert_eq!(header, "payload\tcrc_ok\tscheme\tsource\texpected_fields_json");
    lines
        .map(|(at, line)| {
            let columns: Vec<&str> = line.split('\t').collect();
            assert_eq!(columns.len(), 5, "line {}", at + 1);
            let json: serde_json::Value = serde_json::from_str(columns[4]).unwrap();
            Row {
                line: at + 1,
                payload: columns[0],
                crc_ok: columns[1] == "true",
                scheme: columns[2],
                expected: json["derived_tlv"].clone(),
            }
        })
        .collect()
}

#[test]
fn every_valid_payload_decodes_to_the_stated_fields_and_scheme() {
    let rows = rows();
    assert_eq!(rows.len(), 63);
    let mut valid = 0;
    for row in rows.iter().filter(|row| row.crc_ok) {
        let payload = decode(row.payload).unwrap_or_else(|e| panic!("line {}: {e}", row.line));
        let fields = serde_json::to_value(payload.fields_map()).unwrap();
        assert_eq!(fields, row.expected, "line {}", row.line);
        assert_eq!(payload.scheme(), scheme_of(row.scheme), "line {}", row.line);
        assert_eq!(payload.as_str(), row.payload);
        valid += 1;
    }
    assert_eq!(valid, 54);
}

#[test]
fn every_invalid_payload_is_refused_for_its_reason() {
    let rows = rows();
    let invalid: Vec<&Row> = rows.iter().filter(|row| !row.crc_ok).collect();
    assert_eq!(
        invalid.iter().map(|row| row.line).collect::<Vec<_>>(),
        REFUSALS.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (row, &(_, reason, field)) in invalid.iter().zip(REFUSALS) {
        let Err(error) = decode(row.payload) else { panic!("line {} is accepted", row.line) };
        assert_eq!(
            (error.reason, error.field.map(|tag| tag.to_string())),
            (reason, Some(field.to_string())),
            "line {}",
            row.line
        );
    }
}

#[test]
fn valid_payloads_with_fields_in_ascending_order_encode_back_to_themselves() {
    let mut checked = 0;
    for row in rows().iter().filter(|row| row.crc_ok) {
        let payload = decode(row.payload).unwrap();
        let ids: Vec<u8> = payload.fields().iter().map(|field| field.id).collect();
        if ids.windows(2).all(|pair| pair[0] < pair[1]) {
            assert_eq!(encode(&payload.to_values()).unwrap(), row.payload, "line {}", row.line);
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} payloads in ascending order");
}

/// A small valid payload for the refusal tests below: PayNow's sample from the data.
const PAYNOW: &str = "00020101021126400009SG.PAYNOW010120213200002150HWCF030115204000053037025802SG\
                      5923NATIONAL HEALTHCARE GRO6009Singapore6304DF3F";

/// `PAYNOW` with one field changed and the checksum recomputed, so the change is what is
/// refused rather than the checksum.
fn with(id: u8, value: Option<&str>) -> Result<(), (Reason, Option<Tag>)> {
    let mut fields = decode(PAYNOW).unwrap().to_values();
    match value {
        Some(value) => fields.insert(id, Value::Text(value.to_string())),
        None => fields.remove(&id),
    };
    encode(&fields).map(|_| ()).map_err(|e| (e.reason, e.field))
}

#[test]
fn values_that_break_their_format_are_refused_naming_the_field() {
    let top = |id| Some(Tag { id, sub: None });
    assert_eq!(with(0, Some("02")), Err((Reason::BadValue, top(0))));
    assert_eq!(with(1, Some("13")), Err((Reason::BadValue, top(1))));
    assert_eq!(with(53, Some("7O2")), Err((Reason::BadValue, top(53))));
    assert_eq!(with(53, None), Err((Reason::MissingField, top(53))));
    assert_eq!(with(54, Some("1.000.00")), Err((Reason::BadValue, top(54))));
    assert_eq!(with(54, Some("12345678901234")), Err((Reason::BadValue, top(54))));
    assert_eq!(with(55, Some("02")), Err((Reason::MissingField, top(56))));
    assert_eq!(with(58, Some("sg")), Err((Reason::BadValue, top(58))));
    assert_eq!(with(26, None), Err((Reason::MissingField, top(26))));
    assert_eq!(with(26, Some("0109SG.PAYNOW")), Err((Reason::MissingField, Some(Tag { id: 26, sub: Some(0) }))));
    assert_eq!(with(26, Some("0009SG.PAYNOW01")), Err((Reason::BadLength, Some(Tag { id: 26, sub: Some(1) }))));
    assert_eq!(with(59, Some(&"x".repeat(100))), Err((Reason::BadLength, top(59))));
    assert_eq!(with(54, Some("10.50")), Ok(()));
}

#[test]
fn layout_breaks_are_refused_naming_the_reason() {
    let refusal = |text: &str| decode(text).map(|_| ()).map_err(|e| (e.reason, e.field.map(|t| t.to_string())));
    // The checksum is checked over the bytes as they are: one character changed is caught.
    assert_eq!(refusal(&PAYNOW.replace("Singapore", "Singapura")), Err((Reason::BadCrc, Some("63".into()))));
    // 59 twice (the checksum would be checked after the layout, so it need not be right).
    let twice = PAYNOW.replace("6009Singapore", "5901X6009Singapore");
    assert_eq!(refusal(&twice), Err((Reason::DuplicateField, Some("59".into()))));
    let late = PAYNOW.replace("6009Singapore6304DF3F", "6304DF3F6009Singapore");
    assert_eq!(refusal(&late), Err((Reason::NotLast, Some("63".into()))));
    assert_eq!(refusal("0002010102115A"), Err((Reason::BadId, None)));
    assert_eq!(refusal(""), Err((Reason::MissingField, Some("00".into()))));
    assert_eq!(refusal(&"0".repeat(PAYLOAD_CHARS_MAX + 1)), Err((Reason::TooLong, None)));
    // A length counts characters: "최" is one character of three bytes, so "5902최최" is
    // whole (and the payload lacks only its checksum) and "5904최최" runs past the end.
    assert_eq!(refusal("0002015902최최"), Err((Reason::MissingField, Some("63".into()))));
    assert_eq!(refusal("0002015904최최"), Err((Reason::BadLength, Some("59".into()))));
}

/// A value of 1 to `max` characters, some outside ASCII (Hangul, Chinese, accents), since
/// lengths count characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![4 => proptest::char::range(' ', '~'), 1 => proptest::char::range('가', '힣'), 1 => proptest::char::range('一', '龥'), 1 => Just('é')], 1..=max)
        .prop_map(|chars| chars.into_iter().collect())
}

fn template(ids: std::ops::RangeInclusive<u8>, entries: usize) -> impl Strategy<Value = BTreeMap<u8, String>> {
    proptest::collection::btree_map(ids, text(12), 0..=entries)
}

prop_compose! {
    fn fields()(
        dynamic in any::<bool>(),
        gui in text(16),
        account in template(1..=99, 3),
        mcc in "[0-9]{4}",
        currency in "[0-9]{3}",
        amount in proptest::option::of("[0-9]{1,7}(\\.[0-9]{2})?"),
        country in "[A-Z]{2}",
        name in text(25),
        city in text(15),
        additional in template(1..=99, 4),
        unreserved in proptest::option::of(text(40)),
    ) -> BTreeMap<u8, Value> {
        let mut fields = BTreeMap::new();
        fields.insert(0, Value::Text("01".into()));
        fields.insert(1, Value::Text(if dynamic { "12" } else { "11" }.into()));
        let mut account = account;
        account.insert(0, gui);
        fields.insert(26, Value::Template(account));
        fields.insert(52, Value::Text(mcc));
        fields.insert(53, Value::Text(currency));
        if let Some(amount) = amount {
            fields.insert(54, Value::Text(amount));
        }
        fields.insert(58, Value::Text(country));
        fields.insert(59, Value::Text(name));
        fields.insert(60, Value::Text(city));
        if !additional.is_empty() {
            fields.insert(62, Value::Template(additional));
        }
        if let Some(unreserved) = unreserved {
            fields.insert(91, Value::Text(unreserved));
        }
        fields
    }
}

proptest! {
    #[test]
    fn random_fields_encode_and_decode_back(fields in fields()) {
        let text = encode(&fields).unwrap();
        let payload = decode(&text).unwrap();
        let mut decoded = payload.to_values();
        prop_assert!(decoded.remove(&63).is_some());
        prop_assert_eq!(decoded, fields);
        prop_assert!(text.chars().count() <= PAYLOAD_CHARS_MAX);
    }

    /// CRC-16 catches every burst of 16 bits or fewer, so any one ASCII character of a valid
    /// payload changed to another is refused (as a bad checksum, or earlier if the change
    /// breaks the layout).
    #[test]
    fn one_changed_character_is_refused(line in 0usize..63, at in any::<prop::sample::Index>(), to in proptest::char::range(' ', '~')) {
        let rows = rows();
        let row = &rows[line];
        prop_assume!(row.crc_ok);
        let ascii: Vec<usize> = row.payload.char_indices().filter(|(_, c)| c.is_ascii()).map(|(i, _)| i).collect();
        let i = ascii[at.index(ascii.len())];
        prop_assume!(row.payload.as_bytes()[i] != to as u8);
        let changed = format!("{}{}{}", &row.payload[..i], to, &row.payload[i + 1..]);
        prop_assert!(decode(&changed).is_err(), "{}", changed);
    }
}
