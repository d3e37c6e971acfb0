//! The FX module at its boundary: quotes against a table of hand-computed cases (the
//! arithmetic of each in its comment), every refusal by its code, rates files, and a property
//! test that rounding never gives away a minor unit.

use kasa_core::fx::{parse_rates_csv, quote, FxError, Rate, Rates, Side, AMOUNT_MINOR_MAX};
use kasa_core::money::{Amount, Currency};
use proptest::prelude::*;

fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

/// One hand-computed quote: a rate loaded as `pair` (mid, spread, valid_from 0), then a quote
/// at time 1.
struct Case {
    pair: &'static str,
    mid: &'static str,
    spread_bps: u32,
    sell: &'static str,
    buy: &'static str,
    side: Side,
    rate: &'static str,
    sell_amount: u64,
    buy_amount: u64,
}

const fn sell(minor: u64) -> Side {
    Side::Sell(Amount::new(minor))
}

const fn buy(minor: u64) -> Side {
    Side::Buy(Amount::new(minor))
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // 100.00 CNY × 190.5 = 19,050 KRW exactly: nothing to round.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 0, sell: "CNY", buy: "KRW", side: sell(10_000), rate: "190.5", sell_amount: 10_000, buy_amount: 19_050 },
    // 99.99 CNY × 190.5 = 19,048.095 KRW, down to 19,048: just below a whole won.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 0, sell: "CNY", buy: "KRW", side: sell(9_999), rate: "190.5", sell_amount: 9_999, buy_amount: 19_048 },
    // Buying 19,050 KRW: 19,050 / 190.5 = 100.00 CNY exactly.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 0, sell: "CNY", buy: "KRW", side: buy(19_050), rate: "190.5", sell_amount: 10_000, buy_amount: 19_050 },
    // Buying 19,051 KRW: 19,051 / 190.5 = 100.00524... CNY, up to 100.01: just above.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 0, sell: "CNY", buy: "KRW", side: buy(19_051), rate: "190.5", sell_amount: 10_001, buy_amount: 19_051 },
    // Spread 100 bps: 190.5 × 0.99 = 188.595; 100.00 CNY × 188.595 = 18,859.5 KRW, down to 18,859.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 100, sell: "CNY", buy: "KRW", side: sell(10_000), rate: "188.595", sell_amount: 10_000, buy_amount: 18_859 },
    // Buying those 18,859 KRW: 18,859 / 188.595 = 99.99734... CNY, up to 100.00.
    Case { pair: "CNY/KRW", mid: "190.50", spread_bps: 100, sell: "CNY", buy: "KRW", side: buy(18_859), rate: "188.595", sell_amount: 10_000, buy_amount: 18_859 },
    // Inverse, loaded CNY/KRW 200 with 50 bps: KRW→CNY is 1/200 × 0.995 = 0.004975;
    // 10,000 KRW × 0.004975 = 49.75 CNY exactly.
    Case { pair: "CNY/KRW", mid: "200", spread_bps: 50, sell: "KRW", buy: "CNY", side: sell(10_000), rate: "0.004975", sell_amount: 10_000, buy_amount: 4_975 },
    // Buying 49.76 CNY: 49.76 / 0.004975 = 10,002.0100... KRW, up to 10,003.
    Case { pair: "CNY/KRW", mid: "200", spread_bps: 50, sell: "KRW", buy: "CNY", side: buy(4_976), rate: "0.004975", sell_amount: 10_003, buy_amount: 4_976 },
    // Spread 1,000 bps: 9.12 × 0.9 = 8.208; 1,000 JPY × 8.208 = 8,208 KRW exactly.
    Case { pair: "JPY/KRW", mid: "9.12", spread_bps: 1_000, sell: "JPY", buy: "KRW", side: sell(1_000), rate: "8.208", sell_amount: 1_000, buy_amount: 8_208 },
    // 1,001 JPY × 8.208 = 8,216.208 KRW, down to 8,216.
    Case { pair: "JPY/KRW", mid: "9.12", spread_bps: 1_000, sell: "JPY", buy: "KRW", side: sell(1_001), rate: "8.208", sell_amount: 1_001, buy_amount: 8_216 },
    // Buying 8,209 KRW: 8,209 / 8.208 = 1,000.12... JPY, up to 1,001.
    Case { pair: "JPY/KRW", mid: "9.12", spread_bps: 1_000, sell: "JPY", buy: "KRW", side: buy(8_209), rate: "8.208", sell_amount: 1_001, buy_amount: 8_209 },
    // Inverse with no end: KRW→JPY is 0.9 / 9.12 = 15/152 = 0.0986842105...; 912 KRW × 15/152 =
    // 90 JPY exactly, because the amounts come from the exact fraction (a rate cut to its
    // digits would give 89.99...; the rate shown is cut to 28 digits).
    Case { pair: "JPY/KRW", mid: "9.12", spread_bps: 1_000, sell: "KRW", buy: "JPY", side: sell(912), rate: "0.0986842105263157894736842105", sell_amount: 912, buy_amount: 90 },
    // Buying 90 JPY: 90 × 152/15 = 912 KRW exactly.
    Case { pair: "JPY/KRW", mid: "9.12", spread_bps: 1_000, sell: "KRW", buy: "JPY", side: buy(90), rate: "0.0986842105263157894736842105", sell_amount: 912, buy_amount: 90 },
    // USD/JPY 150.25 with 25 bps: 150.25 × 0.9975 = 149.874375; 100.00 USD → 14,987.4375 JPY, down to 14,987.
    Case { pair: "USD/JPY", mid: "150.25", spread_bps: 25, sell: "USD", buy: "JPY", side: sell(10_000), rate: "149.874375", sell_amount: 10_000, buy_amount: 14_987 },
    // Buying 14,987 JPY: 14,987 / 149.874375 = 99.99708... USD, up to 100.00.
    Case { pair: "USD/JPY", mid: "150.25", spread_bps: 25, sell: "USD", buy: "JPY", side: buy(14_987), rate: "149.874375", sell_amount: 10_000, buy_amount: 14_987 },
    // BHD has 3 decimals: 10.00 USD × 0.376 = 3.760 BHD = 3,760 fils exactly.
    Case { pair: "USD/BHD", mid: "0.376", spread_bps: 0, sell: "USD", buy: "BHD", side: sell(1_000), rate: "0.376", sell_amount: 1_000, buy_amount: 3_760 },
    // 0.01 USD × 0.376 = 0.00376 BHD = 3.76 fils, down to 3.
    Case { pair: "USD/BHD", mid: "0.376", spread_bps: 0, sell: "USD", buy: "BHD", side: sell(1), rate: "0.376", sell_amount: 1, buy_amount: 3 },
    // Buying 1 fil: 0.001 / 0.376 = 0.00265... USD, up to 0.01.
    Case { pair: "USD/BHD", mid: "0.376", spread_bps: 0, sell: "USD", buy: "BHD", side: buy(1), rate: "0.376", sell_amount: 1, buy_amount: 1 },
    // BHD/CNY 19.1234 with 30 bps: 19.1234 × 0.997 = 19.0660298; 1.000 BHD → 19.0660298 CNY, down to 19.06.
    Case { pair: "BHD/CNY", mid: "19.1234", spread_bps: 30, sell: "BHD", buy: "CNY", side: sell(1_000), rate: "19.0660298", sell_amount: 1_000, buy_amount: 1_906 },
    // Buying 19.06 CNY: 19.06 / 19.0660298 = 0.99968... BHD = 999.68 fils, up to 1,000.
    Case { pair: "BHD/CNY", mid: "19.1234", spread_bps: 30, sell: "BHD", buy: "CNY", side: buy(1_906), rate: "19.0660298", sell_amount: 1_000, buy_amount: 1_906 },
    // USD/KRW 1,385.5 with 150 bps: 1,385.5 × 0.985 = 1,364.7175; 0.01 USD → 13.647175 KRW, down to 13.
    Case { pair: "USD/KRW", mid: "1385.5", spread_bps: 150, sell: "USD", buy: "KRW", side: sell(1), rate: "1364.7175", sell_amount: 1, buy_amount: 13 },
];

#[test]
fn quotes_match_the_hand_computed_table() {
    for (i, case) in CASES.iter().enumerate() {
        let mut rates = Rates::default();
        rates.insert(Rate::parse(case.pair, case.mid, case.spread_bps, 0).unwrap()).unwrap();
        let quoted = quote(&rates, currency(case.sell), currency(case.buy), case.side, 1)
            .unwrap_or_else(|e| panic!("case {i} ({} {:?}): {e}", case.pair, case.side));
        assert_eq!(
            (quoted.customer_rate.to_string(), quoted.sell_amount.minor(), quoted.buy_amount.minor()),
            (case.rate.to_string(), case.sell_amount, case.buy_amount),
            "case {i}: {} {}→{} {:?}",
            case.pair,
            case.sell,
            case.buy,
            case.side
        );
    }
}

#[test]
fn a_new_rate_is_in_force_from_its_valid_from() {
    let mut rates = Rates::default();
    rates.insert(Rate::parse("CNY/KRW", "190", 0, 100).unwrap()).unwrap();
    rates.insert(Rate::parse("CNY/KRW", "195", 0, 200).unwrap()).unwrap();
    let at = |now| quote(&rates, Currency::CNY, Currency::KRW, sell(100), now).map(|q| q.buy_amount.minor());
    // 1.00 CNY: nothing before 100, 190 KRW from 100, 195 KRW from 200.
    assert_eq!(at(99).unwrap_err().code(), "no_rate");
    assert_eq!(at(100), Ok(190));
    assert_eq!(at(199), Ok(190));
    assert_eq!(at(200), Ok(195));
    // The other way round follows the same times: 195 KRW buys 1.00 CNY from 200 on.
    assert_eq!(quote(&rates, Currency::KRW, Currency::CNY, sell(195), 200).unwrap().buy_amount, Amount::new(100));
    assert_eq!(quote(&rates, Currency::KRW, Currency::CNY, sell(195), 150).unwrap().buy_amount, Amount::new(102));
}

#[test]
fn every_refusal_has_its_code() {
    let mut rates = Rates::default();
    rates.insert(Rate::parse("CNY/KRW", "190", 0, 0).unwrap()).unwrap();
    let refusal = |sell: &str, buy: &str, side| quote(&rates, currency(sell), currency(buy), side, 1).unwrap_err();
    assert_eq!(refusal("KRW", "KRW", sell(1)), FxError::SameCurrency { currency: Currency::KRW });
    assert_eq!(refusal("CNY", "KRW", sell(0)), FxError::ZeroAmount);
    assert_eq!(refusal("CNY", "KRW", buy(0)), FxError::ZeroAmount);
    assert_eq!(refusal("USD", "KRW", sell(1)), FxError::NoRate { sell: Currency::USD, buy: Currency::KRW, now: 1 });
    // 1 KRW is 1/190 CNY = 0.53 fen: less than one fen.
    assert_eq!(refusal("KRW", "CNY", sell(1)), FxError::AmountTooSmall { currency: Currency::CNY });
    assert_eq!(refusal("CNY", "KRW", sell(AMOUNT_MINOR_MAX + 1)), FxError::AmountTooLarge { currency: Currency::CNY });
    assert_eq!(refusal("CNY", "KRW", buy(u64::MAX)), FxError::AmountTooLarge { currency: Currency::KRW });
    // 10^15 fen is 10^13 CNY, 1.9 × 10^15 KRW: over the maximum once converted.
    assert_eq!(refusal("CNY", "KRW", sell(AMOUNT_MINOR_MAX)), FxError::AmountTooLarge { currency: Currency::KRW });
    assert_eq!(refusal("KRW", "CNY", buy(AMOUNT_MINOR_MAX)), FxError::AmountTooLarge { currency: Currency::KRW });
    let codes = [
        (Rate::parse("CNYKRW", "1", 0, 0), "invalid_pair"),
        (Rate::parse("CNY/ABC", "1", 0, 0), "unknown_currency"),
        (Rate::parse("CNY/CNY", "1", 0, 0), "same_currency"),
        (Rate::parse("CNY/KRW", "1e2", 0, 0), "invalid_rate"),
        (Rate::parse("CNY/KRW", "0", 0, 0), "invalid_rate"),
        (Rate::parse("CNY/KRW", "1", 1_001, 0), "invalid_spread"),
    ];
    for (result, code) in codes {
        assert_eq!(result.unwrap_err().code(), code);
    }
}

#[test]
fn a_good_rates_file_loads_in_order() {
    let text = "pair,mid,spread_bps,valid_from\r\n\
                CNY/KRW,190.50,50,2026-12-01T00:00:00Z\r\n\
                \r\n\
                USD/BHD,0.376,0,2026-12-01T00:00:00Z\r\n\
                CNY/KRW,191,50,2026-12-02T00:00:00Z\n";
    let rates = parse_rates_csv(text).unwrap();
    let summary: Vec<_> = rates
        .iter()
        .map(|r| (r.base().code(), r.quote().code(), r.mid().to_string(), r.spread_bps(), r.valid_from()))
        .collect();
    let day = 86_400 * 1_000_000_000u64;
    let december_1 = 1_796_083_200 * 1_000_000_000u64;
    assert_eq!(
        summary,
        [
            ("CNY", "KRW", "190.5".to_string(), 50, december_1),
            ("USD", "BHD", "0.376".to_string(), 0, december_1),
            ("CNY", "KRW", "191".to_string(), 50, december_1 + day),
        ]
    );
    assert_eq!(parse_rates_csv("pair,mid,spread_bps,valid_from\n"), Ok(vec![]));
}

#[test]
fn each_bad_line_of_a_rates_file_is_named_by_its_number() {
    let header = "pair,mid,spread_bps,valid_from\n";
    let good = "CNY/KRW,190.5,50,2026-12-01T00:00:00Z\n";
    let cases = [
        ("", 1, "invalid_header"),
        ("pair,mid,spread,valid_from\n", 1, "invalid_header"),
        ("CNY/KRW,190.5,50\n", 3, "invalid_line"),
        ("CNY/KRW,190.5,50,2026-12-01T00:00:00Z,x\n", 3, "invalid_line"),
        (&*format!("CNY/KRW,190.5,50,{}\n", "9".repeat(200)), 3, "invalid_line"),
        ("CNY-KRW,190.5,50,2026-12-01T00:00:00Z\n", 3, "invalid_pair"),
        ("CNY/XXX,190.5,50,2026-12-01T00:00:00Z\n", 3, "unknown_currency"),
        ("KRW/KRW,190.5,50,2026-12-01T00:00:00Z\n", 3, "same_currency"),
        ("CNY/KRW,-190.5,50,2026-12-01T00:00:00Z\n", 3, "invalid_rate"),
        ("CNY/KRW,190.5,-5,2026-12-01T00:00:00Z\n", 3, "invalid_spread"),
        ("CNY/KRW,190.5,1001,2026-12-01T00:00:00Z\n", 3, "invalid_spread"),
        ("CNY/KRW,190.5,99999999999,2026-12-01T00:00:00Z\n", 3, "invalid_spread"),
        ("CNY/KRW,190.5,50,2026-12-01\n", 3, "invalid_time"),
        ("CNY/KRW,190.5,50,1796083200000000000\n", 3, "invalid_time"),
        ("CNY/KRW,191,60,2026-12-01T00:00:00Z\n", 3, "duplicate_rate"),
        // The other direction at the same moment: the two could cross.
        ("KRW/CNY,0.0052,60,2026-12-01T00:00:00Z\n", 3, "duplicate_rate"),
    ];
    for (bad, line, code) in cases {
        let text = if line == 1 { bad.to_string() } else { format!("{header}{good}{bad}{good}") };
        let error = parse_rates_csv(&text).unwrap_err();
        assert_eq!((error.line(), error.code()), (Some(line), code), "{bad:?}: {error}");
        assert!(error.to_string().starts_with(&format!("line {line}: ")), "{error}");
    }
    assert_eq!(
        parse_rates_csv(&format!("{header}{good}{good}")).unwrap_err(),
        FxError::Line { line: 3, error: Box::new(FxError::DuplicateRate { first: 2 }) }
    );
    // 10,000 rows, one a second from midnight, load; one more is refused.
    let row = |i: usize| format!("CNY/KRW,190,0,2026-12-01T{:02}:{:02}:{:02}Z\n", i / 3_600, i / 60 % 60, i % 60);
    let full: String = (0..10_000).map(row).collect();
    assert_eq!(parse_rates_csv(&format!("{header}{full}")).map(|rates| rates.len()), Ok(10_000));
    let error = parse_rates_csv(&format!("{header}{full}{}", row(10_000))).unwrap_err();
    assert_eq!((error.line(), error.code()), (Some(10_002), "too_many_rows"));
    let blank_rows = "\n".repeat(10_000);
    assert_eq!(parse_rates_csv(&format!("{header}{blank_rows}{good}")).unwrap_err().line(), Some(10_002));
    assert_eq!(parse_rates_csv(&format!("{header}{blank_rows}{good}")).unwrap_err().code(), "too_many_rows");
}

/// A mid within the limits: up to 12 integer and 10 fractional digits, above zero.
fn mid() -> impl Strategy<Value = String> {
    (0u64..1_000_000_000_000, 0u64..10_000_000_000, 0usize..=10)
        .prop_map(|(integer, fraction, digits)| {
            let fraction = fraction % 10u64.pow(digits as u32);
            let integer = if integer == 0 && fraction == 0 { 1 } else { integer };
            if digits == 0 {
                integer.to_string()
            } else {
                format!("{integer}.{fraction:0digits$}")
            }
        })
        .boxed()
}

/// Amounts of every size, small ones often.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..1_000, 1u64..=AMOUNT_MINOR_MAX, any::<u64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Selling X buys Y; buying Y costs at most X and at least what selling buys Y for; no
    /// amount panics or wraps, whatever the rate.
    #[test]
    fn rounding_never_gives_away_a_minor_unit(
        base in 0usize..1_000, quote_currency in 0usize..1_000, mid in mid(), spread_bps in 0u32..=1_000,
        inverse in any::<bool>(), x in amount(),
    ) {
        let all: Vec<Currency> = Currency::all().collect();
        let (base, quote_currency) = (all[base % all.len()], all[quote_currency % all.len()]);
        prop_assume!(base != quote_currency);
        let pair = format!("{base}/{quote_currency}");
        let mut rates = Rates::default();
        rates.insert(Rate::parse(&pair, &mid, spread_bps, 0).unwrap()).unwrap();
        let (sell_currency, buy_currency) = if inverse { (quote_currency, base) } else { (base, quote_currency) };
        let quote_at = |side| quote(&rates, sell_currency, buy_currency, side, 0);
        match quote_at(sell(x)) {
            Ok(sold) => {
                prop_assert_eq!(sold.sell_amount.minor(), x);
                let y = sold.buy_amount.minor();
                prop_assert!((1..=AMOUNT_MINOR_MAX).contains(&y));
                let bought = quote_at(buy(y)).unwrap();
                prop_assert_eq!(bought.buy_amount.minor(), y);
                let x_needed = bought.sell_amount.minor();
                prop_assert!(x_needed <= x, "buying {} costs {} > {}", y, x_needed, x);
                // The customer who pays x_needed gets at least y, and one minor unit less would not do.
                prop_assert!(quote_at(sell(x_needed)).unwrap().buy_amount.minor() >= y);
                if x_needed > 1 {
                    match quote_at(sell(x_needed - 1)) {
                        Ok(less) => prop_assert!(less.buy_amount.minor() < y),
                        Err(e) => prop_assert_eq!(e.code(), "amount_too_small"),
                    }
                }
            }
            Err(error) => {
                let expected = if x > AMOUNT_MINOR_MAX {
                    FxError::AmountTooLarge { currency: sell_currency }
                } else if error.code() == "amount_too_small" {
                    FxError::AmountTooSmall { currency: buy_currency }
                } else {
                    FxError::AmountTooLarge { currency: buy_currency }
                };
                prop_assert_eq!(error, expected);
            }
        }
        // The buy side never panics either.
        if let Err(error) = quote_at(buy(x)) {
            prop_assert!(["amount_too_small", "amount_too_large"].contains(&error.code()), "{}", error);
        }
    }
}
