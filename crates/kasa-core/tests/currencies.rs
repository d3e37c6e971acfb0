//! The currency table agrees with ISO 4217 as published (`tests/data/iso4217.csv`, a copy of
//! the ISO maintenance agency's list from the project's shared test data): every active
//! currency with minor units is there with its numeric code and minor units, and the units of
//! account without minor units (gold, SDR, XTS, XXX) are refused.

use kasa_core::money::Currency;

#[test]
fn every_iso_4217_currency_is_in_the_table() {
    let csv = include_str!("data/iso4217.csv");
    let mut with_minor_units = 0;
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (alpha, numeric) = (fields[0], fields[1].parse::<u16>().expect("numeric code"));
        match fields[2].parse::<u8>() {
            Ok(minor) => {
                let currency = Currency::from_code(alpha).unwrap_or_else(|| panic!("{alpha} is missing"));
                assert_eq!((currency.numeric(), currency.minor_units(), currency.code()), (numeric, minor, alpha));
                assert_eq!(Currency::from_numeric(numeric), Some(currency));
                with_minor_units += 1;
            }
            Err(_) => {
                assert_eq!(Currency::from_code(alpha), None, "{alpha} has no minor unit");
                assert_eq!(Currency::from_numeric(numeric), None, "{alpha} has no minor unit");
            }
        }
    }
    assert_eq!(Currency::all().count(), with_minor_units, "nothing in the table that ISO does not list");
}
