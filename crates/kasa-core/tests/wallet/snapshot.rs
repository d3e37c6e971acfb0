//! Snapshots after a rich scenario: the decoded state has the same hash and the same bytes,
//! answers every query the same (histories, listings, bank accounts, sessions, codes), and
//! goes on exactly like the original: the derived indexes that a snapshot does not hold
//! (holds by number, codes by phone, sessions by user and by expiry, returned holds, pending
//! fundings) are rebuilt, as the same commands applied to both show.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::idempotency::{IdempotencyKey, KeyScope};
use kasa_core::limits::{Tier, TierLimits};
use kasa_core::outbox::{self, ConsumerName};
use kasa_core::wallet::remittance::HOLD_SECONDS;
use kasa_core::wallet::{
    BankResult, Command, Direction, FundingKind, HistoryCursor, Name, PinHash, Recipient, RequestRole,
};
use kasa_core::{Inner, Keyed, State};

/// A state with something in every wallet table and index.
fn rich() -> Harness {
    let mut h = Harness::default();
    let a = funded(&mut h, "01010000001", 300_000);
    let b = funded(&mut h, "01010000002", 200_000);
    let c = sign_up(&mut h, "01010000003").unwrap();
    set_fee(&mut h, 300).unwrap();
    user_changed(&mut h, Command::SetTier { user_id: b, tier: Tier::Verified }).unwrap();
    let limits = TierLimits { balance_cap: won(500_000), daily_outgoing: won(400_000) };
    wallet(&mut h, Command::SetTierLimits { tier: Tier::Basic, limits });
    // Fundings: pending, declined, succeeded with a fee.
    start(&mut h, a, 1, FundingKind::Withdrawal, 10_000, Some(true)).unwrap();
    let declined = start(&mut h, b, 2, FundingKind::Withdrawal, 5_000, Some(true)).unwrap();
    settle(&mut h, declined.id, BankResult::Declined);
    let paid = start(&mut h, b, 2, FundingKind::Withdrawal, 7_000, None).unwrap();
    settle(&mut h, paid.id, BankResult::Approved);
    link(&mut h, c, "5555555555").unwrap();
    start(&mut h, c, 3, FundingKind::TopUp, 20_000, None).unwrap();
    // Remittances: completed, held for two numbers, cancelled, returned.
    send(&mut h, a, Recipient::User(c), 15_000, None).unwrap();
    let returned = send(&mut h, a, Recipient::Phone(phone("01020000003")), 2_000, Some(true)).unwrap();
    h.now = returned.created_at + u64::from(HOLD_SECONDS) * SECOND;
    send(&mut h, a, Recipient::Phone(phone("01020000001")), 4_000, None).unwrap();
    send(&mut h, b, Recipient::Phone(phone("01020000001")), 6_000, Some(true)).unwrap();
    let cancelled = send(&mut h, b, Recipient::Phone(phone("01020000002")), 1_000, Some(true)).unwrap();
    cancel(&mut h, b, cancelled.id).unwrap();
    send(&mut h, a, Recipient::Phone(phone("01020000004")), 3_000, Some(true)).unwrap();
    // Requests: paid, declined, pending; a split bill.
    let r = request(&mut h, c, Recipient::User(a), 1_500).unwrap();
    answer(&mut h, a, r.id, true, None).unwrap();
    let r = request(&mut h, c, Recipient::User(b), 2_500).unwrap();
    answer(&mut h, b, r.id, false, None).unwrap();
    request(&mut h, a, Recipient::User(b), 3_500).unwrap();
    split(&mut h, b, 9_000, vec![(Recipient::User(a), 3_000), (Recipient::User(c), 3_000)]).unwrap();
    // Adjustments, sessions, a lock, codes, a keyed command, an outbox cursor.
    adjust(&mut h, c, 1_000, Direction::Credit, "보상").unwrap();
    adjust(&mut h, b, 500, Direction::Debit, "회수").unwrap();
    for token in 1..=3 {
        login(&mut h, a, token, true).unwrap();
    }
    login(&mut h, b, 10, true).unwrap();
    for _ in 0..5 {
        login(&mut h, c, 20, false).unwrap_err();
    }
    for n in 1..=3 {
        start_verification(&mut h, verification_id(n), &phone("01030000001"), "123456").unwrap();
    }
    start_verification(&mut h, verification_id(4), &phone("01020000001"), "123456").unwrap();
    let keyed = Keyed {
        scope: KeyScope::Session([1; 32]),
        key: IdempotencyKey::new("k1").unwrap(),
        request_hash: [7; 32],
        command: Inner::Wallet(Command::RequestMoney {
            requester: a,
            from: Recipient::User(c),
            amount: won(700),
            memo: memo(""),
        }),
    };
    h.apply(vec![kasa_core::Command::Keyed(Box::new(keyed))]);
    let consumer = ConsumerName::new("bank_rail").unwrap();
    h.apply(vec![kasa_core::Command::Outbox(outbox::Command::AdvanceCursor { consumer, to: 5 })]);
    h
}

/// Everything a reader can ask about the wallets, as text.
fn queries(state: &State) -> String {
    let w = state.wallets();
    let mut out = String::new();
    for id in 1..=w.users_count() as u64 {
        let user = w.user(id).unwrap();
        out += &format!("user {user:?} by phone {:?}\n", w.user_by_phone(&user.phone).map(|u| u.id));
        out += &format!("history {:?}\n", history(state, id, HistoryCursor::default(), 100));
        for role in [RequestRole::Payer, RequestRole::Requester] {
            let page = w.list_requests(id, role, 0, 100, |_| true);
            out += &format!("{role:?} {:?} {:?}\n", page.items, page.next_before);
        }
        out += &format!("banks {:?}\n", w.bank_accounts_of(id).collect::<Vec<_>>());
        out += &format!("returned {:?}\n", w.returned_before(id, 0, 100));
        out += &format!("outgoing {:?}\n", state.limits().outgoing_today(id, state.last_timestamp()));
        out += &format!("pin-free {:?}\n", state.limits().pin_free_used(id, state.last_timestamp()));
    }
    for token in [1u8, 2, 3, 10, 20] {
        out += &format!("session {token} {:?}\n", w.session(&[token; 32], state.last_timestamp()));
    }
    for n in 1..=4 {
        out += &format!("verification {n} {:?}\n", w.verification(&verification_id(n)));
    }
    out += &format!("pending fundings {:?}\n", w.pending_fundings().collect::<Vec<_>>());
    out += &format!("fees {:?} limits {:?}\n", state.fees(), state.limits().tier(Tier::Basic));
    out += &format!("cursor {} last seq {}\n", state.outbox().cursor("bank_rail"), state.outbox().last_seq());
    out += &format!("keys {}\n", state.idempotency().len());
    out
}

/// Applies the same batch to both harnesses; the outcomes and the states must agree.
fn both(h: &mut Harness, r: &mut Harness, commands: Vec<Command>) {
    let commands: Vec<kasa_core::Command> = commands.into_iter().map(kasa_core::Command::Wallet).collect();
    assert_eq!(h.apply(commands.clone()), r.apply(commands));
    assert_eq!(h.state.hash(), r.state.hash());
}

#[test]
fn a_snapshot_after_a_rich_scenario_keeps_every_answer_and_goes_on_identically() {
    let mut h = rich();
    h.take_events();
    let bytes = h.state.encode_snapshot();
    let restored = State::decode_snapshot(&bytes).unwrap();
    assert_eq!(restored.hash(), h.state.hash());
    assert_eq!(restored.encode_snapshot(), bytes, "the same bytes again");
    assert_eq!(queries(&restored), queries(&h.state));
    assert!(queries(&restored).contains("returned [("), "the scenario has a returned hold");

    let mut r = Harness { state: restored, now: h.now, events: Vec::new(), journal: None };
    r.state.audit_limits(true);
    let number = phone("01020000001");
    let coded = phone("01030000001");
    let pin_hash = PinHash::new(HASH).unwrap();
    let name = Name::new("새 사용자").unwrap();
    // The number with holds signs up and claims them (holds by number); a fourth code for a
    // number with three replaces the oldest (codes by phone); sixteen more logins close the
    // oldest sessions (sessions by user).
    both(
        &mut h,
        &mut r,
        vec![
            Command::SignUp {
                phone: number.clone(),
                name: name.clone(),
                pin_hash: pin_hash.clone(),
                proof: proof(verification_id(4), &number, "123456"),
            },
            Command::StartVerification { id: verification_id(5), phone: coded.clone(), code_hash: [0; 32] },
            Command::SignUp {
                phone: coded.clone(),
                name,
                pin_hash,
                proof: proof(verification_id(1), &coded, "123456"),
            },
        ],
    );
    let d = h.state.wallets().user_by_phone(&number).unwrap().id;
    assert_eq!(balance(&h, d), (10_000, 0), "both holds claimed");
    assert_eq!(h.state.wallets().users_count(), 4, "the replaced code signs nobody up");
    both(
        &mut h,
        &mut r,
        (30..46)
            .map(|t| Command::OpenSession { user_id: 1, token_hash: [t; 32], pin_ok: true, ttl_seconds: 60 })
            .collect(),
    );
    assert!(h.state.wallets().session(&[1; 32], h.now).is_none());
    // The pending fundings settle; time passes: the last hold returns, sessions and codes
    // expire (expiry orders), the lock ends.
    both(&mut h, &mut r, vec![Command::SettleFunding { funding_id: 1, result: BankResult::Approved }]);
    h.advance(u64::from(HOLD_SECONDS) * SECOND);
    r.advance(u64::from(HOLD_SECONDS) * SECOND);
    both(&mut h, &mut r, vec![]);
    assert_eq!(h.state.wallets().sessions_count(), 0);
    assert_eq!(queries(&r.state), queries(&h.state));
    assert_eq!(h.events, r.events, "the same events, with the same seqs");
}
