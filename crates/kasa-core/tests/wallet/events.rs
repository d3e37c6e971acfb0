//! Events: every command that changes something emits its events, in order, numbered with
//! consecutive seqs across batches; a refused command emits none (but the lock a wrong PIN
//! caused); a replay of the same batches emits the same events with the same seqs, and so
//! does a replay from a snapshot.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::event::{Event as Numbered, EventKind};
use kasa_core::limits::Tier;
use kasa_core::money::Amount;
use kasa_core::wallet::remittance::HOLD_SECONDS;
use kasa_core::wallet::{
    BankCode, BankResult, CodeProof, Command, Direction, Event, FundingKind, FundingStatus, Name, PinHash, Reason,
    Recipient, Share,
};
use kasa_core::State;

/// One step of the scenario: time to let pass first, the batch, and the names of the events
/// it must emit, in order.
struct Step {
    advance: u64,
    commands: Vec<kasa_core::Command>,
    events: &'static [&'static str],
}

fn step(commands: Vec<Command>, events: &'static [&'static str]) -> Step {
    Step { advance: 0, commands: commands.into_iter().map(kasa_core::Command::Wallet).collect(), events }
}

const A: &str = "01011110000";
const B: &str = "01022220000";
const C: &str = "01033330000";

fn start_verification(n: u8, number: &str) -> Command {
    let number = phone(number);
    Command::StartVerification { id: verification_id(n), code_hash: code_hash(&number, "123456"), phone: number }
}

fn proof_of(n: u8, number: &str) -> CodeProof {
    proof(verification_id(n), &phone(number), "123456")
}

fn sign_up(n: u8, number: &str) -> Command {
    Command::SignUp {
        phone: phone(number),
        name: Name::new("김민지").unwrap(),
        pin_hash: PinHash::new(HASH).unwrap(),
        proof: proof_of(n, number),
    }
}

fn send(from_user: u64, to: Recipient, amount: u64, pin_ok: Option<bool>) -> Command {
    Command::Send { from_user, to, amount: won(amount), memo: memo("밥값"), pin_ok }
}

fn funding(user_id: u64, kind: FundingKind, amount: u64, pin_ok: Option<bool>) -> Command {
    Command::StartFunding { user_id, bank_account_id: 1, kind, amount: won(amount), pin_ok }
}

fn settle(funding_id: u64, result: BankResult) -> Command {
    Command::SettleFunding { funding_id, result }
}

fn to(number: &str) -> Recipient {
    Recipient::Phone(phone(number))
}

fn wrong_login(user_id: u64) -> Command {
    Command::OpenSession { user_id, token_hash: [9; 32], pin_ok: false, ttl_seconds: 60 }
}

/// Users 1 (A), 2 (B) and 3 (C, who signs up to a held remittance), every kind of event,
/// then commands that are refused.
fn scenario() -> Vec<Step> {
    let link = Command::LinkBankAccount {
        user_id: 1,
        bank_code: BankCode::new("088").unwrap(),
        account_number: sealed("1234567890"),
        holder_name: Name::new("김민지").unwrap(),
    };
    let shares = vec![
        Share { payer: Recipient::User(1), amount: won(3_000) },
        Share { payer: Recipient::User(3), amount: won(3_000) },
    ];
    let split = Command::SplitBill {
        requester: 2,
        total: won(9_000),
        shares: kasa_core::text::BoundedVec::new(shares).unwrap(),
        memo: memo("회식"),
    };
    let adjust = |amount: u64| Command::Adjust {
        user_id: 1,
        amount: won(amount),
        direction: Direction::Credit,
        reason: Reason::new("보상").unwrap(),
    };
    let reset = Command::ResetPin { phone: phone(B), proof: proof_of(4, B), pin_hash: PinHash::new(HASH).unwrap() };
    let refused = vec![
        send(1, Recipient::User(1), 1, None),
        send(2, Recipient::User(1), 1_000_000, Some(true)),
        sign_up(9, A),
        adjust(0),
        settle(99, BankResult::Approved),
        Command::CancelRemittance { user_id: 1, remittance_id: 99 },
        Command::RequestMoney { requester: 1, from: Recipient::User(1), amount: won(1), memo: memo("") },
        Command::AnswerRequest { payer: 1, request_id: 99, pay: true, pin_ok: None },
        Command::LinkBankAccount {
            user_id: 99,
            bank_code: BankCode::new("088").unwrap(),
            account_number: sealed("1234567890"),
            holder_name: Name::new("김민지").unwrap(),
        },
        funding(99, FundingKind::TopUp, 1, None),
        Command::SetTier { user_id: 99, tier: Tier::Verified },
        Command::SetTier { user_id: 2, tier: Tier::Verified },
        wrong_login(1),
    ];
    vec![
        step(vec![start_verification(1, A)], &[]),
        step(vec![sign_up(1, A)], &["user.signed_up"]),
        step(vec![start_verification(2, B), sign_up(2, B)], &["user.signed_up"]),
        step(vec![link], &["bank_account.linked"]),
        step(vec![funding(1, FundingKind::TopUp, 100_000, None)], &["funding.started"]),
        step(vec![settle(1, BankResult::Approved)], &["funding.settled"]),
        step(vec![settle(1, BankResult::Declined)], &[]),
        step(vec![send(1, Recipient::User(2), 10_000, None)], &["remittance.completed"]),
        step(vec![send(1, to(C), 5_000, None)], &["remittance.held"]),
        step(
            vec![send(1, to("01044440000"), 1_000, None), Command::CancelRemittance { user_id: 1, remittance_id: 3 }],
            &["remittance.held", "remittance.cancelled"],
        ),
        step(vec![send(1, to("01055550000"), 2_000, None)], &["remittance.held"]),
        step(vec![start_verification(3, C), sign_up(3, C)], &["user.signed_up", "remittance.claimed"]),
        step(
            vec![Command::RequestMoney { requester: 2, from: Recipient::User(1), amount: won(3_000), memo: memo("") }],
            &["money_request.created"],
        ),
        step(
            vec![Command::AnswerRequest { payer: 1, request_id: 1, pay: true, pin_ok: None }],
            &["remittance.completed", "money_request.paid"],
        ),
        step(vec![split], &["money_request.created", "money_request.created"]),
        step(
            vec![Command::AnswerRequest { payer: 3, request_id: 3, pay: false, pin_ok: None }],
            &["money_request.declined"],
        ),
        step(vec![wrong_login(2); 5], &["user.pin_locked"]),
        step(vec![Command::SetTier { user_id: 2, tier: Tier::Verified }], &["user.tier_changed"]),
        step(vec![start_verification(4, B), reset], &["user.pin_reset"]),
        step(vec![adjust(1_000)], &["wallet.adjusted"]),
        step(
            vec![funding(1, FundingKind::Withdrawal, 1_000, Some(true)), settle(2, BankResult::Expired)],
            &["funding.started", "funding.settled"],
        ),
        Step { advance: u64::from(HOLD_SECONDS) * SECOND, commands: vec![], events: &["remittance.returned"] },
        step(refused, &[]),
        // A wrong PIN is refused, but the lock it causes is news (the fifth, with the login above).
        step(vec![send(1, Recipient::User(2), 1, Some(false)); 4], &["user.pin_locked"]),
    ]
}

/// Runs the scenario, checking each step's event names; returns the state after each step.
fn run(h: &mut Harness) -> Vec<[u8; 32]> {
    let mut hashes = Vec::new();
    for (i, s) in scenario().into_iter().enumerate() {
        h.advance(s.advance);
        let first = h.events.len();
        h.apply(s.commands);
        let names: Vec<&str> = h.events[first..].iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, s.events, "step {i}");
        hashes.push(h.state.hash());
    }
    hashes
}

#[test]
fn each_command_emits_its_events_in_order_with_consecutive_seqs() {
    let mut h = Harness::recording();
    run(&mut h);
    let events = h.take_events();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(h.state.outbox().last_seq(), events.len() as u64);
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "in time order");
    assert!(events.iter().all(|e| e.timestamp <= h.state.last_timestamp()));
    // What the events say, not only their names.
    let kinds: Vec<Event> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Wallet(w) => w.clone(),
            other => panic!("a wallet workload emitted {other:?}"),
        })
        .collect();
    let amount = |won: u64| Amount::new(won);
    assert_eq!(
        kinds[..9],
        [
            Event::UserSignedUp { user_id: 1 },
            Event::UserSignedUp { user_id: 2 },
            Event::BankAccountLinked { user_id: 1, bank_account_id: 1 },
            Event::FundingStarted { funding_id: 1, user_id: 1, kind: FundingKind::TopUp, amount: amount(100_000) },
            Event::FundingSettled { funding_id: 1, user_id: 1, status: FundingStatus::Succeeded },
            Event::RemittanceCompleted { remittance_id: 1, from_user: 1, to_user: 2, amount: amount(10_000) },
            Event::RemittanceHeld { remittance_id: 2, from_user: 1, amount: amount(5_000) },
            Event::RemittanceHeld { remittance_id: 3, from_user: 1, amount: amount(1_000) },
            Event::RemittanceCancelled { remittance_id: 3 },
        ]
    );
    let find = |name: &str| kinds.iter().filter(|k| k.name() == name).cloned().collect::<Vec<_>>();
    assert_eq!(find("remittance.claimed"), [Event::RemittanceClaimed { remittance_id: 2, to_user: 3 }]);
    assert_eq!(find("remittance.returned"), [Event::RemittanceReturned { remittance_id: 4 }]);
    assert_eq!(find("money_request.paid"), [Event::RequestPaid { request_id: 1, remittance_id: 5 }]);
    assert_eq!(find("money_request.declined"), [Event::RequestDeclined { request_id: 3 }]);
    assert_eq!(find("user.tier_changed"), [Event::TierChanged { user_id: 2, tier: Tier::Verified }]);
    assert_eq!(find("user.pin_reset"), [Event::PinReset { user_id: 2 }]);
    let locks = find("user.pin_locked");
    assert!(matches!(locks[..], [Event::PinLocked { user_id: 2, .. }, Event::PinLocked { user_id: 1, .. }]));
    // An event carries its command's time (a sign-up after a verification in the same batch
    // is one timestamp later); a return by timeout carries its batch's time.
    let journal = h.journal.as_ref().unwrap();
    assert_eq!(events[1].timestamp, journal[2].timestamp + 1);
    assert_eq!(events[1].timestamp, h.state.wallets().user(2).unwrap().created_at);
    let timeout_step = scenario().iter().position(|s| s.advance > 0).unwrap();
    let returned = events.iter().find(|e| e.kind.name() == "remittance.returned").unwrap();
    let claimed = events.iter().find(|e| e.kind.name() == "remittance.claimed").unwrap();
    let signed_up_3 = events.iter().rev().find(|e| e.kind == EventKind::Wallet(Event::UserSignedUp { user_id: 3 }));
    assert_eq!(signed_up_3.unwrap().timestamp, claimed.timestamp, "a claim is part of its sign-up");
    assert_eq!(returned.timestamp, journal[timeout_step].timestamp);
    assert!(returned.timestamp >= claimed.timestamp + u64::from(HOLD_SECONDS) * SECOND);
}

#[test]
fn a_replay_of_the_same_batches_emits_the_same_events_with_the_same_seqs() {
    let mut h = Harness::recording();
    let hashes = run(&mut h);
    let (replayed, events) = h.replay();
    assert_eq!(events, h.events);
    assert_eq!(replayed.hash(), h.state.hash());
    // From a snapshot taken half way, the rest of the journal emits the rest of the events,
    // numbered on from the snapshot's last seq.
    let journal = h.journal.as_ref().unwrap();
    let half = journal.len() / 2;
    let mut state = State::default();
    let mut before = Vec::<Numbered>::new();
    for batch in &journal[..half] {
        state.apply(batch).unwrap();
        before.extend(state.take_events());
    }
    assert_eq!(state.hash(), hashes[half - 1]);
    let mut state = State::decode_snapshot(&state.encode_snapshot()).unwrap();
    assert_eq!(state.outbox().last_seq(), before.len() as u64);
    let mut after = Vec::new();
    for batch in &journal[half..] {
        state.apply(batch).unwrap();
        after.extend(state.take_events());
    }
    assert_eq!(after, h.events[before.len()..]);
    assert_eq!(state.hash(), h.state.hash());
}

/// A command a key guards emits its events once: a retry replays the stored outcome, and
/// emits nothing.
#[test]
fn a_keyed_retry_emits_nothing() {
    use kasa_core::idempotency::{IdempotencyKey, KeyScope};
    use kasa_core::{Inner, Keyed, KeyedOutcome, Outcome};
    let mut h = Harness::default();
    let a = funded(&mut h, A, 10_000);
    let b = sign_up_number(&mut h, B);
    let keyed = kasa_core::Command::Keyed(Box::new(Keyed {
        scope: KeyScope::Operator,
        key: IdempotencyKey::new("send-1").unwrap(),
        request_hash: [1; 32],
        command: Inner::Wallet(send(a, Recipient::User(b), 1_000, None)),
    }));
    h.take_events();
    let first = h.apply(vec![keyed.clone()]).remove(0);
    assert!(matches!(first, Outcome::Keyed(KeyedOutcome::Applied(_))), "{first:?}");
    assert_eq!(h.take_events().iter().map(|e| e.kind.name()).collect::<Vec<_>>(), ["remittance.completed"]);
    let retry = h.apply(vec![keyed]).remove(0);
    assert!(matches!(retry, Outcome::Keyed(KeyedOutcome::Replayed(_))), "{retry:?}");
    assert!(h.take_events().is_empty());
    assert_eq!(balance(&h, b), (1_000, 0));
}

fn sign_up_number(h: &mut Harness, number: &str) -> u64 {
    crate::support::wallet::sign_up(h, number).unwrap()
}
