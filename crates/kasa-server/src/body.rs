//! Request bodies: what the front middleware lets in (size, time, content type) and how
//! handlers parse JSON from it.
//!
//! Bodies are read whole by the front middleware before a request takes one of the limited
//! in-flight permits, within [`BODY_READ_TIMEOUT`] and a size bound that depends on who may
//! send it: 64 KiB for anything a user or anonymous client sends (the largest real wallet
//! request is a few KiB), 8 MiB for the operators' ledger batches. A slow or endless body
//! therefore holds a connection, never a permit, and never more than 64 KiB of memory unless
//! it comes with the operator key.
//!
//! JSON errors are reworded for clients: serde's messages name Rust types ("expected struct
//! SignUpInput", "u64"), which say nothing to a client and too much about the server, and
//! quote the value they refused ("invalid type: integer `110123456789`"), which may be
//! personal data (an account number sent as a number) that an error body must not carry back
//! into a client's logs. The rewording keeps the kind of the value and what was expected.

use crate::problem::Problem;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The largest body of a user's or an anonymous request.
pub const BODY_BYTES_MAX: usize = 64 << 10;
/// The largest body of an operator's ledger batch: a full JSON batch of 8,190 transfers with
/// every field spelled out is about 3.5 MiB; 8 MiB leaves room for whitespace.
pub const LEDGER_BODY_BYTES_MAX: usize = 8 << 20;
/// How long a client may take to send its body once its headers arrived.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The content types a request body may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (or any `+json`).
    Json,
    /// `application/octet-stream`: ledger batches of 128-byte records.
    Binary,
}

/// The format of a body from its `Content-Type`, or 415. JSON endpoints refuse anything else
/// (a cross-site form post is `application/x-www-form-urlencoded`, `multipart/form-data` or
/// `text/plain`, none of which a browser sends cross-origin as JSON without asking first).
pub fn format_of(content_type: Option<&str>, binary_ok: bool) -> Result<Format, Problem> {
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Format::Json),
        s if s.starts_with("application/") && s.ends_with("+json") => Ok(Format::Json),
        "application/octet-stream" if binary_ok => Ok(Format::Binary),
        "" => Err(Problem::of("unsupported_media_type", "send the body with Content-Type: application/json")),
        other => Err(Problem::of(
            "unsupported_media_type",
            format!(
                "expected application/json{}, found '{}'",
                if binary_ok { " or application/octet-stream" } else { "" },
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// Checks that a body of the approval page is an HTML form
/// (`application/x-www-form-urlencoded`), or 415. The page's forms are all it takes.
pub fn form_of(content_type: Option<&str>) -> Result<(), Problem> {
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/x-www-form-urlencoded" {
        return Ok(());
    }
    Err(Problem::of(
        "unsupported_media_type",
        format!("expected application/x-www-form-urlencoded, found '{}'", essence.chars().take(64).collect::<String>()),
    ))
}

/// Parses a JSON object into `T`. A JSON array (which serde would take for a struct) or any
/// other value is refused: every endpoint that takes one object takes exactly an object.
pub fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(body).map_err(json_problem),
        Some(_) => Err(Problem::malformed_json("expected a JSON object")),
        None => Err(Problem::malformed_json("the body is empty; expected a JSON object")),
    }
}

/// Parses an optional JSON object: an empty body is `T::default()`.
pub fn object_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    object(body)
}

/// The problem for a serde_json error, reworded.
pub fn json_problem(error: serde_json::Error) -> Problem {
    use serde_json::error::Category;
    let message = reword(&error.to_string());
    if message.starts_with(crate::json::TOO_MANY_ITEMS) {
        return Problem::of("too_many_items", message);
    }
    match error.classify() {
        Category::Data => Problem::invalid_field(message),
        Category::Syntax | Category::Eof | Category::Io => Problem::malformed_json(message),
    }
}

/// Rewords serde's messages for clients: the client's values are dropped (see
/// [`without_values`]), and Rust type names become what a client sent or should send.
pub fn reword(message: &str) -> String {
    let message = without_values(message);
    let mut out = String::with_capacity(message.len());
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        if !out.is_empty() {
            out.push(' ');
        }
        match word {
            // "struct SignUpInput", "enum Tier", "tuple struct X": the name says nothing.
            "struct" | "enum" => {
                out.push_str(if word == "struct" { "an object" } else { "one of the allowed values" });
                if let Some(name) = words.peek() {
                    if name.chars().next().is_some_and(char::is_uppercase) {
                        let name = words.next().expect("peeked");
                        out.push_str(trailing_punctuation(name));
                    }
                }
            }
            "tuple" if words.peek() == Some(&"struct") => {
                words.next();
                out.push_str("a list");
                if let Some(name) = words.peek() {
                    if name.chars().next().is_some_and(char::is_uppercase) {
                        let name = words.next().expect("peeked");
                        out.push_str(trailing_punctuation(name));
                    }
                }
            }
            w => out.push_str(&reword_word(w)),
        }
    }
    out
}

/// The kinds of value serde's messages name before quoting the value itself (serde's
/// `Unexpected`): "integer `5`", "string \"x\"", "sequence".
const VALUE_KINDS: &[&str] = &[
    "integer",
    "floating point",
    "boolean",
    "character",
    "string",
    "byte array",
    "unit value",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
];

/// serde's messages without the values they quote: "invalid type: integer `110123456789`,
/// expected a string" becomes "invalid type: integer, expected a string"; "unknown variant
/// `x`, expected one of ..." becomes "unknown variant, expected one of ..."; likewise
/// "invalid value" and "unknown field". Everything after the value is serde's wording of
/// what the type expects (no client data), so the value ends where the *last* `, expected`
/// begins: a value that contains those words itself cannot hide part of itself.
pub fn without_values(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(at) = message.find(marker) {
            let (before, rest) = message.split_at(at + marker.len());
            let (value, expected) = rest.rfind(", expected ").map_or((rest, ""), |end| rest.split_at(end));
            let kind = VALUE_KINDS
                .iter()
                .find(|kind| value == **kind || value.strip_prefix(**kind).is_some_and(|v| v.starts_with(' ')))
                .copied()
                // A kind serde does not name (`Unexpected::Other`) may be anything.
                .unwrap_or("a value");
            return format!("{before}{kind}{expected}");
        }
    }
    for marker in ["unknown variant `", "unknown field `"] {
        if let Some(at) = message.find(marker) {
            let rest = &message[at + marker.len()..];
            let end = ["`, expected ", "`, there are no "].iter().filter_map(|e| rest.rfind(e)).max();
            let after = end.map_or("", |end| &rest[end + 1..]);
            return format!("{}{}", &message[..at + marker.len() - 2], after);
        }
    }
    message.to_string()
}

/// The punctuation after a type name that is dropped.
fn trailing_punctuation(word: &str) -> &str {
    let end = word.trim_end_matches([',', '.', ':', ';']);
    &word[end.len()..]
}

fn reword_word(word: &str) -> String {
    let core = word.trim_end_matches([',', '.', ':', ';']);
    let tail = &word[core.len()..];
    let replaced = match core {
        "u8" | "u16" | "u32" | "u64" | "u128" | "i64" | "usize" => "an integer",
        "f64" | "f32" => "a number",
        "Option" => "an optional value",
        "bool" => "true or false",
        // serde's own "string" is a client's word already ("expected a string").
        "String" | "str" => "a string",
        "map" => "an object",
        "sequence" => "an array",
        _ => return word.to_string(),
    };
    format!("{replaced}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_rust_type_names() {
        assert_eq!(
            reword("invalid type: sequence, expected struct SignUpInput"),
            "invalid type: an array, expected an object"
        );
        // Regression (review): "a string" became "a a string".
        assert_eq!(reword("invalid type: integer `1`, expected a string"), "invalid type: integer, expected a string");
        assert_eq!(
            reword("expected an amount as a decimal string of digits (0 to 9)"),
            "expected an amount as a decimal string of digits (0 to 9)"
        );
        assert_eq!(reword("invalid type: string \"x\", expected u64"), "invalid type: string, expected an integer");
        assert_eq!(
            reword("unknown variant `x`, expected enum Tier"),
            "unknown variant, expected one of the allowed values"
        );
        for message in [
            "invalid type: map, expected tuple struct Dec64",
            "invalid type: integer `5`, expected struct AmountInput at line 1 column 5",
        ] {
            let out = reword(message);
            assert!(!out.contains("struct") && !out.contains("Dec64") && !out.contains("Input"), "{out}");
        }
    }

    /// Regression (issue 7's audit: error bodies can echo personal data): serde quotes the
    /// value it refused, so an account number sent as a number came back in the error body.
    /// Every kind of serde message, from real parses, keeps the kind and what was expected
    /// and loses the value, even a value made to look like the end of the message.
    #[test]
    fn messages_never_quote_the_client_s_value() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Input {
            text: Option<String>,
            count: Option<u32>,
            big: Option<u64>,
            letter: Option<char>,
            pair: Option<(u8, u8)>,
            tier: Option<Tier>,
            amount: Option<crate::json::AmountInput>,
            flag: Option<bool>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "snake_case")]
        enum Tier {
            Basic,
        }
        let parse = |body: &str| reword(&serde_json::from_str::<Input>(body).unwrap_err().to_string());
        for (body, expected) in [
            (r#"{"text": 110123456789}"#, "invalid type: integer, expected a string"),
            (r#"{"text": -110123456789}"#, "invalid type: integer, expected a string"),
            (r#"{"text": 110123456789.5}"#, "invalid type: floating point, expected a string"),
            (r#"{"text": true}"#, "invalid type: boolean, expected a string"),
            (r#"{"count": "110123456789"}"#, "invalid type: string, expected an integer"),
            (r#"{"count": 110123456789}"#, "invalid value: integer, expected an integer"),
            (r#"{"big": -110123456789}"#, "invalid value: integer, expected an integer"),
            (r#"{"letter": "110123456789"}"#, "invalid value: string, expected a character"),
            (r#"{"tier": "110123456789"}"#, "unknown variant, expected `basic`"),
            (r#"{"tier": "x`, expected `basic` 110123456789"}"#, "unknown variant, expected `basic`"),
            (r#"{"110123456789": 1}"#, "unknown field, expected one of"),
            (r#"{"amount": "110123456789x"}"#, "invalid value: string, expected an amount"),
            (r#"{"amount": "x\", expected 110123456789"}"#, "invalid value: string, expected an amount"),
            (r#"{"flag": "110123456789"}"#, "invalid type: string, expected a boolean"),
            (r#"{"pair": [110123456789, 1]}"#, "invalid value: integer, expected an integer"),
            (r#"{"pair": [1]}"#, "invalid length 1, expected"),
        ] {
            let message = parse(body);
            assert!(message.starts_with(expected), "{body}: {message}");
            assert!(!message.contains("456789"), "{body}: {message}");
        }
    }

    #[test]
    fn only_json_objects_are_taken() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Two {
            a: u32,
            b: u32,
        }
        assert!(object::<Two>(br#"{"a": 1, "b": 2}"#).is_ok());
        let array = object::<Two>(b"[1, 2]").unwrap_err();
        assert_eq!(array.code, "malformed_json");
        assert_eq!(format_of(Some("text/plain"), false).unwrap_err().code, "unsupported_media_type");
        assert_eq!(format_of(Some("application/x-www-form-urlencoded"), false).unwrap_err().status, 415);
        assert!(matches!(format_of(Some("application/json; charset=utf-8"), false), Ok(Format::Json)));
        assert!(matches!(format_of(Some("application/octet-stream"), true), Ok(Format::Binary)));
        assert!(format_of(Some("application/octet-stream"), false).is_err());
    }
}
