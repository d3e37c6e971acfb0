//! The merchant domain through `State::apply`: onboarding with a checked registration number,
//! one merchant per number, fees within bounds, statuses (a closed merchant stays closed and
//! gets no stores or keys), stores, API keys (scopes, a cap on live keys, revocation at once,
//! last use to the minute), and a snapshot round trip that keeps every index.

#[path = "support/mod.rs"]
mod support;

use kasa_core::merchant::{
    parse_brn, ApiKey, BusinessName, Command, DisplayName, KeyPrefix, Mcc, Merchant, MerchantError, MerchantStatus,
    Outcome, Scopes, SettlementAccount, Store, FEE_BPS_MAX, LIVE_KEYS_PER_MERCHANT_MAX,
};
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{BankCode, Last4, Name, SealedAccountNumber};
use support::Harness;

fn merchant_command(h: &mut Harness, command: Command) -> Outcome {
    match h.apply(vec![kasa_core::Command::Merchant(command)]).remove(0) {
        kasa_core::Outcome::Merchant(outcome) => outcome,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn onboard(h: &mut Harness, brn: &str, fee_bps: u16) -> Result<Merchant, MerchantError> {
    let settlement = SettlementAccount {
        bank_code: BankCode::new("088").unwrap(),
        account_number: SealedAccountNumber {
            ciphertext: BoundedVec::new(b"sealed".to_vec()).unwrap(),
            lookup: [7; 32],
            last4: Last4::new("4321").unwrap(),
        },
        holder_name: Name::new("(주)카사상점").unwrap(),
    };
    let command = Command::CreateMerchant {
        business_name: BusinessName::new("주식회사 카사상점").unwrap(),
        display_name: DisplayName::new("카사상점").unwrap(),
        brn: parse_brn(brn).unwrap(),
        mcc: Mcc::parse("5812").unwrap(),
        fee_bps,
        settlement: Box::new(settlement),
    };
    match merchant_command(h, command) {
        Outcome::MerchantCreated(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn set_status(h: &mut Harness, merchant_id: u64, status: MerchantStatus) -> Result<Merchant, MerchantError> {
    match merchant_command(h, Command::SetMerchantStatus { merchant_id, status }) {
        Outcome::MerchantChanged(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn store(h: &mut Harness, merchant_id: u64, name: &str) -> Result<Store, MerchantError> {
    match merchant_command(h, Command::CreateStore { merchant_id, name: DisplayName::new(name).unwrap() }) {
        Outcome::StoreCreated(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn all_scopes() -> Scopes {
    Scopes::NAMES.iter().fold(Scopes::default(), |all, &(_, s)| all.with(s))
}

fn key(h: &mut Harness, merchant_id: u64, n: u8, scopes: Scopes) -> Result<ApiKey, MerchantError> {
    let command = Command::CreateApiKey {
        merchant_id,
        name: DisplayName::new(format!("key {n}")).unwrap(),
        scopes,
        prefix: KeyPrefix::new(format!("kasa_sk_{n:08}")).unwrap(),
        key_hash: [n; 32],
    };
    match merchant_command(h, command) {
        Outcome::ApiKeyCreated(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn revoke(h: &mut Harness, merchant_id: u64, key_id: u64) -> Result<ApiKey, MerchantError> {
    match merchant_command(h, Command::RevokeApiKey { merchant_id, key_id }) {
        Outcome::ApiKeyRevoked(r) => r,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn one_merchant_per_registration_number_with_a_fee_within_bounds() {
    let mut h = Harness::default();
    let first = onboard(&mut h, "120-81-47521", 250).unwrap();
    assert_eq!((first.id, first.status, first.brn.as_str()), (1, MerchantStatus::Active, "120-81-47521"));
    assert_eq!(first.mcc.digits(), "5812");
    // The same number typed without hyphens is the same number.
    assert_eq!(onboard(&mut h, "1208147521", 250), Err(MerchantError::Exists { merchant_id: 1 }));
    assert_eq!(onboard(&mut h, "220-81-62517", FEE_BPS_MAX + 1), Err(MerchantError::FeeTooHigh));
    assert_eq!(onboard(&mut h, "220-81-62517", FEE_BPS_MAX).map(|m| m.id), Ok(2));
    assert_eq!(h.state.merchants().merchants_count(), 2);
    assert_eq!(h.state.merchants().merchant_by_brn(&parse_brn("2208162517").unwrap()).map(|m| m.id), Some(2));
    let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, ["merchant.created", "merchant.created"], "refusals emit nothing");
}

#[test]
fn a_suspended_merchant_can_come_back_a_closed_one_cannot() {
    let mut h = Harness::default();
    let m = onboard(&mut h, "120-81-47521", 250).unwrap();
    let suspended = set_status(&mut h, m.id, MerchantStatus::Suspended).unwrap();
    assert_eq!(suspended.status, MerchantStatus::Suspended);
    assert!(suspended.status_changed_at > m.status_changed_at);
    assert!(store(&mut h, m.id, "강남점").is_ok(), "a suspended merchant still gets stores");
    assert_eq!(set_status(&mut h, m.id, MerchantStatus::Active).unwrap().status, MerchantStatus::Active);
    let closed = set_status(&mut h, m.id, MerchantStatus::Closed).unwrap();
    assert_eq!(closed.status, MerchantStatus::Closed);
    for status in [MerchantStatus::Active, MerchantStatus::Suspended, MerchantStatus::Closed] {
        assert_eq!(set_status(&mut h, m.id, status), Err(MerchantError::Closed));
    }
    assert_eq!(store(&mut h, m.id, "홍대점"), Err(MerchantError::Closed));
    assert_eq!(key(&mut h, m.id, 1, all_scopes()), Err(MerchantError::Closed));
    assert_eq!(set_status(&mut h, 9, MerchantStatus::Active), Err(MerchantError::UnknownMerchant));
    assert_eq!(store(&mut h, 9, "x"), Err(MerchantError::UnknownMerchant));
    let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "merchant.created",
            "merchant.status_changed",
            "store.created",
            "merchant.status_changed",
            "merchant.status_changed"
        ]
    );
}

#[test]
fn keys_are_found_by_hash_until_revoked_and_live_ones_are_capped() {
    let mut h = Harness::default();
    let m = onboard(&mut h, "120-81-47521", 250).unwrap();
    let other = onboard(&mut h, "220-81-62517", 250).unwrap();
    assert_eq!(key(&mut h, m.id, 1, Scopes::default()), Err(MerchantError::NoScopes));
    let read = Scopes::named("payments:read").unwrap();
    let k = key(&mut h, m.id, 1, read).unwrap();
    assert_eq!((k.id, k.scopes.names()), (1, vec!["payments:read"]));
    assert_eq!(key(&mut h, other.id, 1, read), Err(MerchantError::KeyExists), "a hash never repeats");
    let (found, owner) = h.state.merchants().live_key(&[1; 32]).unwrap();
    assert_eq!((found.id, owner.id), (1, m.id));
    // Another merchant cannot revoke it; its own can, at once, and again without effect.
    assert_eq!(revoke(&mut h, other.id, k.id), Err(MerchantError::UnknownKey));
    let revoked = revoke(&mut h, m.id, k.id).unwrap();
    assert!(revoked.revoked_at > 0);
    assert!(h.state.merchants().live_key(&[1; 32]).is_none(), "a revoked key is not live");
    assert_eq!(revoke(&mut h, m.id, k.id).unwrap().revoked_at, revoked.revoked_at);
    assert_eq!(key(&mut h, m.id, 1, read), Err(MerchantError::KeyExists), "not even after revocation");
    for n in 0..LIVE_KEYS_PER_MERCHANT_MAX as u8 {
        key(&mut h, m.id, 10 + n, all_scopes()).unwrap();
    }
    assert_eq!(key(&mut h, m.id, 99, all_scopes()), Err(MerchantError::TooManyKeys));
    revoke(&mut h, m.id, 2).unwrap();
    assert!(key(&mut h, m.id, 99, all_scopes()).is_ok(), "a revoked key frees its place");
    assert_eq!(h.state.merchants().keys_of(m.id).count(), LIVE_KEYS_PER_MERCHANT_MAX + 2);
}

#[test]
fn a_key_s_last_use_is_kept_to_the_minute_and_never_moves_back() {
    let mut h = Harness::default();
    let m = onboard(&mut h, "120-81-47521", 250).unwrap();
    key(&mut h, m.id, 1, all_scopes()).unwrap();
    let minute = 60 * 1_000_000_000u64;
    let used = h.now / minute * minute;
    let uses = |at: u64| Command::KeysUsed { uses: BoundedVec::new(vec![(1, at), (77, at)]).unwrap() };
    assert_eq!(merchant_command(&mut h, uses(used + 5)), Outcome::KeysUsed(1), "an unknown key is skipped");
    assert_eq!(h.state.merchants().key(1).unwrap().last_used_at, used);
    assert_eq!(merchant_command(&mut h, uses(used - minute)), Outcome::KeysUsed(0), "never back");
    h.advance(2 * minute);
    assert_eq!(merchant_command(&mut h, uses(u64::MAX)), Outcome::KeysUsed(1), "never past now");
    let last = h.state.merchants().key(1).unwrap().last_used_at;
    assert_eq!(last, h.state.last_timestamp() / minute * minute);
}

#[test]
fn a_snapshot_keeps_merchants_stores_keys_and_their_indexes() {
    let mut h = Harness::default();
    let m = onboard(&mut h, "120-81-47521", 250).unwrap();
    onboard(&mut h, "220-81-62517", 300).unwrap();
    store(&mut h, m.id, "강남점").unwrap();
    store(&mut h, 2, "본점").unwrap();
    store(&mut h, m.id, "홍대점").unwrap();
    key(&mut h, m.id, 1, all_scopes()).unwrap();
    key(&mut h, 2, 2, all_scopes()).unwrap();
    revoke(&mut h, m.id, 1).unwrap();
    set_status(&mut h, 2, MerchantStatus::Suspended).unwrap();
    h.restart();
    let merchants = h.state.merchants();
    assert_eq!(merchants.stores_of(m.id).map(|s| s.name.as_str()).collect::<Vec<_>>(), ["강남점", "홍대점"]);
    assert!(merchants.live_key(&[1; 32]).is_none());
    assert_eq!(merchants.live_key(&[2; 32]).map(|(k, m)| (k.id, m.id)), Some((2, 2)));
    assert_eq!(merchants.merchant(2).unwrap().status, MerchantStatus::Suspended);
    assert_eq!(onboard(&mut h, "1208147521", 250), Err(MerchantError::Exists { merchant_id: 1 }));
}

mod payments {
    use super::*;
    use kasa_core::merchant::{
        CancelReason, CaptureMethod, ItemName, KeyCommand, KeyOutcome, KeyRefusal, OrderId, Payment, PaymentError,
        PaymentStatus, APPROVAL_SECONDS_DEFAULT, APPROVAL_SECONDS_MAX, PAYMENT_AMOUNT_MAX,
    };
    use kasa_core::money::Amount;

    const SECOND: u64 = 1_000_000_000;

    fn as_key(h: &mut Harness, key: u8, command: KeyCommand) -> (u64, Result<KeyOutcome, KeyRefusal>) {
        match merchant_command(h, Command::AsKey { key_hash: [key; 32], command }) {
            Outcome::AsKey { key_id, outcome } => (key_id, outcome),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn create_with(
        h: &mut Harness,
        key: u8,
        order: &str,
        amount: u64,
        store_id: Option<u64>,
        expires: u32,
    ) -> Result<Payment, PaymentError> {
        let command = KeyCommand::CreatePayment {
            store_id,
            order_id: OrderId::new(order).unwrap(),
            item_name: ItemName::new("아메리카노 2잔").unwrap(),
            amount: Amount::new(amount),
            capture_method: CaptureMethod::Automatic,
            expires_in_seconds: expires,
            return_url: None,
        };
        match as_key(h, key, command) {
            (_, Ok(KeyOutcome::PaymentCreated(r))) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn create(h: &mut Harness, key: u8, order: &str, amount: u64) -> Result<Payment, PaymentError> {
        create_with(h, key, order, amount, None, APPROVAL_SECONDS_DEFAULT)
    }

    fn cancel(h: &mut Harness, key: u8, payment_id: u64) -> Result<Payment, PaymentError> {
        match as_key(h, key, KeyCommand::CancelPayment { payment_id }) {
            (_, Ok(KeyOutcome::PaymentCanceled(r))) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    /// Two merchants, each with a key of every scope (hashes [1; 32] and [2; 32]), and the
    /// first with a read-only key ([3; 32]) and a store.
    fn two_merchants() -> Harness {
        let mut h = Harness::default();
        onboard(&mut h, "120-81-47521", 250).unwrap();
        onboard(&mut h, "220-81-62517", 250).unwrap();
        key(&mut h, 1, 1, all_scopes()).unwrap();
        key(&mut h, 2, 2, all_scopes()).unwrap();
        key(&mut h, 1, 3, Scopes::named("payments:read").unwrap()).unwrap();
        store(&mut h, 1, "강남점").unwrap();
        h.take_events();
        h
    }

    #[test]
    fn a_payment_is_created_once_per_order_within_bounds() {
        let mut h = two_merchants();
        let p = create_with(&mut h, 1, "order-1", 4_500, Some(1), APPROVAL_SECONDS_DEFAULT).unwrap();
        assert_eq!((p.id, p.merchant_id, p.status, p.store_id), (1, 1, PaymentStatus::RequiresApproval, Some(1)));
        assert_eq!(p.expires_at, p.created_at + u64::from(APPROVAL_SECONDS_DEFAULT) * SECOND);
        assert_eq!(create(&mut h, 1, "order-1", 4_500), Err(PaymentError::OrderExists { payment_id: 1 }));
        assert_eq!(create(&mut h, 1, "order-1", 9_999), Err(PaymentError::OrderExists { payment_id: 1 }));
        assert!(create(&mut h, 2, "order-1", 4_500).is_ok(), "order ids are per merchant");
        assert_eq!(create(&mut h, 1, "zero", 0), Err(PaymentError::InvalidAmount));
        assert_eq!(create(&mut h, 1, "huge", PAYMENT_AMOUNT_MAX.minor() + 1), Err(PaymentError::InvalidAmount));
        assert!(create(&mut h, 1, "max", PAYMENT_AMOUNT_MAX.minor()).is_ok());
        assert_eq!(create_with(&mut h, 1, "e1", 1, None, 59), Err(PaymentError::InvalidExpiry));
        assert_eq!(create_with(&mut h, 1, "e2", 1, None, APPROVAL_SECONDS_MAX + 1), Err(PaymentError::InvalidExpiry));
        assert_eq!(create_with(&mut h, 2, "s", 1, Some(1), 600), Err(PaymentError::UnknownStore), "another's store");
        let merchants = h.state.merchants();
        assert_eq!(merchants.payment_by_order(1, &OrderId::new("order-1").unwrap()).map(|p| p.id), Some(1));
        let ids: Vec<u64> = merchants.payments_of(1, u64::MAX, None, 10).iter().map(|p| p.id).collect();
        assert_eq!(ids, [3, 1], "newest first, this merchant's only");
        let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["payment.created", "payment.created", "payment.created"]);
    }

    #[test]
    fn a_list_by_status_reads_that_status_only_and_survives_a_restart() {
        let mut h = two_merchants();
        for n in 0..6u64 {
            create(&mut h, 1, &format!("o{n}"), 1_000 + n).unwrap();
        }
        create(&mut h, 2, "other", 1_000).unwrap();
        for id in [2, 4, 5] {
            as_key(&mut h, 1, KeyCommand::CancelPayment { payment_id: id }).1.expect("a live key");
            assert_eq!(h.state.merchants().payment(id).unwrap().status, PaymentStatus::Canceled);
        }
        let check = |h: &Harness| {
            let of = |status, before| -> Vec<u64> {
                h.state.merchants().payments_of(1, before, Some(status), 10).iter().map(|p| p.id).collect()
            };
            assert_eq!(of(PaymentStatus::Canceled, u64::MAX), [5, 4, 2]);
            assert_eq!(of(PaymentStatus::RequiresApproval, u64::MAX), [6, 3, 1], "newest first, merchant 1's");
            assert_eq!(of(PaymentStatus::RequiresApproval, 6), [3, 1], "before a cursor");
            assert_eq!(of(PaymentStatus::RequiresApproval, 1), Vec::<u64>::new());
            assert_eq!(of(PaymentStatus::Succeeded, u64::MAX), Vec::<u64>::new());
            assert_eq!(h.state.merchants().payments_of(1, u64::MAX, Some(PaymentStatus::Canceled), 2).len(), 2);
        };
        check(&h);
        h.restart();
        check(&h);
    }

    #[test]
    fn a_key_must_be_live_and_scoped_and_its_merchant_active() {
        let mut h = two_merchants();
        let command = || KeyCommand::CancelPayment { payment_id: 1 };
        assert_eq!(as_key(&mut h, 9, command()), (0, Err(KeyRefusal::UnknownKey)));
        let needed = Scopes::named("payments:write").unwrap();
        assert_eq!(as_key(&mut h, 3, command()), (3, Err(KeyRefusal::Scope { needed })));
        revoke(&mut h, 1, 1).unwrap();
        assert_eq!(as_key(&mut h, 1, command()), (0, Err(KeyRefusal::UnknownKey)), "revoked: at once");
        set_status(&mut h, 2, MerchantStatus::Suspended).unwrap();
        let refused = create(&mut h, 2, "o", 1_000);
        assert_eq!(refused, Err(PaymentError::MerchantNotActive { status: MerchantStatus::Suspended }));
        assert!(h.state.merchants().payments_of(2, u64::MAX, None, 10).is_empty(), "nothing was created");
    }

    #[test]
    fn an_unapproved_payment_is_canceled_by_its_merchant_or_expires() {
        let mut h = two_merchants();
        let p = create(&mut h, 1, "o-1", 1_000).unwrap();
        assert_eq!(cancel(&mut h, 2, p.id), Err(PaymentError::UnknownPayment), "another merchant's: not found");
        let canceled = cancel(&mut h, 1, p.id).unwrap();
        assert_eq!((canceled.status, canceled.cancel_reason), (PaymentStatus::Canceled, Some(CancelReason::Merchant)));
        assert_eq!(cancel(&mut h, 1, p.id), Err(PaymentError::WrongStatus { status: PaymentStatus::Canceled }));
        // Expiry: the state names the time, and a batch then (even an empty one) expires it.
        let q = create_with(&mut h, 1, "o-2", 2_000, None, 60).unwrap();
        create_with(&mut h, 1, "o-3", 3_000, None, 600).unwrap();
        assert_eq!(h.state.next_expiry(), Some(q.expires_at));
        h.now = q.expires_at;
        h.apply(vec![]);
        let expired = h.state.merchants().payment(q.id).unwrap();
        assert_eq!((expired.status, expired.cancel_reason), (PaymentStatus::Canceled, Some(CancelReason::Expired)));
        assert_eq!(h.state.merchants().payment(3).unwrap().status, PaymentStatus::RequiresApproval);
        assert_eq!(h.state.next_expiry(), Some(h.state.merchants().payment(3).unwrap().expires_at));
        assert_eq!(cancel(&mut h, 1, q.id), Err(PaymentError::WrongStatus { status: PaymentStatus::Canceled }));
        let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            names,
            ["payment.created", "payment.canceled", "payment.created", "payment.created", "payment.expired"]
        );
        // A snapshot keeps the payments, their order ids and the expiry order.
        h.restart();
        assert_eq!(create(&mut h, 1, "o-2", 1), Err(PaymentError::OrderExists { payment_id: 2 }));
        assert_eq!(h.state.next_expiry(), Some(h.state.merchants().payment(3).unwrap().expires_at));
    }
}

mod webhooks {
    use super::*;
    use kasa_core::merchant::{
        EventTypes, KeyCommand, KeyOutcome, KeyRefusal, SealedSecret, WebhookCommand, WebhookEndpoint, WebhookError,
        WebhookUrl, ENDPOINTS_PER_MERCHANT_MAX,
    };

    fn webhook(
        h: &mut Harness,
        key: u8,
        command: WebhookCommand,
    ) -> Result<Result<WebhookEndpoint, WebhookError>, KeyRefusal> {
        match merchant_command(h, Command::AsKey { key_hash: [key; 32], command: KeyCommand::Webhook(command) }) {
            Outcome::AsKey { outcome: Ok(KeyOutcome::Webhook(r)), .. } => Ok(r),
            Outcome::AsKey { outcome: Err(refusal), .. } => Err(refusal),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn sealed(n: u8) -> SealedSecret {
        SealedSecret { ciphertext: BoundedVec::new(vec![n; 60]).unwrap() }
    }

    fn create(url: &str, events: &[&str], n: u8) -> WebhookCommand {
        WebhookCommand::Create {
            url: WebhookUrl::new(url).unwrap(),
            events: EventTypes::named(events.iter().copied()).unwrap(),
            secret: sealed(n),
        }
    }

    fn record(h: &mut Harness, endpoint_id: u64, delivered_through: u64, failing_since: u64) {
        let progress = kasa_core::merchant::DeliveryProgress { endpoint_id, delivered_through, failing_since };
        let command = Command::RecordDeliveries { progress: BoundedVec::new(vec![progress]).unwrap() };
        match merchant_command(h, command) {
            Outcome::DeliveriesRecorded(_) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn deliveries_fail_for_3_days_then_the_endpoint_is_disabled_until_a_rotation() {
        use kasa_core::merchant::FAILING_NANOS_MAX;
        let mut h = Harness::default();
        onboard(&mut h, "120-81-47521", 250).unwrap();
        key(&mut h, 1, 1, all_scopes()).unwrap();
        let e = webhook(&mut h, 1, create("https://shop.example/h", &["payment.succeeded"], 1)).unwrap().unwrap();
        let start = e.delivered_through;
        let endpoint = |h: &Harness| h.state.merchants().endpoint(e.id).unwrap().clone();
        // Positions only move forward.
        record(&mut h, e.id, start + 5, 0);
        record(&mut h, e.id, start + 2, 0);
        assert_eq!(endpoint(&h).delivered_through, start + 5);
        let failing_since = h.now;
        record(&mut h, e.id, start + 5, failing_since);
        h.now = failing_since + FAILING_NANOS_MAX - 1;
        record(&mut h, e.id, start + 5, failing_since);
        assert_eq!(endpoint(&h).disabled_at, 0, "not before 3 days");
        h.now = failing_since + FAILING_NANOS_MAX;
        h.take_events();
        record(&mut h, e.id, start + 5, failing_since);
        assert!(endpoint(&h).disabled_at != 0);
        let names: Vec<&str> = h.take_events().iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["webhook_endpoint.disabled"]);
        // A rotation enables it again, from now on; a stale failure report does not disable it.
        let rotated =
            webhook(&mut h, 1, WebhookCommand::RotateSecret { endpoint_id: e.id, secret: sealed(2) }).unwrap().unwrap();
        assert!(rotated.is_live() && rotated.failing_since == 0);
        record(&mut h, e.id, rotated.delivered_through, failing_since);
        assert!(endpoint(&h).is_live(), "a report from before the rotation is stale");
        h.restart();
        assert_eq!(endpoint(&h), rotated);
    }

    #[test]
    fn endpoints_are_a_merchant_s_own_with_a_secret_that_rotates() {
        let mut h = Harness::default();
        onboard(&mut h, "120-81-47521", 250).unwrap();
        onboard(&mut h, "220-81-62517", 250).unwrap();
        key(&mut h, 1, 1, Scopes::named("webhooks:manage").unwrap()).unwrap();
        key(&mut h, 1, 2, Scopes::named("payments:write").unwrap()).unwrap();
        key(&mut h, 2, 3, Scopes::named("webhooks:manage").unwrap()).unwrap();
        let needed = Scopes::named("webhooks:manage").unwrap();
        assert_eq!(
            webhook(&mut h, 2, create("https://a.example/", &["payment.succeeded"], 1)),
            Err(KeyRefusal::Scope { needed })
        );
        assert_eq!(webhook(&mut h, 1, create("https://a.example/", &[], 1)), Ok(Err(WebhookError::NoEvents)));
        let e = webhook(&mut h, 1, create("https://a.example/", &["payment.succeeded"], 1)).unwrap().unwrap();
        assert_eq!((e.id, e.merchant_id, e.events.names()), (1, 1, vec!["payment.succeeded"]));
        // Another merchant's key cannot touch it.
        let delete = WebhookCommand::Delete { endpoint_id: 1 };
        assert_eq!(webhook(&mut h, 3, delete.clone()), Ok(Err(WebhookError::UnknownEndpoint)));
        let rotated =
            webhook(&mut h, 1, WebhookCommand::RotateSecret { endpoint_id: 1, secret: sealed(2) }).unwrap().unwrap();
        let (old, until) = rotated.old_secret.clone().unwrap();
        assert_eq!((old, rotated.secret.clone()), (sealed(1), sealed(2)));
        assert_eq!(until, h.state.last_timestamp() + 24 * 3600 * 1_000_000_000);
        h.restart();
        assert_eq!(h.state.merchants().endpoint(1), Some(&rotated));
        assert!(webhook(&mut h, 1, delete.clone()).unwrap().unwrap().deleted_at > 0);
        assert_eq!(webhook(&mut h, 1, delete), Ok(Err(WebhookError::UnknownEndpoint)), "deleted once");
        for n in 0..ENDPOINTS_PER_MERCHANT_MAX as u8 {
            webhook(&mut h, 1, create("https://b.example/", &["payout.paid"], n)).unwrap().unwrap();
        }
        let refused = webhook(&mut h, 1, create("https://c.example/", &["payout.paid"], 9));
        assert_eq!(refused, Ok(Err(WebhookError::TooManyEndpoints)));
        assert_eq!(h.state.merchants().endpoints_of(1).count(), ENDPOINTS_PER_MERCHANT_MAX);
        // A merchant's live endpoints are an index of their own, rebuilt from a snapshot.
        let live: Vec<u64> = h.state.merchants().endpoints_of(1).map(|e| e.id).collect();
        assert!(!live.contains(&1), "the deleted endpoint is not listed");
        h.restart();
        assert_eq!(h.state.merchants().endpoints_of(1).map(|e| e.id).collect::<Vec<_>>(), live);
        assert_eq!(h.state.merchants().endpoints_of(3).count(), 0);
    }
}

/// A payment's money: approval by a wallet user (as a flow of both domains), capture, cancel,
/// the 7-day capture limit, refunds with their fee, the user's transaction list, and the
/// races the sequencer decides.
mod money {
    use super::support::wallet::{balance, funded, history, login, outgoing_today, won};
    use super::*;
    use kasa_core::chart;
    use kasa_core::merchant::{
        fee_of, AnswerError, CancelReason, CaptureMethod, ItemName, KeyCommand, KeyOutcome, OrderId, Payment,
        PaymentError, PaymentStatus, Refund, RefundReason, APPROVAL_SECONDS_DEFAULT, CAPTURE_SECONDS,
    };
    use kasa_core::money::Amount;
    use kasa_core::wallet::{EntryKind, FundingError, HistoryCursor};

    const SECOND: u64 = 1_000_000_000;
    /// The first merchant's fee: 2.5 %.
    const FEE_BPS: u16 = 250;

    struct World {
        h: Harness,
        /// A user with 300,000 won and session token [41; 32].
        alice: u64,
        /// A user with 10,000 won and session token [42; 32].
        bob: u64,
    }

    /// Two merchants (keys [1; 32] and [2; 32] with every scope, [3; 32] payments:write
    /// only for the first) and two funded, logged-in users.
    fn world() -> World {
        let mut h = Harness::default();
        onboard(&mut h, "120-81-47521", FEE_BPS).unwrap();
        onboard(&mut h, "220-81-62517", 0).unwrap();
        key(&mut h, 1, 1, all_scopes()).unwrap();
        key(&mut h, 2, 2, all_scopes()).unwrap();
        key(&mut h, 1, 3, Scopes::named("payments:write").unwrap()).unwrap();
        let alice = funded(&mut h, "010-1111-2222", 300_000);
        let bob = funded(&mut h, "010-3333-4444", 10_000);
        login(&mut h, alice, 41, true).unwrap();
        login(&mut h, bob, 42, true).unwrap();
        h.take_events();
        World { h, alice, bob }
    }

    fn as_key(h: &mut Harness, key: u8, command: KeyCommand) -> KeyOutcome {
        match merchant_command(h, Command::AsKey { key_hash: [key; 32], command }) {
            Outcome::AsKey { outcome: Ok(outcome), .. } => outcome,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn create(h: &mut Harness, key: u8, order: &str, amount: u64, capture_method: CaptureMethod) -> Payment {
        let command = KeyCommand::CreatePayment {
            store_id: None,
            order_id: OrderId::new(order).unwrap(),
            item_name: ItemName::new("아메리카노 2잔").unwrap(),
            amount: Amount::new(amount),
            capture_method,
            expires_in_seconds: APPROVAL_SECONDS_DEFAULT,
            return_url: None,
        };
        match as_key(h, key, command) {
            KeyOutcome::PaymentCreated(r) => r.unwrap(),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn answer_command(token: u8, payment_id: u64, approve: bool, pin_ok: Option<bool>) -> kasa_core::Command {
        kasa_core::Command::Merchant(Command::AnswerPayment { token_hash: [token; 32], payment_id, approve, pin_ok })
    }

    fn answered(outcome: kasa_core::Outcome) -> Result<Payment, AnswerError> {
        match outcome {
            kasa_core::Outcome::Merchant(Outcome::PaymentAnswered(r)) => r.map(|a| a.payment),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn answer(
        h: &mut Harness,
        token: u8,
        payment_id: u64,
        approve: bool,
        pin_ok: Option<bool>,
    ) -> Result<Payment, AnswerError> {
        answered(h.apply(vec![answer_command(token, payment_id, approve, pin_ok)]).remove(0))
    }

    fn capture_command(key: u8, payment_id: u64, amount: Option<u64>) -> kasa_core::Command {
        let command = KeyCommand::CapturePayment { payment_id, amount: amount.map(Amount::new) };
        kasa_core::Command::Merchant(Command::AsKey { key_hash: [key; 32], command })
    }

    fn refund_command(key: u8, payment_id: u64, amount: u64) -> kasa_core::Command {
        let command = KeyCommand::RefundPayment {
            payment_id,
            amount: Amount::new(amount),
            reason: RefundReason::new("고객 변심").unwrap(),
        };
        kasa_core::Command::Merchant(Command::AsKey { key_hash: [key; 32], command })
    }

    fn key_outcome(outcome: kasa_core::Outcome) -> KeyOutcome {
        match outcome {
            kasa_core::Outcome::Merchant(Outcome::AsKey { outcome: Ok(o), .. }) => o,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn capture(h: &mut Harness, key: u8, payment_id: u64, amount: Option<u64>) -> Result<Payment, PaymentError> {
        match key_outcome(h.apply(vec![capture_command(key, payment_id, amount)]).remove(0)) {
            KeyOutcome::PaymentCaptured(r) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn refund(h: &mut Harness, key: u8, payment_id: u64, amount: u64) -> Result<(Refund, Payment), PaymentError> {
        match key_outcome(h.apply(vec![refund_command(key, payment_id, amount)]).remove(0)) {
            KeyOutcome::Refunded(r) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn merchant_balance(h: &Harness, merchant_id: u64) -> i128 {
        h.state
            .books()
            .account(chart::MERCHANT_BALANCE.id(merchant_id))
            .map_or(0, |a| a.credits_posted as i128 - a.debits_posted as i128)
    }

    fn fee_income(h: &Harness) -> i128 {
        let id = chart::FEE_INCOME.system_id(kasa_core::Currency::KRW);
        h.state.books().account(id).map_or(0, |a| a.credits_posted as i128 - a.debits_posted as i128)
    }

    fn names(h: &mut Harness) -> Vec<&'static str> {
        h.take_events().iter().map(|e| e.kind.name()).collect()
    }

    #[test]
    fn an_automatic_payment_is_paid_at_approval_with_the_fee_linked() {
        let World { mut h, alice, .. } = world();
        let p = create(&mut h, 1, "o-1", 12_000, CaptureMethod::Automatic);
        let fees_before = fee_income(&h);
        let paid = answer(&mut h, 41, p.id, true, None).unwrap();
        assert_eq!((paid.status, paid.user_id, paid.captured), (PaymentStatus::Succeeded, alice, won(12_000)));
        let fee = fee_of(won(12_000), FEE_BPS);
        assert_eq!((paid.fee, fee), (won(300), won(300)));
        assert_eq!(balance(&h, alice), (288_000, 0));
        assert_eq!(merchant_balance(&h, 1), 12_000 - 300);
        assert_eq!(fee_income(&h) - fees_before, 300);
        assert_eq!(outgoing_today(&h, alice), won(12_000), "counted against the day");
        assert_eq!(names(&mut h), ["payment.created", "payment.approved", "payment.succeeded"]);
        // The user's list shows it with the merchant's name and the item.
        let list = history(&h.state, alice, HistoryCursor::default(), 10);
        let e = &list[0];
        assert_eq!(
            (e.kind, e.object_id, e.amount, e.credit, e.status),
            (EntryKind::Payment, p.id, won(12_000), false, "succeeded")
        );
        assert_eq!(e.counterparty_merchant, Some((1, "카사상점".to_string())));
        assert_eq!((e.memo.as_str(), e.balance_after), ("아메리카노 2잔", Some(won(288_000))));
        // Answered once: a second approval (anyone's) is refused and moves nothing.
        let again = answer(&mut h, 41, p.id, true, None);
        assert_eq!(again, Err(AnswerError::Payment(PaymentError::WrongStatus { status: PaymentStatus::Succeeded })));
        assert_eq!(balance(&h, alice), (288_000, 0));
        h.restart();
        assert_eq!(h.state.merchants().payment(p.id), Some(&paid));
    }

    #[test]
    fn a_manual_payment_waits_for_its_capture_which_may_be_partial() {
        let World { mut h, alice, .. } = world();
        let p = create(&mut h, 1, "o-1", 40_000, CaptureMethod::Manual);
        let approved = answer(&mut h, 41, p.id, true, None).unwrap();
        assert_eq!(approved.status, PaymentStatus::RequiresCapture);
        assert_eq!(approved.capture_before(), approved.approved_at + u64::from(CAPTURE_SECONDS) * SECOND);
        assert_eq!(balance(&h, alice), (300_000, 40_000), "reserved, not moved");
        assert_eq!(merchant_balance(&h, 1), 0);
        let list = history(&h.state, alice, HistoryCursor::default(), 10);
        assert_eq!((list[0].status, list[0].balance_after), ("requires_capture", None));
        // Refused captures change nothing.
        assert_eq!(capture(&mut h, 2, p.id, None), Err(PaymentError::UnknownPayment), "another merchant's");
        assert_eq!(capture(&mut h, 1, p.id, Some(0)), Err(PaymentError::InvalidAmount));
        assert_eq!(capture(&mut h, 1, p.id, Some(40_001)), Err(PaymentError::AmountTooLarge { max: won(40_000) }));
        assert_eq!(
            refund(&mut h, 1, p.id, 1).map(|_| ()),
            Err(PaymentError::WrongStatus { status: PaymentStatus::RequiresCapture })
        );
        // A partial capture releases the rest, to the wallet and to the day's limit.
        let captured = capture(&mut h, 1, p.id, Some(30_000)).unwrap();
        assert_eq!(
            (captured.status, captured.captured, captured.fee),
            (PaymentStatus::Succeeded, won(30_000), won(750))
        );
        assert_eq!(balance(&h, alice), (270_000, 0));
        assert_eq!(outgoing_today(&h, alice), won(30_000));
        assert_eq!(merchant_balance(&h, 1), 30_000 - 750);
        assert_eq!(capture(&mut h, 1, p.id, None), Err(PaymentError::WrongStatus { status: PaymentStatus::Succeeded }));
        assert_eq!(cancel_key(&mut h, 1, p.id), Err(PaymentError::WrongStatus { status: PaymentStatus::Succeeded }));
        assert_eq!(names(&mut h), ["payment.created", "payment.approved", "payment.succeeded"]);
    }

    fn cancel_key(h: &mut Harness, key: u8, payment_id: u64) -> Result<Payment, PaymentError> {
        match as_key(h, key, KeyCommand::CancelPayment { payment_id }) {
            KeyOutcome::PaymentCanceled(r) => r,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn an_approved_payment_is_voided_by_a_cancel_or_after_7_days() {
        let World { mut h, alice, .. } = world();
        let p = create(&mut h, 1, "o-1", 50_000, CaptureMethod::Manual);
        answer(&mut h, 41, p.id, true, None).unwrap();
        let canceled = cancel_key(&mut h, 1, p.id).unwrap();
        assert_eq!((canceled.status, canceled.cancel_reason), (PaymentStatus::Canceled, Some(CancelReason::Merchant)));
        assert_eq!(balance(&h, alice), (300_000, 0));
        assert_eq!(outgoing_today(&h, alice), Amount::ZERO, "the day's limit is given back");
        let list = history(&h.state, alice, HistoryCursor::default(), 10);
        assert_eq!(
            (list[0].kind, list[0].status, list[0].balance_after),
            (EntryKind::Payment, "canceled", Some(won(300_000)))
        );
        // Not captured in 7 days: the books void it by their timeout, by engine time.
        let q = create(&mut h, 1, "o-2", 20_000, CaptureMethod::Manual);
        let approved = answer(&mut h, 41, q.id, true, Some(true)).unwrap();
        assert!(h.state.next_expiry().is_some_and(|at| at <= approved.capture_before()));
        h.now = approved.capture_before() - 1;
        assert!(capture(&mut h, 1, q.id, Some(1)).is_ok(), "a capture in time");
        login(&mut h, alice, 43, true).unwrap();
        let r = create(&mut h, 1, "o-3", 20_000, CaptureMethod::Manual);
        let approved = answer(&mut h, 43, r.id, true, Some(true)).unwrap();
        h.now = approved.capture_before();
        h.apply(vec![]);
        let expired = h.state.merchants().payment(r.id).unwrap().clone();
        assert_eq!(
            (expired.status, expired.cancel_reason),
            (PaymentStatus::Canceled, Some(CancelReason::CaptureExpired))
        );
        assert_eq!(capture(&mut h, 1, r.id, None), Err(PaymentError::WrongStatus { status: PaymentStatus::Canceled }));
        assert_eq!(balance(&h, alice), (300_000 - 1, 0));
        let events = names(&mut h);
        assert_eq!(events.iter().filter(|n| **n == "payment.canceled").count(), 2, "{events:?}");
        h.restart();
    }

    #[test]
    fn a_capture_or_cancel_whose_stamp_passes_the_7_days_is_refused_not_a_panic() {
        let World { mut h, .. } = world();
        for (order, cancel) in [("o-1", false), ("o-2", true)] {
            let p = create(&mut h, 1, order, 1_000, CaptureMethod::Manual);
            let approved = answer(&mut h, 41, p.id, true, None).unwrap();
            // The batch starts 2 ns before the deadline; accounts of the operators' ledger take
            // the next timestamps, so the capture's own stamp is past it.
            h.now = approved.capture_before() - 2;
            let accounts: Vec<kasa_core::Account> =
                (1..=4).map(|i| super::support::account(1_000 + i + p.id as u128 * 10, 1, 0)).collect();
            let command = if cancel {
                kasa_core::Command::Merchant(Command::AsKey {
                    key_hash: [1; 32],
                    command: KeyCommand::CancelPayment { payment_id: p.id },
                })
            } else {
                capture_command(1, p.id, None)
            };
            let mut outcomes = h.apply(vec![kasa_core::Command::create_accounts(accounts), command]);
            let refused = match key_outcome(outcomes.remove(1)) {
                KeyOutcome::PaymentCaptured(r) | KeyOutcome::PaymentCanceled(r) => r,
                other => panic!("unexpected outcome {other:?}"),
            };
            assert_eq!(refused, Err(PaymentError::Expired));
            h.apply(vec![]);
            let p = h.state.merchants().payment(p.id).unwrap();
            assert_eq!((p.status, p.cancel_reason), (PaymentStatus::Canceled, Some(CancelReason::CaptureExpired)));
            login(&mut h, 1, 41, true).unwrap();
        }
    }

    #[test]
    fn refunds_add_up_to_the_capture_and_return_the_fee_pro_rata() {
        let World { mut h, alice, .. } = world();
        let p = create(&mut h, 1, "o-1", 10_001, CaptureMethod::Automatic);
        let paid = answer(&mut h, 41, p.id, true, None).unwrap();
        assert_eq!(paid.fee, won(250), "10,001 × 2.5 % = 250.025, rounded");
        for (amount, fee_back) in [(3_333, 83), (3_333, 83), (3_334, 83)] {
            let (r, after) = refund(&mut h, 1, p.id, amount).unwrap();
            assert_eq!((r.amount, r.fee_returned), (won(amount), won(fee_back)), "refund {}", r.id);
            assert_eq!(after.refunds, r.id as u16);
        }
        let (r, last) = refund(&mut h, 1, p.id, 1).unwrap();
        assert_eq!(r.fee_returned, won(1));
        assert_eq!((last.refunded, last.fee_refunded), (won(10_001), won(250)), "the whole fee, whatever the steps");
        assert_eq!(refund(&mut h, 1, p.id, 1).map(|_| ()), Err(PaymentError::AmountTooLarge { max: Amount::ZERO }));
        assert_eq!(refund(&mut h, 2, p.id, 1).map(|_| ()), Err(PaymentError::UnknownPayment), "another merchant's");
        assert_eq!(balance(&h, alice), (300_000, 0));
        assert_eq!(merchant_balance(&h, 1), 0);
        let refunds: Vec<u64> = h.state.merchants().refunds_of(p.id).map(|r| r.id).collect();
        assert_eq!(refunds, [1, 2, 3, 4]);
        let list = history(&h.state, alice, HistoryCursor::default(), 10);
        assert_eq!(
            (list[0].kind, list[0].object_id, list[0].credit, list[0].balance_after),
            (EntryKind::Refund, 4, true, Some(won(300_000)))
        );
        assert_eq!(list[0].counterparty_merchant, Some((1, "카사상점".to_string())));
        h.restart();
    }

    #[test]
    fn a_refund_never_puts_a_wallet_over_the_legal_maximum() {
        use super::support::wallet::{adjust, user_changed};
        let World { mut h, alice, .. } = world();
        let tier = kasa_core::limits::Tier::Verified;
        user_changed(&mut h, kasa_core::wallet::Command::SetTier { user_id: alice, tier }).unwrap();
        let p = create(&mut h, 1, "o-1", 12_000, CaptureMethod::Automatic);
        answer(&mut h, 41, p.id, true, Some(true)).unwrap();
        // Filled to the legal maximum of any wallet, 2,000,000 won: the refund waits.
        let (now, _) = balance(&h, alice);
        adjust(&mut h, alice, 2_000_000 - now as u64, kasa_core::wallet::Direction::Credit, "filled").unwrap();
        assert_eq!(refund(&mut h, 1, p.id, 1_000).unwrap_err(), PaymentError::WalletFull);
        assert_eq!(balance(&h, alice).0, 2_000_000, "nothing moved");
        adjust(&mut h, alice, 1_000, kasa_core::wallet::Direction::Debit, "spent").unwrap();
        assert!(refund(&mut h, 1, p.id, 1_000).is_ok(), "room again");
        h.restart();
    }

    #[test]
    fn a_key_without_refunds_write_cannot_refund() {
        let World { mut h, .. } = world();
        let p = create(&mut h, 1, "o-1", 5_000, CaptureMethod::Automatic);
        answer(&mut h, 41, p.id, true, None).unwrap();
        let refused = h.apply(vec![refund_command(3, p.id, 1)]).remove(0);
        let needed = Scopes::named("refunds:write").unwrap();
        assert!(
            matches!(refused, kasa_core::Outcome::Merchant(Outcome::AsKey { outcome: Err(kasa_core::merchant::KeyRefusal::Scope { needed: n }), .. }) if n == needed),
            "{refused:?}"
        );
        assert_eq!(h.state.merchants().payment(p.id).unwrap().refunded, Amount::ZERO);
    }

    #[test]
    fn a_refused_approval_moves_nothing() {
        let World { mut h, alice, bob } = world();
        let p = create(&mut h, 1, "o-1", 60_000, CaptureMethod::Automatic);
        let snapshot = |h: &Harness| (balance(h, alice), balance(h, bob), merchant_balance(h, 1));
        let before = snapshot(&h);
        let pin_required = answer(&mut h, 41, p.id, true, None);
        assert_eq!(pin_required, Err(AnswerError::Funding(FundingError::PinRequired)), "above the PIN-free budget");
        assert_eq!(
            answer(&mut h, 41, p.id, true, Some(false)),
            Err(AnswerError::Funding(FundingError::WrongPin { attempts_left: 4 }))
        );
        assert_eq!(
            answer(&mut h, 42, p.id, true, Some(true)),
            Err(AnswerError::Funding(FundingError::InsufficientFunds))
        );
        assert_eq!(answer(&mut h, 99, p.id, true, Some(true)), Err(AnswerError::SessionInvalid));
        assert_eq!(answer(&mut h, 41, 999, true, Some(true)), Err(AnswerError::Payment(PaymentError::UnknownPayment)));
        set_status(&mut h, 1, MerchantStatus::Suspended).unwrap();
        let suspended = answer(&mut h, 41, p.id, true, Some(true));
        assert_eq!(
            suspended,
            Err(AnswerError::Payment(PaymentError::MerchantNotActive { status: MerchantStatus::Suspended }))
        );
        set_status(&mut h, 1, MerchantStatus::Active).unwrap();
        assert_eq!(snapshot(&h), before);
        assert_eq!(h.state.merchants().payment(p.id).unwrap().status, PaymentStatus::RequiresApproval);
        assert_eq!(outgoing_today(&h, alice), Amount::ZERO);
        // With the PIN it goes through; the PIN-free budget is untouched.
        assert!(answer(&mut h, 41, p.id, true, Some(true)).is_ok());
        assert_eq!(h.state.limits().pin_free_used(alice, h.now), Amount::ZERO);
        // Declining: no PIN needed, no money.
        let q = create(&mut h, 1, "o-2", 1_000, CaptureMethod::Automatic);
        let declined = answer(&mut h, 42, q.id, false, None).unwrap();
        assert_eq!((declined.status, declined.cancel_reason), (PaymentStatus::Canceled, Some(CancelReason::Declined)));
        assert_eq!(balance(&h, bob), (10_000, 0));
        // Within the PIN-free budget, no PIN, and the budget is spent.
        let r = create(&mut h, 1, "o-3", 5_000, CaptureMethod::Automatic);
        answer(&mut h, 42, r.id, true, None).unwrap();
        assert_eq!(h.state.limits().pin_free_used(bob, h.now), won(5_000));
    }

    #[test]
    fn the_daily_limit_applies_to_approvals_and_a_void_gives_the_day_back() {
        let World { mut h, alice, .. } = world();
        let tier = h.state.wallets().user(alice).unwrap().tier;
        let limits = kasa_core::limits::TierLimits { balance_cap: won(500_000), daily_outgoing: won(100_000) };
        let set = kasa_core::wallet::Command::SetTierLimits { tier, limits };
        super::support::wallet::wallet(&mut h, set);
        let first = create(&mut h, 1, "first", 60_000, CaptureMethod::Manual);
        answer(&mut h, 41, first.id, true, Some(true)).unwrap();
        let second = create(&mut h, 1, "second", 40_001, CaptureMethod::Automatic);
        let refused = answer(&mut h, 41, second.id, true, Some(true));
        let Err(AnswerError::Funding(FundingError::LimitExceeded(e))) = refused else { panic!("{refused:?}") };
        assert_eq!(e.remaining, won(40_000));
        assert_eq!(balance(&h, alice), (300_000, 60_000));
        cancel_key(&mut h, 1, first.id).unwrap();
        assert!(answer(&mut h, 41, second.id, true, Some(true)).is_ok(), "the void gave the day back");
        assert_eq!(outgoing_today(&h, alice), won(40_001));
    }

    #[test]
    fn races_are_decided_once_by_the_sequencer_s_order() {
        let World { mut h, .. } = world();
        // Capture against cancel, in one batch: the first wins, the second sees its result.
        let p = create(&mut h, 1, "o-1", 9_000, CaptureMethod::Manual);
        answer(&mut h, 41, p.id, true, None).unwrap();
        let cancel = kasa_core::Command::Merchant(Command::AsKey {
            key_hash: [1; 32],
            command: KeyCommand::CancelPayment { payment_id: p.id },
        });
        let mut outcomes = h.apply(vec![capture_command(1, p.id, None), cancel]);
        assert!(matches!(key_outcome(outcomes.remove(0)), KeyOutcome::PaymentCaptured(Ok(_))));
        assert_eq!(
            key_outcome(outcomes.remove(0)),
            KeyOutcome::PaymentCanceled(Err(PaymentError::WrongStatus { status: PaymentStatus::Succeeded }))
        );
        // Two refunds past the captured amount in one batch: the second is refused.
        let mut outcomes = h.apply(vec![refund_command(1, p.id, 6_000), refund_command(1, p.id, 6_000)]);
        assert!(matches!(key_outcome(outcomes.remove(0)), KeyOutcome::Refunded(Ok(_))));
        assert_eq!(
            key_outcome(outcomes.remove(0)),
            KeyOutcome::Refunded(Err(PaymentError::AmountTooLarge { max: won(3_000) }))
        );
        // Approve against expiry: at the expiry time the expiry runs first.
        let q = create(&mut h, 1, "o-2", 1_000, CaptureMethod::Automatic);
        h.now = q.expires_at;
        let late = answer(&mut h, 41, q.id, true, None);
        assert_eq!(late, Err(AnswerError::Payment(PaymentError::WrongStatus { status: PaymentStatus::Canceled })));
        // Two users approving one payment in one batch: one pays.
        let r = create(&mut h, 1, "o-3", 1_000, CaptureMethod::Automatic);
        let mut outcomes = h.apply(vec![answer_command(41, r.id, true, None), answer_command(42, r.id, true, None)]);
        assert!(answered(outcomes.remove(0)).is_ok());
        assert_eq!(
            answered(outcomes.remove(0)),
            Err(AnswerError::Payment(PaymentError::WrongStatus { status: PaymentStatus::Succeeded }))
        );
    }

    fn settle(
        h: &mut Harness,
        payout_id: u64,
        result: kasa_core::wallet::BankResult,
    ) -> Option<kasa_core::merchant::Payout> {
        match merchant_command(h, Command::SettlePayout { payout_id, result }) {
            Outcome::PayoutSettled(p) => p,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    /// Moves the harness to the start of the next KST day, where the payout run starts.
    fn next_kst_day(h: &mut Harness) {
        let day = kasa_core::time::kst_day(h.now);
        h.now = kasa_core::merchant::payout::kst_day_start(day + 1);
        h.apply(vec![]);
    }

    #[test]
    fn each_kst_day_every_merchant_s_balance_is_paid_out_by_the_bank_s_answer() {
        use kasa_core::merchant::PayoutStatus;
        use kasa_core::wallet::BankResult;
        let World { mut h, .. } = world();
        let p = create(&mut h, 1, "o-1", 10_000, CaptureMethod::Automatic);
        answer(&mut h, 41, p.id, true, None).unwrap();
        refund(&mut h, 1, p.id, 2_000).unwrap();
        let q = create(&mut h, 2, "o-2", 3_000, CaptureMethod::Automatic);
        answer(&mut h, 41, q.id, true, None).unwrap();
        h.take_events();
        assert!(h.state.merchants().payouts_before(None, u64::MAX, 10).is_empty(), "not before the day turns");
        next_kst_day(&mut h);
        // Merchant 1: 10,000 - 250 fee - 2,000 refund + 50 fee back = 7,800; merchant 2 (no fee): 3,000.
        let payouts: Vec<(u64, u64, PayoutStatus)> = h
            .state
            .merchants()
            .payouts_before(None, u64::MAX, 10)
            .iter()
            .map(|p| (p.merchant_id, p.amount.minor(), p.status))
            .collect();
        assert_eq!(payouts, [(2, 3_000, PayoutStatus::Pending), (1, 7_800, PayoutStatus::Pending)]);
        assert_eq!(names(&mut h), ["payout.created", "payout.created"]);
        assert_eq!(merchant_balance(&h, 1), 7_800, "posted only when the bank pays");
        let paid = settle(&mut h, 1, BankResult::Approved).unwrap();
        assert_eq!((paid.status, merchant_balance(&h, 1)), (PayoutStatus::Paid, 0));
        assert_eq!(settle(&mut h, 1, BankResult::Declined).unwrap().status, PayoutStatus::Paid, "answered once");
        assert_eq!(settle(&mut h, 99, BankResult::Approved), None);
        // A failed payout leaves the money owed; the next day pays it, covering from before it.
        let failed = settle(&mut h, 2, BankResult::Declined).unwrap();
        assert_eq!((failed.status, merchant_balance(&h, 2)), (PayoutStatus::Failed, 3_000));
        assert_eq!(names(&mut h), ["payout.paid", "payout.failed"]);
        h.restart();
        // A refund after the payout takes merchant 1 below zero: no payout for it that day.
        refund(&mut h, 1, p.id, 1_000).unwrap();
        assert_eq!(merchant_balance(&h, 1), -1_000 + 25);
        next_kst_day(&mut h);
        let again: Vec<(u64, u64)> = h
            .state
            .merchants()
            .payouts_before(None, u64::MAX, 1)
            .iter()
            .map(|p| (p.merchant_id, p.amount.minor()))
            .collect();
        assert_eq!(again, [(2, 3_000)]);
        let p3 = h.state.merchants().payout(3).unwrap().clone();
        assert_eq!(items_sum(&h, &p3), 3_000, "the failed payout's movements are covered again");
        settle(&mut h, 3, BankResult::Approved).unwrap();
        assert_eq!(merchant_balance(&h, 2), 0);
        h.restart();
    }

    /// What a payout's items add up to: the merchant balance's movements in its ranges, less
    /// payouts.
    fn items_sum(h: &Harness, p: &kasa_core::merchant::Payout) -> i128 {
        let balance = chart::MERCHANT_BALANCE.id(p.merchant_id);
        let mut sum = 0i128;
        for &(after, up_to) in p.covers.as_slice() {
            for t in h.state.books().account_transfers(balance, after + 1, up_to, 10_000) {
                let (kind, _) = chart::id_parts(t.id);
                if kind == chart::PAYOUT.number || kind == chart::PAYOUT_RESOLVE.number || kind == chart::PAYMENT.number
                {
                    continue;
                }
                sum += if t.credit_account_id == balance { t.amount as i128 } else { -(t.amount as i128) };
            }
        }
        sum
    }

    #[test]
    fn a_payout_that_fails_after_the_next_was_made_is_covered_by_the_one_after() {
        use kasa_core::wallet::BankResult;
        let World { mut h, .. } = world();
        let pay = |h: &mut Harness, order: &str, amount: u64| {
            let p = create(h, 2, order, amount, CaptureMethod::Automatic);
            login(h, 1, 41, true).unwrap();
            answer(h, 41, p.id, true, None).unwrap();
        };
        pay(&mut h, "o-1", 1_000);
        next_kst_day(&mut h); // payout 1: 1,000, and the bank is slow
        pay(&mut h, "o-2", 2_000);
        next_kst_day(&mut h); // payout 2: 2,000, made while payout 1 is at the bank
        settle(&mut h, 1, BankResult::Declined).unwrap();
        settle(&mut h, 2, BankResult::Approved).unwrap();
        h.restart();
        pay(&mut h, "o-3", 4_000);
        next_kst_day(&mut h); // payout 3: the failed 1,000 and the new 4,000
        let payouts: Vec<kasa_core::merchant::Payout> =
            (1..=3).map(|id| h.state.merchants().payout(id).unwrap().clone()).collect();
        let amounts: Vec<u64> = payouts.iter().map(|p| p.amount.minor()).collect();
        assert_eq!(amounts, [1_000, 2_000, 5_000]);
        for p in &payouts {
            assert_eq!(items_sum(&h, p), i128::from(p.amount.minor()), "payout {}: {:?}", p.id, p.covers);
        }
        assert_eq!(payouts[2].covers.as_slice().len(), 2);
        h.restart();
    }

    #[test]
    fn a_replay_rebuilds_the_same_state() {
        let World { h: mut base, .. } = world();
        let mut h = Harness::recording();
        // Replay from the start: build the same world in a recording harness.
        std::mem::swap(&mut h.state, &mut base.state);
        h.state = kasa_core::State::default();
        h.state.audit_limits(true);
        onboard(&mut h, "120-81-47521", FEE_BPS).unwrap();
        key(&mut h, 1, 1, all_scopes()).unwrap();
        let alice = funded(&mut h, "010-1111-2222", 300_000);
        login(&mut h, alice, 41, true).unwrap();
        for i in 0..5 {
            let p = create(
                &mut h,
                1,
                &format!("o-{i}"),
                1_000 + i,
                if i % 2 == 0 { CaptureMethod::Automatic } else { CaptureMethod::Manual },
            );
            answer(&mut h, 41, p.id, true, None).unwrap();
            if i % 2 == 1 {
                capture(&mut h, 1, p.id, Some(500)).unwrap();
            }
            refund(&mut h, 1, p.id, 100).unwrap();
        }
        let (replayed, events) = h.replay();
        assert_eq!(replayed.hash(), h.state.hash());
        assert_eq!(events, h.take_events());
        replayed.check_invariants().unwrap();
    }

    /// In-store payments: a store's static QR code, a QR code for one sale, a payment code the
    /// user shows; each made and paid in one command, refused without a trace.
    mod instore {
        use super::*;
        use kasa_core::merchant::{Channel, CodeCharge, InStoreError, Scan};
        use kasa_core::wallet::{CodeError, PaymentCode, PAYMENT_CODE_SECONDS};

        /// What merchant 1's codes show as its name.
        fn shop_name() -> DisplayName {
            DisplayName::new("카사상점").unwrap()
        }

        fn shop() -> World {
            let mut w = world();
            store(&mut w.h, 1, "강남점").unwrap();
            store(&mut w.h, 2, "other").unwrap();
            w.h.take_events();
            w
        }

        fn scan(h: &mut Harness, token: u8, scan: Scan, pin_ok: Option<bool>) -> Result<Payment, InStoreError> {
            let command = Command::PayByQr { token_hash: [token; 32], scan, pin_ok };
            match h.apply(vec![kasa_core::Command::Merchant(command)]).remove(0) {
                kasa_core::Outcome::Merchant(Outcome::QrPaid(r)) => r.map(|a| a.payment),
                other => panic!("unexpected outcome {other:?}"),
            }
        }

        fn one_sale(
            h: &mut Harness,
            key: u8,
            store_id: u64,
            order: &str,
            amount: u64,
        ) -> Result<Payment, PaymentError> {
            let command = KeyCommand::CreateStoreQr {
                store_id,
                order_id: OrderId::new(order).unwrap(),
                item_name: None,
                amount: won(amount),
                expires_in_seconds: 300,
            };
            match as_key(h, key, command) {
                KeyOutcome::StoreQrCreated(r) => r.map(|(payment, _, _)| payment),
                other => panic!("unexpected outcome {other:?}"),
            }
        }

        fn issue(h: &mut Harness, user_id: u64, pin_ok: Option<bool>) -> Result<PaymentCode, FundingError> {
            match super::super::support::wallet::wallet(
                h,
                kasa_core::wallet::Command::IssuePaymentCode { user_id, pin_ok },
            ) {
                kasa_core::wallet::Outcome::PaymentCodeIssued(r) => r,
                other => panic!("unexpected outcome {other:?}"),
            }
        }

        fn charge_command(key: u8, user_id: u64, counter: u32, order: &str, amount: u64) -> kasa_core::Command {
            let charge = CodeCharge {
                user_id,
                counter,
                store_id: 1,
                order_id: OrderId::new(order).unwrap(),
                item_name: None,
                amount: won(amount),
            };
            kasa_core::Command::Merchant(Command::ChargeCode { key_hash: [key; 32], charge: Box::new(charge) })
        }

        fn charged(outcome: kasa_core::Outcome) -> Result<Payment, InStoreError> {
            match outcome {
                kasa_core::Outcome::Merchant(Outcome::CodeCharged { outcome, .. }) => outcome,
                other => panic!("unexpected outcome {other:?}"),
            }
        }

        fn charge(
            h: &mut Harness,
            key: u8,
            user_id: u64,
            counter: u32,
            order: &str,
            amount: u64,
        ) -> Result<Payment, InStoreError> {
            charged(h.apply(vec![charge_command(key, user_id, counter, order, amount)]).remove(0))
        }

        #[test]
        fn a_static_code_makes_and_pays_a_payment_for_the_store_in_one_step() {
            let World { mut h, alice, .. } = shop();
            let paid =
                scan(&mut h, 41, Scan::Static { store_id: 1, amount: won(8_000), merchant_name: shop_name() }, None)
                    .unwrap();
            assert_eq!(
                (paid.status, paid.channel, paid.store_id),
                (PaymentStatus::Succeeded, Channel::StaticQr, Some(1))
            );
            assert_eq!((paid.user_id, paid.captured, paid.fee), (alice, won(8_000), fee_of(won(8_000), FEE_BPS)));
            assert_eq!((paid.order_id.as_str(), paid.item_name.as_str()), ("kasa_qr_1", "강남점"));
            assert_eq!(balance(&h, alice), (292_000, 0));
            assert_eq!(merchant_balance(&h, 1), 8_000 - 200);
            assert_eq!(names(&mut h), ["payment.created", "payment.approved", "payment.succeeded"]);
            let e = &history(&h.state, alice, HistoryCursor::default(), 1)[0];
            assert_eq!((e.kind, e.store_name.as_deref()), (EntryKind::Payment, Some("강남점")));
            assert_eq!(h.state.limits().pin_free_used(alice, h.now), won(8_000), "PIN-free: the budget is spent");
            // Refused without a trace: above the PIN-free budget without the PIN, a wrong PIN
            // (counted), a store that does not exist, a suspended merchant, no money, no session.
            let before = (balance(&h, alice), h.state.merchants().payment(2).is_none());
            let big = Scan::Static { store_id: 1, amount: won(60_000), merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, big.clone(), None), Err(InStoreError::Funding(FundingError::PinRequired)));
            let wrong = scan(&mut h, 41, big.clone(), Some(false));
            assert_eq!(wrong, Err(InStoreError::Funding(FundingError::WrongPin { attempts_left: 4 })));
            let nowhere = Scan::Static { store_id: 9, amount: won(1_000), merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, nowhere, None), Err(InStoreError::Payment(PaymentError::UnknownStore)));
            let zero = Scan::Static { store_id: 1, amount: Amount::ZERO, merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, zero, None), Err(InStoreError::Payment(PaymentError::InvalidAmount)));
            let poor = Scan::Static { store_id: 1, amount: won(20_000), merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 42, poor, None), Err(InStoreError::Funding(FundingError::InsufficientFunds)));
            assert_eq!(scan(&mut h, 99, big.clone(), Some(true)), Err(InStoreError::SessionInvalid));
            set_status(&mut h, 1, MerchantStatus::Suspended).unwrap();
            let suspended = scan(&mut h, 41, big.clone(), Some(true));
            assert_eq!(
                suspended,
                Err(InStoreError::Payment(PaymentError::MerchantNotActive { status: MerchantStatus::Suspended }))
            );
            set_status(&mut h, 1, MerchantStatus::Active).unwrap();
            // A code that shows another name than the merchant it pays (a sticker over the
            // shop's own) is refused.
            let sticker =
                Scan::Static {
                    store_id: 1, amount: won(1_000), merchant_name: DisplayName::new("스타벅스").unwrap()
                };
            assert_eq!(scan(&mut h, 41, sticker, None), Err(InStoreError::QrMismatch));
            assert_eq!((balance(&h, alice), h.state.merchants().payment(2).is_none()), before);
            // With the PIN it goes through, and the merchant refunds it like any payment.
            let paid = scan(&mut h, 41, big, Some(true)).unwrap();
            assert_eq!(paid.order_id.as_str(), "kasa_qr_2");
            refund(&mut h, 1, paid.id, 10_000).unwrap();
            assert_eq!(balance(&h, alice), (292_000 - 50_000, 0));
            h.restart();
        }

        #[test]
        fn a_one_sale_code_is_paid_once_for_its_amount_before_it_expires() {
            let World { mut h, alice, bob } = shop();
            let sale = one_sale(&mut h, 1, 1, "till-1", 4_500).unwrap();
            assert_eq!(
                (sale.status, sale.channel, sale.item_name.as_str()),
                (PaymentStatus::RequiresApproval, Channel::DynamicQr, "강남점")
            );
            assert_eq!(
                one_sale(&mut h, 1, 2, "till-x", 4_500),
                Err(PaymentError::UnknownStore),
                "another merchant's store"
            );
            assert_eq!(one_sale(&mut h, 1, 1, "till-1", 4_500), Err(PaymentError::OrderExists { payment_id: sale.id }));
            let code = |amount: Option<u64>| Scan::Dynamic {
                payment_id: sale.id,
                store_id: 1,
                amount: amount.map(won),
                merchant_name: shop_name(),
            };
            let mismatch = scan(&mut h, 41, code(Some(450)), None);
            assert_eq!(mismatch, Err(InStoreError::AmountMismatch { expected: won(4_500) }));
            let elsewhere =
                Scan::Dynamic { payment_id: sale.id, store_id: 2, amount: None, merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, elsewhere, None), Err(InStoreError::Payment(PaymentError::UnknownPayment)));
            // Its token is the link's, but the online approval path does not answer it: whoever
            // saw the till's screen cannot decline it.
            assert_eq!(
                answer(&mut h, 42, sale.id, false, None),
                Err(AnswerError::Payment(PaymentError::UnknownPayment))
            );
            assert_eq!(one_sale(&mut h, 1, 1, "kasa_qr_9", 10), Err(PaymentError::ReservedOrderId));
            let online = create(&mut h, 1, "web-1", 1_000, CaptureMethod::Automatic);
            let not_a_code =
                Scan::Dynamic { payment_id: online.id, store_id: 1, amount: None, merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, not_a_code, None), Err(InStoreError::Payment(PaymentError::UnknownPayment)));
            // Two users scan it in one batch: one pays, the other is told it was used.
            let both = vec![
                kasa_core::Command::Merchant(Command::PayByQr {
                    token_hash: [41; 32],
                    scan: code(Some(4_500)),
                    pin_ok: None,
                }),
                kasa_core::Command::Merchant(Command::PayByQr { token_hash: [42; 32], scan: code(None), pin_ok: None }),
            ];
            let outcomes = h.apply(both);
            let results: Vec<_> = outcomes
                .into_iter()
                .map(|o| match o {
                    kasa_core::Outcome::Merchant(Outcome::QrPaid(r)) => r.map(|a| a.payment.status),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(results, [Ok(PaymentStatus::Succeeded), Err(InStoreError::QrUsed)]);
            assert_eq!((balance(&h, alice).0, balance(&h, bob).0), (295_500, 10_000));
            // A code nobody scanned expires with its payment.
            let late = one_sale(&mut h, 1, 1, "till-2", 1_000).unwrap();
            h.now = late.expires_at;
            let expired = scan(
                &mut h,
                42,
                Scan::Dynamic { payment_id: late.id, store_id: 1, amount: None, merchant_name: shop_name() },
                None,
            );
            assert_eq!(expired, Err(InStoreError::QrExpired));
            assert_eq!(h.state.merchants().payment(late.id).unwrap().cancel_reason, Some(CancelReason::Expired));
            // One the merchant withdrew reads as expired too.
            let withdrawn = one_sale(&mut h, 1, 1, "till-3", 1_000).unwrap();
            cancel_key(&mut h, 1, withdrawn.id).unwrap();
            let scanned =
                Scan::Dynamic { payment_id: withdrawn.id, store_id: 1, amount: None, merchant_name: shop_name() };
            assert_eq!(scan(&mut h, 41, scanned, None), Err(InStoreError::QrExpired));
            h.restart();
        }

        #[test]
        fn a_payment_code_is_charged_once_within_its_minute_and_its_consent() {
            let World { mut h, alice, bob } = shop();
            let code = issue(&mut h, alice, None).unwrap();
            assert_eq!((code.counter, code.with_pin, code.used), (1, false, false));
            assert_eq!(code.expires_at(), code.issued_at + u64::from(PAYMENT_CODE_SECONDS) * SECOND);
            let paid = charge(&mut h, 1, alice, 1, "pos-1", 9_000).unwrap();
            assert_eq!(
                (paid.status, paid.channel, paid.user_id),
                (PaymentStatus::Succeeded, Channel::PaymentCode, alice)
            );
            assert_eq!(names(&mut h), ["payment.created", "payment.approved", "payment.succeeded"]);
            assert_eq!(charge(&mut h, 1, alice, 1, "pos-2", 9_000), Err(InStoreError::Code(CodeError::Used)));
            // A new code replaces the old one; the old one is no longer valid.
            let code = issue(&mut h, alice, None).unwrap();
            assert_eq!(code.counter, 2);
            assert_eq!(charge(&mut h, 1, alice, 1, "pos-2", 1_000), Err(InStoreError::Code(CodeError::Invalid)));
            assert_eq!(
                charge(&mut h, 1, bob, 1, "pos-2", 1_000),
                Err(InStoreError::Code(CodeError::Invalid)),
                "never issued"
            );
            // Without the PIN, only up to the PIN-free budget; the refusal leaves the code unused.
            let over = charge(&mut h, 1, alice, 2, "pos-2", 45_000);
            assert_eq!(over, Err(InStoreError::Funding(FundingError::PinRequired)));
            // The merchant's side is checked too: its own store, a live scoped key, a new order.
            let mut other_store = charge_command(2, alice, 2, "pos-2", 1_000);
            if let kasa_core::Command::Merchant(Command::ChargeCode { charge, .. }) = &mut other_store {
                charge.store_id = 1;
            }
            assert_eq!(
                charged(h.apply(vec![other_store]).remove(0)),
                Err(InStoreError::Payment(PaymentError::UnknownStore))
            );
            assert_eq!(
                charge(&mut h, 1, alice, 2, "pos-1", 1_000),
                Err(InStoreError::Payment(PaymentError::OrderExists { payment_id: paid.id }))
            );
            assert!(matches!(charge(&mut h, 9, alice, 2, "pos-2", 1_000), Err(InStoreError::Key(_))));
            // After its minute, it is expired.
            h.now = code.expires_at();
            assert_eq!(charge(&mut h, 1, alice, 2, "pos-2", 1_000), Err(InStoreError::Code(CodeError::Expired)));
            assert_eq!(balance(&h, alice), (291_000, 0));
            // Issued with the PIN, it covers more than the budget, up to the daily limit.
            let code = issue(&mut h, alice, Some(true)).unwrap();
            assert!(code.with_pin);
            let big = charge(&mut h, 1, alice, code.counter, "pos-3", 100_000).unwrap();
            assert_eq!(big.captured, won(100_000));
            h.restart();
        }

        #[test]
        fn two_merchants_charging_one_code_at_once_get_one_payment() {
            let World { mut h, alice, .. } = shop();
            store(&mut h, 2, "second").unwrap();
            let code = issue(&mut h, alice, None).unwrap();
            let mut second = charge_command(2, alice, code.counter, "b-1", 2_000);
            if let kasa_core::Command::Merchant(Command::ChargeCode { charge, .. }) = &mut second {
                charge.store_id = 3;
            }
            let outcomes: Vec<_> = h
                .apply(vec![charge_command(1, alice, code.counter, "a-1", 3_000), second])
                .into_iter()
                .map(charged)
                .collect();
            assert!(outcomes[0].is_ok());
            assert_eq!(outcomes[1], Err(InStoreError::Code(CodeError::Used)));
            assert_eq!(balance(&h, alice), (297_000, 0));
        }

        #[test]
        fn a_locked_pin_issues_no_code_and_stops_a_code_issued_before() {
            let World { mut h, alice, .. } = shop();
            let code = issue(&mut h, alice, None).unwrap();
            for attempts_left in (1..5).rev() {
                assert_eq!(issue(&mut h, alice, Some(false)), Err(FundingError::WrongPin { attempts_left }));
            }
            let locked = issue(&mut h, alice, Some(false));
            assert!(matches!(locked, Err(FundingError::PinLocked { .. })), "{locked:?}");
            assert!(matches!(issue(&mut h, alice, None), Err(FundingError::PinLocked { .. })));
            let refused = charge(&mut h, 1, alice, code.counter, "pos-1", 1_000);
            assert!(matches!(refused, Err(InStoreError::Funding(FundingError::PinLocked { .. }))), "{refused:?}");
            assert!(!h.state.wallets().payment_code(alice).unwrap().used);
            assert_eq!(balance(&h, alice), (300_000, 0));
        }
    }
}
