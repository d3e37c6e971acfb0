//! Reconciliation of a settlement file: the partner's file against Kasa's, item by item.
//! Items are matched by what both sides know of them: the item type and the partner's own
//! request ids (`payment_request_id`, and `refund_request_id` for a refund). A report lists
//! items missing on either side, items whose amounts differ (the won amount or the settlement
//! amount) and items whose statuses differ. Nothing is changed by a reconciliation: it reads
//! two files.
//!
//! Both files are in the settlement file's CSV format (`settlement_file::CSV_HEADER`); of a
//! partner's file only the columns `item_type`, `payment_request_id`, `refund_request_id`,
//! `amount`, `settlement_amount` and `status` are read, in any order, by the header's names.

use serde::Serialize;
use std::collections::BTreeMap;

/// What identifies an item on both sides.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    /// `payment`, `refund` or `cancel`.
    pub item_type: String,
    /// The partner's id of the payment.
    pub payment_request_id: String,
    /// The partner's id of the refund (empty for payments and cancels).
    pub refund_request_id: String,
}

/// What is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Values {
    /// Won.
    pub amount: String,
    /// In the settlement currency.
    pub settlement_amount: String,
    /// The item's status.
    pub status: String,
}

/// A difference between the two sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The item.
    #[serde(flatten)]
    pub key: Key,
    /// Kasa's values.
    pub kasa: Values,
    /// The partner's values.
    pub partner: Values,
}

/// What a reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Items that agree.
    pub matched: u64,
    /// In the partner's file, not in Kasa's.
    pub missing_in_kasa: Vec<Key>,
    /// In Kasa's file, not in the partner's.
    pub missing_in_partner: Vec<Key>,
    /// On both sides with different amounts.
    pub amount_mismatches: Vec<Difference>,
    /// On both sides with the same amounts and different statuses.
    pub status_mismatches: Vec<Difference>,
}

impl Report {
    /// Whether the two sides agree entirely.
    pub fn agrees(&self) -> bool {
        self.missing_in_kasa.is_empty()
            && self.missing_in_partner.is_empty()
            && self.amount_mismatches.is_empty()
            && self.status_mismatches.is_empty()
    }

    /// One line: `matched N, missing in Kasa N, missing in partner N, amounts differ N,
    /// statuses differ N`.
    pub fn summary(&self) -> String {
        format!(
            "matched {}, missing in Kasa {}, missing in partner {}, amounts differ {}, statuses differ {}",
            self.matched,
            self.missing_in_kasa.len(),
            self.missing_in_partner.len(),
            self.amount_mismatches.len(),
            self.status_mismatches.len()
        )
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The header lacks a column.
    #[error("the header has no column {0}")]
    MissingColumn(&'static str),
    /// A line is not a row of the header's columns.
    #[error("line {0} does not have the header's columns")]
    BadLine(usize),
    /// The same item twice.
    #[error("line {0} repeats an item of an earlier line")]
    Repeated(usize),
    /// The file is empty.
    #[error("the file is empty: expected a header line")]
    Empty,
}

/// The items of a settlement file.
pub fn read(text: &str) -> Result<BTreeMap<Key, Values>, ReadError> {
    let mut lines = text.lines();
    let header: Vec<&str> =
        lines.next().ok_or(ReadError::Empty)?.trim_start_matches('\u{feff}').split(',').map(str::trim).collect();
    let column = |name: &'static str| header.iter().position(|h| *h == name).ok_or(ReadError::MissingColumn(name));
    let columns = [
        column("item_type")?,
        column("payment_request_id")?,
        column("refund_request_id")?,
        column("amount")?,
        column("settlement_amount")?,
        column("status")?,
    ];
    let mut items = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split(line);
        if fields.len() != header.len() {
            return Err(ReadError::BadLine(number));
        }
        let [t, p, r, a, s, st] = columns.map(|c| fields[c].clone());
        let key = Key { item_type: t, payment_request_id: p, refund_request_id: r };
        if items.insert(key, Values { amount: a, settlement_amount: s, status: st }).is_some() {
            return Err(ReadError::Repeated(number));
        }
    }
    Ok(items)
}

/// A CSV line's fields, with double-quoted fields unquoted.
fn split(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Compares Kasa's items with the partner's.
pub fn compare(kasa: &BTreeMap<Key, Values>, partner: &BTreeMap<Key, Values>) -> Report {
    let mut report = Report::default();
    for (key, ours) in kasa {
        match partner.get(key) {
            None => report.missing_in_partner.push(key.clone()),
            Some(theirs) => {
                let difference = || Difference { key: key.clone(), kasa: ours.clone(), partner: theirs.clone() };
                if ours.amount != theirs.amount || ours.settlement_amount != theirs.settlement_amount {
                    report.amount_mismatches.push(difference());
                } else if !ours.status.eq_ignore_ascii_case(&theirs.status) {
                    report.status_mismatches.push(difference());
                } else {
                    report.matched += 1;
                }
            }
        }
    }
    report.missing_in_kasa = partner.keys().filter(|k| !kasa.contains_key(k)).cloned().collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "window_id,item_type,item_id,payment_request_id,refund_request_id,created_at,merchant_id,store_id,\
merchant_payment_id,amount,currency,settlement_amount,settlement_currency,rate,fee,status";

    fn file(rows: &[&str]) -> String {
        let mut f = format!("{HEADER}\n");
        for r in rows {
            f += r;
            f.push('\n');
        }
        f
    }

    #[test]
    fn a_missing_an_extra_and_a_changed_item_are_each_reported() {
        let kasa = file(&[
            "sw_1,payment,ppay_1,req-1,,2026-11-30T01:00:00Z,mch_1,str_1,pay_1,10000,KRW,5303,CNY,188.595,53,succeeded",
            "sw_1,payment,ppay_2,req-2,,2026-11-30T01:00:01Z,mch_1,str_1,pay_2,20000,KRW,10605,CNY,188.595,106,succeeded",
            "sw_1,refund,prfd_1,req-1,rf-1,2026-11-30T02:00:00Z,mch_1,str_1,pay_1,3000,KRW,1590,CNY,188.595,15,succeeded",
            "sw_1,payment,ppay_3,\"req,3\",,2026-11-30T03:00:00Z,mch_1,str_1,pay_3,500,KRW,266,CNY,188.595,3,canceled",
        ]);
        // The partner's file: its own columns in its own order; req-2 missing, an extra req-9,
        // the refund's settlement amount different, req,3 with another status.
        let partner = "payment_request_id,refund_request_id,item_type,amount,settlement_amount,status\n\
                       req-1,,payment,10000,5303,SUCCEEDED\n\
                       req-1,rf-1,refund,3000,1591,succeeded\n\
                       \"req,3\",,payment,500,266,succeeded\n\
                       req-9,,payment,100,53,succeeded\n";
        let report = compare(&read(&kasa).unwrap(), &read(partner).unwrap());
        assert_eq!(report.matched, 1);
        assert_eq!(
            report.missing_in_partner.iter().map(|k| k.payment_request_id.as_str()).collect::<Vec<_>>(),
            ["req-2"]
        );
        assert_eq!(report.missing_in_kasa.iter().map(|k| k.payment_request_id.as_str()).collect::<Vec<_>>(), ["req-9"]);
        assert_eq!(report.amount_mismatches.len(), 1);
        assert_eq!(report.amount_mismatches[0].key.refund_request_id, "rf-1");
        assert_eq!(report.status_mismatches.len(), 1);
        assert_eq!(report.status_mismatches[0].key.payment_request_id, "req,3");
        assert!(!report.agrees());
        assert_eq!(
            report.summary(),
            "matched 1, missing in Kasa 1, missing in partner 1, amounts differ 1, statuses differ 1"
        );
        assert!(compare(&read(&kasa).unwrap(), &read(&kasa).unwrap()).agrees());
    }

    #[test]
    fn a_file_without_the_columns_or_with_a_repeat_is_refused_by_line() {
        assert_eq!(read(""), Err(ReadError::Empty));
        assert_eq!(read("item_type,amount\n"), Err(ReadError::MissingColumn("payment_request_id")));
        let repeat = "item_type,payment_request_id,refund_request_id,amount,settlement_amount,status\n\
                      payment,a,,1,1,succeeded\npayment,a,,1,1,succeeded\n";
        assert_eq!(read(repeat), Err(ReadError::Repeated(3)));
        let short = "item_type,payment_request_id,refund_request_id,amount,settlement_amount,status\npayment,a\n";
        assert_eq!(read(short), Err(ReadError::BadLine(2)));
    }
}
