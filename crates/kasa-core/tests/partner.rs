//! The partner domain through `State::apply`: partners and their keys, rates and quotes in
//! the journal, a partner's payments at Kasa stores with the conversion through the FX
//! positions, cancels and refunds at the payment's rate, settlement windows closed by an
//! operator or at the cutoff and settled by the bank's answer, and a snapshot round trip.
//! Every batch is followed by the state's invariants, which include the FX positions and the
//! partners' accounts against the books.

#[path = "support/mod.rs"]
mod support;

use kasa_core::chart;
use kasa_core::fx::{Rate, Side};
use kasa_core::merchant::{
    parse_brn, BusinessName, DisplayName, KeyCommand, KeyOutcome, KeyPrefix, Mcc, PaymentError, RefundReason, Scopes,
    SettlementAccount,
};
use kasa_core::money::{Amount, Currency};
use kasa_core::partner::{
    CallPolicy, Command, CustomerId, FxRefusal, Outcome, Paid, Partner, PartnerError, PartnerName,
    PartnerPaymentStatus, PartnerStatus, PayError, PayRequest, Quote, Refunded, RequestId, Schemes, Window,
    WindowError, WindowStatus,
};
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{BankCode, Last4, Name, SealedAccountNumber};
use support::Harness;

const SECOND: u64 = 1_000_000_000;

fn partner_command(h: &mut Harness, command: Command) -> Outcome {
    match h.apply(vec![kasa_core::Command::Partner(command)]).remove(0) {
        kasa_core::Outcome::Partner(outcome) => outcome,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn settlement() -> Box<SettlementAccount> {
    Box::new(SettlementAccount {
        bank_code: BankCode::new("088").unwrap(),
        account_number: SealedAccountNumber {
            ciphertext: BoundedVec::new(b"sealed".to_vec()).unwrap(),
            lookup: [7; 32],
            last4: Last4::new("4321").unwrap(),
        },
        holder_name: Name::new("Partner Ltd").unwrap(),
    })
}

fn register(h: &mut Harness, name: &str, settles_in: Currency, fee_bps: u16) -> Result<Partner, PartnerError> {
    let command = Command::CreatePartner {
        name: PartnerName::new(name).unwrap(),
        home_currency: settles_in,
        settlement_currency: settles_in,
        fee_bps,
        settlement: settlement(),
        endpoint: None,
        accepts: Schemes::named(&["unionpay"]).unwrap(),
        policy: CallPolicy::default(),
    };
    match partner_command(h, command) {
        Outcome::PartnerCreated(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// A merchant (fee 2.5%) with one store; returns the store's id.
fn store(h: &mut Harness) -> u64 {
    use kasa_core::merchant::{Command as M, Outcome as O};
    let create = M::CreateMerchant {
        business_name: BusinessName::new("주식회사 카사상점").unwrap(),
        display_name: DisplayName::new("카사상점").unwrap(),
        brn: parse_brn("120-81-47521").unwrap(),
        mcc: Mcc::parse("5812").unwrap(),
        fee_bps: 250,
        settlement: settlement(),
    };
    let merchant = match h.apply(vec![kasa_core::Command::Merchant(create)]).remove(0) {
        kasa_core::Outcome::Merchant(O::MerchantCreated(Ok(m))) => m,
        other => panic!("unexpected outcome {other:?}"),
    };
    let command = M::CreateStore { merchant_id: merchant.id, name: DisplayName::new("강남점").unwrap() };
    match h.apply(vec![kasa_core::Command::Merchant(command)]).remove(0) {
        kasa_core::Outcome::Merchant(O::StoreCreated(Ok(s))) => s.id,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn load(h: &mut Harness, pair: &str, mid: &str, spread_bps: u32) {
    let rate = Rate::parse(pair, mid, spread_bps, h.now).unwrap();
    let outcome = partner_command(h, Command::LoadRates { rates: BoundedVec::new(vec![rate]).unwrap() });
    assert!(matches!(outcome, Outcome::RatesLoaded(Ok(_))), "{outcome:?}");
}

fn quote(h: &mut Harness, partner_id: u64, buy_won: u64, seconds: u32) -> Result<Quote, FxRefusal> {
    let command = Command::CreateQuote {
        partner_id,
        sell: Currency::CNY,
        buy: Currency::KRW,
        side: Side::Buy(Amount::new(buy_won)),
        expires_in_seconds: seconds,
    };
    match partner_command(h, command) {
        Outcome::QuoteCreated(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn pay(
    h: &mut Harness,
    partner_id: u64,
    request: &str,
    store_id: u64,
    won: u64,
    quote_id: Option<u64>,
) -> Result<Paid, PayError> {
    let request = PayRequest {
        partner_id,
        request_id: RequestId::new(request).unwrap(),
        customer_id: CustomerId::new("2088101122334455").unwrap(),
        store_id,
        merchant_name: Some(DisplayName::new("카사상점").unwrap()),
        amount: Amount::new(won),
        item_name: None,
        quote_id,
    };
    match partner_command(h, Command::Pay(Box::new(request))) {
        Outcome::Paid(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn refund(h: &mut Harness, partner_id: u64, refund_id: &str, request: &str, won: u64) -> Result<Refunded, PayError> {
    let command = Command::Refund {
        partner_id,
        refund_request_id: RequestId::new(refund_id).unwrap(),
        request_id: RequestId::new(request).unwrap(),
        amount: Amount::new(won),
    };
    match partner_command(h, command) {
        Outcome::Refunded(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn cancel(h: &mut Harness, partner_id: u64, request: &str) -> Result<Refunded, PayError> {
    let command = Command::CancelPayment { partner_id, request_id: RequestId::new(request).unwrap() };
    match partner_command(h, command) {
        Outcome::Canceled(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn close(h: &mut Harness, window_id: u64) -> Result<Window, WindowError> {
    match partner_command(h, Command::CloseWindow { window_id }) {
        Outcome::WindowClosed(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn settle(h: &mut Harness, window_id: u64, succeeded: bool) -> Result<Window, WindowError> {
    match partner_command(h, Command::SettleWindow { window_id, succeeded }) {
        Outcome::WindowSettled(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Debits less credits, posted, of an account in the books.
fn debit_balance(h: &Harness, id: u128) -> i128 {
    h.state.books().account(id).map_or(0, |a| a.debits_posted as i128 - a.credits_posted as i128)
}

fn partner_account(partner_id: u64, currency: Currency) -> u128 {
    chart::PARTNER.id(chart::partner_account_number(partner_id, currency))
}

#[test]
fn partners_have_unique_names_bounded_fees_and_keys_that_are_never_reused() {
    let mut h = Harness::default();
    let p = register(&mut h, "alipay_plus", Currency::CNY, 50).unwrap();
    assert_eq!((p.id, p.status, p.settlement_currency), (1, PartnerStatus::Active, Currency::CNY));
    assert_eq!(register(&mut h, "alipay_plus", Currency::USD, 50), Err(PartnerError::NameTaken));
    assert_eq!(register(&mut h, "gcash", Currency::USD, 1_001), Err(PartnerError::InvalidFee));
    assert!(PartnerName::new("Alipay Plus").is_err(), "names are lower-case without spaces");
    let add = |h: &mut Harness, partner_id, key: u8| match partner_command(
        h,
        Command::AddKey { partner_id, public_key: [key; 32] },
    ) {
        Outcome::KeyAdded(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    };
    assert_eq!(add(&mut h, 1, 1).map(|k| k.version), Ok(1));
    assert_eq!(add(&mut h, 1, 2).map(|k| k.version), Ok(2));
    assert_eq!(add(&mut h, 1, 1), Err(PartnerError::KeyExists));
    assert_eq!(add(&mut h, 9, 3), Err(PartnerError::UnknownPartner));
    let revoked = partner_command(&mut h, Command::RevokeKey { partner_id: 1, version: 1 });
    assert!(matches!(revoked, Outcome::KeyRevoked(Ok(ref k)) if k.revoked_at > 0), "{revoked:?}");
    let again = partner_command(&mut h, Command::RevokeKey { partner_id: 1, version: 1 });
    assert_eq!(again, Outcome::KeyRevoked(Err(PartnerError::UnknownKey)));
    let partner = h.state.partners().partner(1).unwrap();
    assert!(partner.live_key(1).is_none() && partner.live_key(2).is_some());
    assert_eq!(add(&mut h, 1, 1), Err(PartnerError::KeyExists), "a revoked key is never registered again");
    h.restart();
    assert_eq!(h.state.partners().partner_named("alipay_plus").map(|p| p.keys.len()), Some(2));
}

#[test]
fn a_visitor_pays_in_won_and_the_partner_owes_its_currency_at_the_quote() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::CNY, 100).unwrap();
    load(&mut h, "CNY/KRW", "190.50", 100);
    // The customer's rate is 190.50 × 0.99 = 188.595 won a yuan. Buying 10,000 won costs
    // 10,000 / 188.595 = 53.0236... yuan, rounded up: 53.03 (5,303 fen).
    let q = quote(&mut h, p.id, 10_000, 600).unwrap();
    assert_eq!((q.sell_amount, q.buy_amount), (Amount::new(5_303), Amount::new(10_000)));
    assert_eq!(q.rate.customer_rate().to_string(), "188.595");
    // An operator's quote (partner 0) or another partner's is not this partner's.
    assert_eq!(quote(&mut h, 7, 10_000, 600), Err(FxRefusal::UnknownPartner));
    assert_eq!(quote(&mut h, p.id, 10_000, 0), Err(FxRefusal::InvalidExpiry));

    let paid = pay(&mut h, p.id, "req-1", store_id, 10_000, Some(q.id)).unwrap();
    assert!(!paid.replayed);
    let payment = paid.payment;
    assert_eq!(
        (payment.settlement_amount, payment.fee),
        (Amount::new(5_303), Amount::new(53)),
        "the fee is 1% half up"
    );
    assert_eq!(payment.status, PartnerPaymentStatus::Succeeded);
    // The merchant's side: a payment of the partner channel, captured with the merchant's fee.
    let merchant_payment = h.state.merchants().payment(payment.merchant_payment_id).unwrap().clone();
    assert_eq!(
        (merchant_payment.channel.name(), merchant_payment.captured.minor(), merchant_payment.fee.minor()),
        ("partner", 10_000, 250)
    );
    // The books: the partner owes 53.03 - 0.53 yuan; its won account nets to zero; the FX
    // positions hold the two sides of the conversion.
    assert_eq!(debit_balance(&h, partner_account(p.id, Currency::CNY)), 5_250);
    assert_eq!(debit_balance(&h, partner_account(p.id, Currency::KRW)), 0);
    assert_eq!(debit_balance(&h, chart::FX_POSITION.system_id(Currency::CNY)), -5_303);
    assert_eq!(debit_balance(&h, chart::FX_POSITION.system_id(Currency::KRW)), 10_000);
    assert_eq!(debit_balance(&h, chart::MERCHANT_BALANCE.id(payment.merchant_id)), -9_750);

    // The same request again is the first answer, nothing applied; another payment under the
    // same id is refused.
    let again = pay(&mut h, p.id, "req-1", store_id, 10_000, Some(q.id)).unwrap();
    assert!(again.replayed && again.payment == payment);
    assert_eq!(pay(&mut h, p.id, "req-1", store_id, 9_000, None), Err(PayError::RequestIdReused));
    assert_eq!(h.state.merchants().payments_count(), 1);
    let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
    assert!(names.ends_with(&["payment.approved", "payment.succeeded", "partner_payment.succeeded"]), "{names:?}");
}

#[test]
fn quotes_hold_until_they_expire_and_only_for_their_partner_and_pair() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::CNY, 0).unwrap();
    let other = register(&mut h, "wechat", Currency::CNY, 0).unwrap();
    load(&mut h, "CNY/KRW", "190.50", 100);
    let q = quote(&mut h, p.id, 10_000, 60).unwrap();
    assert_eq!(pay(&mut h, other.id, "o-1", store_id, 10_000, Some(q.id)), Err(PayError::UnknownQuote));
    // The rate moves; a payment of another amount at the quote still gets the quote's rate.
    load(&mut h, "CNY/KRW", "200", 100);
    let paid = pay(&mut h, p.id, "a-1", store_id, 20_000, Some(q.id)).unwrap().payment;
    assert_eq!(paid.settlement_amount, Amount::new(10_605), "20,000 / 188.595 = 106.047 yuan, rounded up");
    let without = pay(&mut h, p.id, "a-2", store_id, 19_800, None).unwrap().payment;
    assert_eq!(without.settlement_amount, Amount::new(10_000), "the rate in force: 19,800 / 198 = 100 yuan");
    assert_eq!(without.quote_id, 0);
    h.advance(61 * SECOND);
    assert_eq!(pay(&mut h, p.id, "a-3", store_id, 10_000, Some(q.id)), Err(PayError::QuoteExpired));
    // An hour after, the quote is gone.
    h.advance(3_600 * SECOND);
    assert_eq!(pay(&mut h, p.id, "a-4", store_id, 10_000, Some(q.id)), Err(PayError::UnknownQuote));
    assert!(h.state.partners().quote(q.id).is_none());
    // A partner that settles in won takes no quote and converts nothing.
    let won = register(&mut h, "kakao_jp", Currency::KRW, 0).unwrap();
    assert_eq!(pay(&mut h, won.id, "w-1", store_id, 5_000, Some(q.id)), Err(PayError::QuoteMismatch));
    let w = pay(&mut h, won.id, "w-2", store_id, 5_000, None).unwrap().payment;
    assert_eq!((w.settlement_amount, w.rate), (Amount::new(5_000), None));
    assert_eq!(debit_balance(&h, partner_account(won.id, Currency::KRW)), 5_000);
    // No rate for a pair: refused, nothing made.
    let usd = register(&mut h, "paypay", Currency::USD, 0).unwrap();
    assert_eq!(pay(&mut h, usd.id, "u-1", store_id, 5_000, None), Err(PayError::Fx(FxRefusal::NoRate)));
    assert_eq!(h.state.merchants().payments_count(), 3);
}

#[test]
fn refunds_go_back_at_the_payments_rate_and_sum_to_what_was_paid() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::CNY, 100).unwrap();
    load(&mut h, "CNY/KRW", "190.50", 100);
    pay(&mut h, p.id, "req-1", store_id, 10_000, None).unwrap();
    load(&mut h, "CNY/KRW", "150", 0);
    // 3,000 of 10,000 won: 5,303 × 0.3 = 1,590.9 fen, rounded down; of the fee Kasa paid, 53 ×
    // 0.3 = 15.9 is taken back, rounded up.
    let first = refund(&mut h, p.id, "rf-1", "req-1", 3_000).unwrap();
    assert_eq!((first.refund.settlement_amount, first.refund.fee_returned), (Amount::new(1_590), Amount::new(16)));
    assert_eq!(refund(&mut h, p.id, "rf-1", "req-1", 3_000).map(|r| r.replayed), Ok(true));
    assert_eq!(refund(&mut h, p.id, "rf-1", "req-1", 2_000), Err(PayError::RefundIdReused));
    assert_eq!(refund(&mut h, p.id, "rf-2", "req-1", 7_001), Err(PayError::AmountTooLarge { max: Amount::new(7_000) }));
    assert_eq!(refund(&mut h, p.id, "rf-2", "req-1", 0), Err(PayError::InvalidAmount));
    assert_eq!(refund(&mut h, p.id, "rf-2", "nope", 1), Err(PayError::UnknownPayment));
    assert_eq!(cancel(&mut h, p.id, "req-1"), Err(PayError::AlreadyRefunded));
    let rest = refund(&mut h, p.id, "rf-2", "req-1", 7_000).unwrap();
    assert_eq!((rest.refund.settlement_amount, rest.refund.fee_returned), (Amount::new(3_713), Amount::new(37)));
    let payment = rest.payment;
    assert_eq!((payment.settlement_refunded, payment.fee_returned), (payment.settlement_amount, payment.fee));
    // Everything went back: every account of the payment is where it started.
    for id in [
        partner_account(p.id, Currency::CNY),
        chart::FX_POSITION.system_id(Currency::CNY),
        chart::FX_POSITION.system_id(Currency::KRW),
    ] {
        assert_eq!(debit_balance(&h, id), 0);
    }
    assert_eq!(debit_balance(&h, chart::MERCHANT_BALANCE.id(payment.merchant_id)), 0);
    // A year on, no refund.
    pay(&mut h, p.id, "req-2", store_id, 1_000, None).unwrap();
    h.advance(365 * 24 * 3_600 * SECOND);
    assert_eq!(refund(&mut h, p.id, "rf-3", "req-2", 1), Err(PayError::RefundPeriodOver));
    h.restart();
}

#[test]
fn a_cancel_returns_everything_until_the_window_closes() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::CNY, 100).unwrap();
    load(&mut h, "CNY/KRW", "190.50", 100);
    let payment = pay(&mut h, p.id, "req-1", store_id, 10_000, None).unwrap().payment;
    let canceled = cancel(&mut h, p.id, "req-1").unwrap();
    assert!(canceled.refund.cancel && !canceled.replayed);
    assert_eq!(canceled.refund.settlement_amount, payment.settlement_amount);
    assert_eq!(canceled.payment.status, PartnerPaymentStatus::Canceled);
    assert!(cancel(&mut h, p.id, "req-1").unwrap().replayed, "a repeated cancel is its first answer");
    assert_eq!(refund(&mut h, p.id, "rf-1", "req-1", 1), Err(PayError::PaymentCanceled));
    // The merchant got the whole payment back from its balance, fee included.
    assert_eq!(debit_balance(&h, chart::MERCHANT_BALANCE.id(payment.merchant_id)), 0);
    // After the window closed, a cancel is refused: refund instead.
    let second = pay(&mut h, p.id, "req-2", store_id, 10_000, None).unwrap().payment;
    close(&mut h, second.window_id).unwrap();
    assert_eq!(cancel(&mut h, p.id, "req-2"), Err(PayError::CancelWindowClosed));
    assert!(refund(&mut h, p.id, "rf-2", "req-2", 10_000).is_ok());
    h.restart();
}

#[test]
fn a_window_nets_its_items_and_settles_by_the_banks_answer() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::CNY, 100).unwrap();
    load(&mut h, "CNY/KRW", "190.50", 100);
    let a = pay(&mut h, p.id, "req-1", store_id, 10_000, None).unwrap().payment;
    pay(&mut h, p.id, "req-2", store_id, 20_000, None).unwrap();
    refund(&mut h, p.id, "rf-1", "req-1", 10_000).unwrap();
    let w = h.state.partners().window(a.window_id).unwrap().clone();
    // 5,303 + 10,605 paid, 5,303 back, fees 53 + 106 - 53.
    assert_eq!((w.payments, w.refunds, w.paid, w.refunded, w.fees), (2, 1, 15_908, 5_303, 106));
    assert_eq!(w.net(), 10_499);
    let closed = close(&mut h, w.id).unwrap();
    assert_eq!(closed.status, WindowStatus::Closed);
    assert_eq!(close(&mut h, w.id), Err(WindowError::WrongStatus { status: WindowStatus::Closed }));
    // A new item opens a new window.
    let c = pay(&mut h, p.id, "req-3", store_id, 1_000, None).unwrap().payment;
    assert_ne!(c.window_id, w.id);
    h.restart();
    // The settlement is pending until the bank answers; then the partner's account is down by
    // the net.
    let before = debit_balance(&h, partner_account(p.id, Currency::CNY));
    assert_eq!(settle(&mut h, w.id, true).map(|w| w.status), Ok(WindowStatus::Settled));
    assert_eq!(debit_balance(&h, partner_account(p.id, Currency::CNY)), before - 10_499);
    assert_eq!(settle(&mut h, w.id, true), Err(WindowError::WrongStatus { status: WindowStatus::Settled }));
    // A failed settlement leaves the money owed.
    close(&mut h, c.window_id).unwrap();
    assert_eq!(settle(&mut h, c.window_id, false).map(|w| w.status), Ok(WindowStatus::Failed));
    let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
    assert!(names.contains(&"settlement_window.closed") && names.contains(&"settlement_window.failed"), "{names:?}");
}

#[test]
fn open_windows_close_at_midnight_in_seoul() {
    // 2026-11-30T14:00:00Z is 23:00 KST.
    let mut h = Harness::starting_at(1_796_047_200 * SECOND);
    let store_id = store(&mut h);
    let p = register(&mut h, "alipay_plus", Currency::KRW, 0).unwrap();
    let a = pay(&mut h, p.id, "req-1", store_id, 1_000, None).unwrap().payment;
    assert_eq!(h.state.next_expiry(), Some(1_796_050_800 * SECOND), "the sequencer wakes for the cutoff");
    h.advance(3_600 * SECOND);
    h.apply(vec![]);
    let w = h.state.partners().window(a.window_id).unwrap();
    assert_eq!(w.status, WindowStatus::Closed);
    assert!(w.closed_at >= 1_796_050_800 * SECOND, "closed by the first batch at or after the cutoff");
    assert_eq!(cancel(&mut h, p.id, "req-1"), Err(PayError::CancelWindowClosed));
    assert!(h.state.partners().windows().iter().all(|w| w.status != WindowStatus::Open));
}

#[test]
fn a_merchant_refunds_a_partners_payment_through_the_partner() {
    let mut h = Harness::default();
    let store_id = store(&mut h);
    let p = register(&mut h, "kakao_jp", Currency::KRW, 0).unwrap();
    let payment = pay(&mut h, p.id, "req-1", store_id, 1_000, None).unwrap().payment;
    use kasa_core::merchant::{Command as M, Outcome as O};
    let key = M::CreateApiKey {
        merchant_id: payment.merchant_id,
        name: DisplayName::new("till").unwrap(),
        scopes: Scopes::named("refunds:write").unwrap(),
        prefix: KeyPrefix::new("kasa_sk_00000001").unwrap(),
        key_hash: [9; 32],
    };
    h.apply(vec![kasa_core::Command::Merchant(key)]);
    let command = KeyCommand::RefundPayment {
        payment_id: payment.merchant_payment_id,
        amount: Amount::new(1_000),
        reason: RefundReason::new("customer").unwrap(),
    };
    let outcome = h.apply(vec![kasa_core::Command::Merchant(M::AsKey { key_hash: [9; 32], command })]).remove(0);
    match outcome {
        kasa_core::Outcome::Merchant(O::AsKey { outcome: Ok(KeyOutcome::Refunded(r)), .. }) => {
            assert_eq!(r, Err(PaymentError::PartnerPayment))
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

mod overseas {
    use super::support::wallet::{balance, funded, login, outgoing_today};
    use super::*;
    use kasa_core::partner::{CodeText, ForeignText, OverseasError, OverseasStatus, PayOverseasRequest, Step};
    use kasa_core::qr::Scheme;

    /// A partner taking UnionPay codes abroad (and calls at an endpoint), a USD/KRW rate and
    /// a user with 300,000 won logged in with token [41; 32].
    fn world() -> (Harness, u64, u64) {
        let mut h = Harness::default();
        let command = Command::CreatePartner {
            name: PartnerName::new("unionpay_intl").unwrap(),
            home_currency: Currency::CNY,
            settlement_currency: Currency::CNY,
            fee_bps: 0,
            settlement: settlement(),
            endpoint: Some(kasa_core::merchant::WebhookUrl::new("https://partner.example/kasa").unwrap()),
            accepts: Schemes::named(&["unionpay"]).unwrap(),
            policy: CallPolicy::default(),
        };
        let partner = match partner_command(&mut h, command) {
            Outcome::PartnerCreated(Ok(p)) => p.id,
            other => panic!("{other:?}"),
        };
        load(&mut h, "USD/KRW", "1400", 100);
        let user = funded(&mut h, "010-1111-2222", 300_000);
        login(&mut h, user, 41, true).unwrap();
        (h, partner, user)
    }

    /// A quote for `cents` dollars, bought with won.
    fn quote_usd(h: &mut Harness, partner_id: u64, cents: u64, seconds: u32) -> Quote {
        let command = Command::CreateQuote {
            partner_id,
            sell: Currency::KRW,
            buy: Currency::USD,
            side: Side::Buy(Amount::new(cents)),
            expires_in_seconds: seconds,
        };
        match partner_command(h, command) {
            Outcome::QuoteCreated(Ok(q)) => q,
            other => panic!("{other:?}"),
        }
    }

    fn pay_abroad(
        h: &mut Harness,
        partner_id: u64,
        quote: &Quote,
        scheme: Scheme,
        pin_ok: Option<bool>,
    ) -> Result<kasa_core::partner::OverseasPayment, OverseasError> {
        let request = PayOverseasRequest {
            partner_id,
            scheme_bit: scheme.bit(),
            code: CodeText::new("000201010211...").unwrap(),
            merchant_name: ForeignText::new("BEST TRANSPORT").unwrap(),
            merchant_city: Some(ForeignText::new("BEIJING").unwrap()),
            currency: quote.buy(),
            amount: quote.buy_amount,
            quote_id: quote.id,
        };
        match partner_command(h, Command::PayOverseas { token_hash: [41; 32], request: Box::new(request), pin_ok }) {
            Outcome::OverseasPaid(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn step(
        h: &mut Harness,
        payment_id: u64,
        step: Step,
    ) -> Result<kasa_core::partner::OverseasPayment, OverseasError> {
        match partner_command(h, Command::ResolveOverseas { payment_id, step }) {
            Outcome::OverseasResolved(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn refund_abroad(
        h: &mut Harness,
        partner_id: u64,
        id: &str,
        payment_id: u64,
        cents: u64,
    ) -> Result<kasa_core::partner::OverseasRefunded, OverseasError> {
        let request = kasa_core::partner::command::OverseasRefundRequest {
            partner_id,
            refund_request_id: RequestId::new(id).unwrap(),
            payment_id,
            currency: Currency::USD,
            amount: Amount::new(cents),
        };
        match partner_command(h, Command::RefundOverseas(Box::new(request))) {
            Outcome::OverseasRefunded(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_payment_abroad_is_reserved_until_the_partner_answers_and_refunds_come_back_at_its_rate() {
        let (mut h, partner, user) = world();
        // 15.00 dollars at 1400 won less 1 %: 1,500 cents / (1400 × 0.99 / 100) = 1,082.25 won... rounded up.
        let q = quote_usd(&mut h, partner, 1_500, 120);
        assert_eq!(q.sell_amount, Amount::new(21_213), "15 × 1,414.14... = 21,212.12 won, rounded up");
        let p = pay_abroad(&mut h, partner, &q, Scheme::UnionPay, Some(true)).unwrap();
        assert_eq!(
            (p.status, p.krw_amount, p.amount),
            (OverseasStatus::Pending, Amount::new(21_213), Amount::new(1_500))
        );
        assert_eq!(balance(&h, user), (300_000, 21_213), "reserved, not yet paid");
        assert_eq!(outgoing_today(&h, user), Amount::new(21_213));
        step(&mut h, p.id, Step::Requested).unwrap();
        let done = step(&mut h, p.id, Step::Succeeded).unwrap();
        assert_eq!(done.status, OverseasStatus::Succeeded);
        assert_eq!(balance(&h, user), (300_000 - 21_213, 0));
        assert_eq!(
            debit_balance(&h, partner_account(partner, Currency::USD)),
            -1_500,
            "Kasa owes the partner 15 dollars"
        );
        let w = h.state.partners().window(done.window_id).unwrap().clone();
        assert_eq!((w.currency, w.outbound, w.net()), (Currency::USD, 1_500, -1_500));
        assert_eq!(
            step(&mut h, p.id, Step::Refused).unwrap_err(),
            OverseasError::WrongStatus { status: OverseasStatus::Succeeded }
        );
        // The rate moves; refunds come back at the payment's: 5 of 15 dollars is a third of
        // 21,213 won, rounded down, and the rest makes up the whole.
        load(&mut h, "USD/KRW", "1000", 0);
        let first = refund_abroad(&mut h, partner, "rf-1", p.id, 500).unwrap();
        assert_eq!(first.refund.krw_amount, Amount::new(7_071));
        assert!(refund_abroad(&mut h, partner, "rf-1", p.id, 500).unwrap().replayed);
        assert_eq!(refund_abroad(&mut h, partner, "rf-1", p.id, 400).unwrap_err(), OverseasError::RefundIdReused);
        assert_eq!(
            refund_abroad(&mut h, partner, "rf-2", p.id, 1_001).unwrap_err(),
            OverseasError::AmountTooLarge { max: Amount::new(1_000) }
        );
        let rest = refund_abroad(&mut h, partner, "rf-2", p.id, 1_000).unwrap();
        assert_eq!(rest.refund.krw_amount, Amount::new(14_142));
        assert_eq!(balance(&h, user), (300_000, 0), "every won came back");
        assert_eq!(debit_balance(&h, partner_account(partner, Currency::USD)), 0);
        h.restart();
    }

    #[test]
    fn a_refund_from_abroad_never_puts_a_wallet_over_the_legal_maximum() {
        use super::support::wallet::{adjust, user_changed};
        let (mut h, partner, user) = world();
        let tier = kasa_core::limits::Tier::Verified;
        user_changed(&mut h, kasa_core::wallet::Command::SetTier { user_id: user, tier }).unwrap();
        let q = quote_usd(&mut h, partner, 10_000, 120);
        let p = pay_abroad(&mut h, partner, &q, Scheme::UnionPay, Some(true)).unwrap();
        step(&mut h, p.id, Step::Succeeded).unwrap();
        // The wallet is filled to the legal maximum of any wallet, 2,000,000 won.
        let (balance_now, _) = balance(&h, user);
        adjust(&mut h, user, 2_000_000 - balance_now as u64, kasa_core::wallet::Direction::Credit, "filled").unwrap();
        assert_eq!(refund_abroad(&mut h, partner, "rf-1", p.id, 100).unwrap_err(), OverseasError::WalletFull);
        assert_eq!(balance(&h, user).0, 2_000_000, "nothing moved");
        adjust(&mut h, user, 10_000, kasa_core::wallet::Direction::Debit, "spent").unwrap();
        assert!(refund_abroad(&mut h, partner, "rf-1", p.id, 100).is_ok(), "room again");
        h.restart();
    }

    #[test]
    fn an_unanswered_payment_is_failed_only_by_a_confirmed_cancel_and_gives_the_day_back() {
        let (mut h, partner, user) = world();
        let q = quote_usd(&mut h, partner, 1_000, 120);
        let p = pay_abroad(&mut h, partner, &q, Scheme::UnionPay, Some(true)).unwrap();
        for s in [
            Step::Requested,
            Step::NoAnswer,
            Step::InquiredUnknown,
            Step::InquiredUnknown,
            Step::CancelRequested,
            Step::CancelUnanswered,
            Step::CancelRequested,
        ] {
            assert_eq!(step(&mut h, p.id, s).unwrap().status, OverseasStatus::Pending, "{s:?} ends nothing");
        }
        let failed = step(&mut h, p.id, Step::Canceled).unwrap();
        assert_eq!(failed.status, OverseasStatus::Failed);
        let names: Vec<&str> = failed.steps.iter().map(|(_, s)| s.name()).collect();
        assert_eq!(
            names,
            [
                "created",
                "pay_requested",
                "no_answer",
                "inquiry_unknown",
                "inquiry_unknown",
                "cancel_requested",
                "cancel_unanswered",
                "cancel_requested",
                "canceled"
            ]
        );
        assert_eq!(balance(&h, user), (300_000, 0));
        assert_eq!(outgoing_today(&h, user), Amount::ZERO, "the day's limit gets the amount back");
        assert_eq!(
            refund_abroad(&mut h, partner, "rf-1", p.id, 1).unwrap_err(),
            OverseasError::WrongStatus { status: OverseasStatus::Failed }
        );
        h.restart();
    }

    #[test]
    fn a_payment_abroad_is_refused_before_anything_moves() {
        let (mut h, partner, user) = world();
        let q = quote_usd(&mut h, partner, 1_000, 60);
        assert_eq!(
            pay_abroad(&mut h, partner, &q, Scheme::WeChatPay, Some(true)).unwrap_err(),
            OverseasError::PartnerUnavailable
        );
        assert_eq!(
            pay_abroad(&mut h, 9, &q, Scheme::UnionPay, Some(true)).unwrap_err(),
            OverseasError::PartnerUnavailable
        );
        assert!(
            matches!(pay_abroad(&mut h, partner, &q, Scheme::UnionPay, Some(false)), Err(OverseasError::Funding(_))),
            "a wrong PIN"
        );
        let big = quote_usd(&mut h, partner, 100_000, 60);
        assert!(matches!(
            pay_abroad(&mut h, partner, &big, Scheme::UnionPay, Some(true)),
            Err(OverseasError::Funding(_))
        ));
        h.advance(61 * SECOND);
        assert_eq!(
            pay_abroad(&mut h, partner, &q, Scheme::UnionPay, Some(true)).unwrap_err(),
            OverseasError::QuoteExpired
        );
        assert_eq!(balance(&h, user), (300_000, 0));
        assert_eq!(outgoing_today(&h, user), Amount::ZERO);
        assert_eq!(h.state.partners().pending_overseas().count(), 0);
    }
}
fn record_notified(h: &mut Harness, progress: &[(u64, u64)]) -> u32 {
    let progress = progress
        .iter()
        .map(|&(partner_id, notified_through)| kasa_core::partner::NotifyProgress { partner_id, notified_through })
        .collect();
    match partner_command(h, Command::RecordNotified { progress: BoundedVec::new(progress).unwrap() }) {
        Outcome::NotifiedRecorded(moved) => moved,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn notification_positions_move_forward_per_partner_and_survive_a_restart() {
    let mut h = Harness::recording();
    let a = register(&mut h, "alipay_plus", Currency::KRW, 0).unwrap();
    let b = register(&mut h, "tng", Currency::KRW, 0).unwrap();
    // Partner b's position moves while a's stays: a slow partner holds up only itself.
    assert_eq!(record_notified(&mut h, &[(b.id, 40)]), 1);
    assert_eq!((h.state.partners().notified_through(a.id), h.state.partners().notified_through(b.id)), (0, 40));
    // Only forward; an unknown partner is ignored.
    assert_eq!(record_notified(&mut h, &[(a.id, 7), (b.id, 12), (99, 50)]), 1);
    assert_eq!((h.state.partners().notified_through(a.id), h.state.partners().notified_through(b.id)), (7, 40));
    assert_eq!(h.state.partners().notified_through(99), 0);
    h.restart();
    assert_eq!((h.state.partners().notified_through(a.id), h.state.partners().notified_through(b.id)), (7, 40));
    let (replayed, _) = h.replay();
    assert_eq!(replayed.hash(), h.state.hash(), "the positions are journaled state");
}

#[test]
fn every_window_opened_before_the_cutoff_closes_even_past_one_slice() {
    // 2026-11-30T14:00:00Z is 23:00 KST.
    let mut h = Harness::starting_at(1_796_047_200 * SECOND);
    let store_id = store(&mut h);
    let n = kasa_core::state::HOUSEKEEPING_SLICE as u64 + 4;
    for i in 1..=n {
        register(&mut h, &format!("p{i}"), Currency::KRW, 0).unwrap();
    }
    let requests: Vec<kasa_core::Command> = (1..=n)
        .map(|partner_id| {
            kasa_core::Command::Partner(Command::Pay(Box::new(PayRequest {
                partner_id,
                request_id: RequestId::new("r-1").unwrap(),
                customer_id: CustomerId::new("c").unwrap(),
                store_id,
                merchant_name: None,
                amount: Amount::new(1_000),
                item_name: None,
                quote_id: None,
            })))
        })
        .collect();
    for chunk in requests.chunks(1_000) {
        h.apply(chunk.to_vec());
    }
    assert_eq!(h.state.partners().windows().len() as u64, n);
    // After midnight, partner 1 pays again in the first batch: its new window is not the old
    // day's, and the old day's windows all close, in two batches.
    h.advance(3_600 * SECOND);
    pay(&mut h, 1, "r-2", store_id, 1_000, None).unwrap();
    h.apply(vec![]);
    let windows = h.state.partners().windows();
    assert!(windows.iter().take(n as usize).all(|w| w.status != WindowStatus::Open), "the old day's windows closed");
    assert_eq!(windows.iter().filter(|w| w.status == WindowStatus::Open).count(), 1, "the new day's window is open");
    assert!(h.state.next_expiry().is_some());
}
