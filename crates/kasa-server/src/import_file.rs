//! A partner's merchant file as the import reads it: CSV with a header row, or NDJSON, one
//! merchant-and-store row per line, checked a row at a time into the core's bounded types
//! (the BRN's check digit, the MCC, lengths, a QR payload that `kasa_core::qr` decodes).
//!
//! The file stays as uploaded (one buffer and the offset of each line), so that a million
//! rows cost the file and 8 bytes a row, and rows are checked in chunks, in parallel with
//! the commits, rather than all up front. A row is one line: CSV fields may be quoted (with
//! `""` for a quote) but hold no line break (no field of a row may contain one anyway).
//! It does not talk to the engine; `routes/imports.rs` does.

use bytes::Bytes;
use kasa_core::merchant::{
    parse_brn, BusinessName, City, CountryCode, DisplayName, ImportEntry, ImportField, ImportRow, Mcc, PartnerId,
    QrPayload, ROWS_PER_IMPORT_MAX,
};

/// The columns of a CSV file, in order, as its header row names them: the names of
/// [`ImportField::columns`] (a test keeps them equal).
pub const COLUMNS: [&str; 10] = [
    "partner_merchant_id",
    "business_name",
    "display_name",
    "brn",
    "mcc",
    "country",
    "city",
    "store_id",
    "store_name",
    "qr_payload",
];

/// How the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// `text/csv`, with the header row [`COLUMNS`].
    Csv,
    /// `application/x-ndjson`: one JSON object per line with the same names, strings.
    Ndjson,
}

impl FileFormat {
    /// The format of a `Content-Type`.
    pub fn of(content_type: &str) -> Option<FileFormat> {
        match content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "text/csv" => Some(FileFormat::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }
}

/// An uploaded file: its bytes and where each row is.
pub struct ImportFile {
    body: Bytes,
    format: FileFormat,
    /// Each row's line, as a range of `body` (blank lines are not rows).
    rows: Vec<(usize, usize)>,
}

/// A row as checked: its entry for the core, and why it was refused, said for people.
pub struct Checked {
    /// What the core gets.
    pub entry: ImportEntry,
    /// For a refused row: the field and what is wrong with it (never the value).
    pub detail: Option<String>,
}

impl ImportFile {
    /// Splits `body` into rows; refuses a file that is not UTF-8, a CSV file without the
    /// header row, a file without rows or with more than [`ROWS_PER_IMPORT_MAX`].
    pub fn parse(body: Bytes, format: FileFormat) -> Result<ImportFile, String> {
        if std::str::from_utf8(&body).is_err() {
            return Err("the file is not UTF-8".into());
        }
        let mut rows = Vec::new();
        let mut start = 0;
        let mut header = format == FileFormat::Csv;
        while start < body.len() {
            let end = body[start..].iter().position(|&b| b == b'\n').map_or(body.len(), |i| start + i);
            let mut line_end = end;
            if line_end > start && body[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if line_end > start {
                if header {
                    let line = std::str::from_utf8(&body[start..line_end]).expect("checked above");
                    let names = split_csv(line.trim_start_matches('\u{feff}'))
                        .ok_or_else(|| "the header row is not CSV".to_string())?;
                    if names.iter().map(String::as_str).ne(COLUMNS) {
                        return Err(format!("the header row must be {}", COLUMNS.join(",")));
                    }
                    header = false;
                } else {
                    if rows.len() >= ROWS_PER_IMPORT_MAX as usize {
                        return Err(format!("a file has at most {ROWS_PER_IMPORT_MAX} rows"));
                    }
                    rows.push((start, line_end));
                }
            }
            start = end + 1;
        }
        if header {
            return Err(format!("the file has no header row: {}", COLUMNS.join(",")));
        }
        if rows.is_empty() {
            return Err("the file has no rows".into());
        }
        Ok(ImportFile { body, format, rows })
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The file's bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The columns of row `i` (0-based), as strings in [`COLUMNS`] order, or `None` if the
    /// line is not a row.
    fn columns(&self, i: usize) -> Option<Vec<String>> {
        let (start, end) = self.rows[i];
        let line = std::str::from_utf8(&self.body[start..end]).ok()?;
        match self.format {
            FileFormat::Csv => split_csv(line).filter(|c| c.len() == COLUMNS.len()),
            FileFormat::Ndjson => {
                let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
                if object.keys().any(|k| !COLUMNS.contains(&k.as_str())) {
                    return None;
                }
                COLUMNS.iter().map(|c| Some(object.get(*c)?.as_str()?.to_string())).collect()
            }
        }
    }

    /// Checks row `i` (0-based).
    pub fn check(&self, i: usize) -> Checked {
        match self.columns(i) {
            None => refused(ImportField::Line, "the line is not a row of the ten columns".into()),
            Some(c) => match check_columns(c) {
                Ok(row) => Checked { entry: ImportEntry::Row(Box::new(row)), detail: None },
                Err((field, why)) => refused(field, why),
            },
        }
    }

    /// The registration number and the store id of row `i`, if they are valid (to find the
    /// merchant and store a committed row went to).
    pub fn keys(&self, i: usize) -> Option<(kasa_core::merchant::Brn, PartnerId)> {
        let c = self.columns(i)?;
        Some((parse_brn(&c[3]).ok()?, PartnerId::new(c[7].as_str()).ok()?))
    }
}

fn refused(field: ImportField, why: String) -> Checked {
    Checked { entry: ImportEntry::Refused(field), detail: Some(format!("{}: {why}", field.name())) }
}

/// The ten columns into a row, or the first field that is wrong and why.
fn check_columns(c: Vec<String>) -> Result<ImportRow, (ImportField, String)> {
    let mut c = c.into_iter();
    let mut next = || c.next().expect("ten columns");
    let f = |i: usize| move |e: String| (ImportField::columns()[i], e);
    let partner_merchant_id = PartnerId::new(next()).map_err(f(0))?;
    let business_name = BusinessName::new(next()).map_err(f(1))?;
    let display_name = DisplayName::new(next()).map_err(f(2))?;
    let brn = parse_brn(&next()).map_err(|e| (ImportField::Brn, e.to_string()))?;
    let mcc = Mcc::parse(&next()).map_err(f(4))?;
    let country = CountryCode::new(next()).map_err(f(5))?;
    let city = City::new(next()).map_err(f(6))?;
    let store_id = PartnerId::new(next()).map_err(f(7))?;
    let store_name = DisplayName::new(next()).map_err(f(8))?;
    let qr = next();
    if let Err(e) = kasa_core::qr::decode(&qr) {
        return Err((ImportField::QrPayload, format!("the payload does not decode: {}", e.reason.name())));
    }
    let qr_payload = QrPayload::new(qr).map_err(f(9))?;
    Ok(ImportRow {
        partner_merchant_id,
        business_name,
        display_name,
        brn,
        mcc,
        store_id,
        store_name,
        qr_payload,
        country,
        city,
    })
}

/// Splits one CSV line (RFC 4180 without line breaks in fields): `None` if a quote is not
/// closed or is followed by something other than a comma.
pub fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::with_capacity(COLUMNS.len());
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Some(fields);
                    }
                    Some(',') => break,
                    Some('"') => return None,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Writes one CSV field, quoted when it needs to be (for files Kasa writes: the bench's).
pub fn csv_field(value: &str, out: &mut String) {
    if value.contains([',', '"']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_are_the_import_fields_names() {
        let names: Vec<&str> = ImportField::columns().iter().map(|f| f.name()).collect();
        assert_eq!(names, COLUMNS);
    }

    const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\",").unwrap(), ["a", "b,c", "d\"e", ""]);
        assert!(split_csv("a,\"b").is_none());
        assert!(split_csv("a,\"b\"c").is_none());
        assert!(split_csv("a,b\"c").is_none());
        let mut out = String::new();
        csv_field("x,\"y\"", &mut out);
        assert_eq!(split_csv(&out).unwrap(), ["x,\"y\""]);
    }

    #[test]
    fn rows_are_checked_field_by_field() {
        let header = COLUMNS.join(",");
        let good = format!("AP-1,Best Transport Ltd,Best,120-81-47521,4111,KR,서울,S-1,명동점,{QR}");
        let bad_brn = format!("AP-2,Best,Best,120-81-47522,4111,KR,서울,S-2,명동점,{QR}");
        let bad_qr = "AP-3,Best,Best,120-81-47521,4111,KR,서울,S-3,명동점,0002010102116304FFFF";
        let body = format!("\u{feff}{header}\r\n{good}\r\n\n{bad_brn}\n{bad_qr}\nAP-4,too,few\n");
        let file = ImportFile::parse(Bytes::from(body), FileFormat::Csv).unwrap();
        assert_eq!(file.rows(), 4);
        assert!(matches!(file.check(0).entry, ImportEntry::Row(_)));
        let details: Vec<_> = (1..4).map(|i| (file.check(i).entry, file.check(i).detail.unwrap())).collect();
        assert_eq!(details[0].0, ImportEntry::Refused(ImportField::Brn));
        assert!(details[0].1.starts_with("brn: "), "{}", details[0].1);
        assert_eq!(details[1].0, ImportEntry::Refused(ImportField::QrPayload));
        assert_eq!(details[2].0, ImportEntry::Refused(ImportField::Line));
        assert_eq!(
            file.keys(0).map(|(b, s)| (b.as_str().to_string(), s.as_str().to_string())),
            Some(("120-81-47521".into(), "S-1".into()))
        );
        for (body, why) in [("", "no header"), ("a,b\n", "header row must"), (header.as_str(), "no rows")] {
            let e = ImportFile::parse(Bytes::from(body.to_string()), FileFormat::Csv).err().unwrap();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn ndjson_rows_name_their_fields() {
        let row = serde_json::json!({
            "partner_merchant_id": "AP-1", "business_name": "Best", "display_name": "Best", "brn": "1208147521",
            "mcc": "4111", "country": "KR", "city": "서울", "store_id": "S-1", "store_name": "명동점", "qr_payload": QR
        });
        let mut extra = row.clone();
        extra["pin"] = "1".into();
        let body = format!("{row}\n{extra}\n[1]\n");
        let file = ImportFile::parse(Bytes::from(body), FileFormat::Ndjson).unwrap();
        assert!(matches!(file.check(0).entry, ImportEntry::Row(_)));
        assert_eq!(file.check(1).entry, ImportEntry::Refused(ImportField::Line));
        assert_eq!(file.check(2).entry, ImportEntry::Refused(ImportField::Line));
    }
}
