//! What reaches a wallet and what does not: the operators' ledger API works on a ledger of
//! its own, so no id an operator picks can touch Kasa's books; idempotency keys and sessions
//! wrap wallet commands; and the limit audit that `kasa verify` runs is not vacuous.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::chart;
use kasa_core::idempotency::{IdempotencyKey, KeyScope, KEYS_PER_USER_MAX, KEY_TTL_NANOS};
use kasa_core::wallet::{
    wallet_account_id, Command, FundingError, Name, Outcome as WalletOutcome, PinHash, Recipient, RemittanceStatus,
    SendError, SignUpError,
};
use kasa_core::{
    Account, AccountFlags, Command as Top, Inner, InnerOutcome, Keyed, KeyedOutcome, Outcome, SessionCommand, Transfer,
    TransferFlags,
};

/// Regression (review, Kasa 0.1): operators could create accounts and transfers with the ids
/// Kasa's domains use, blocking every later sign-up, funding or send, or post and void
/// Kasa's own pending transfers behind the wallet's back. Kasa's books are now a ledger of
/// their own: an operator may use the same ids, and touches only the operators' ledger.
#[test]
fn an_operator_transfer_on_the_same_ids_touches_only_the_operators_ledger() {
    let mut h = Harness::default();
    let (w1, w2) = (wallet_account_id(1), wallet_account_id(2));
    assert_eq!(h.accounts(vec![account(w1, 410, 0), account(w2, 410, 0)]), ["ok", "ok"]);
    assert_eq!(sign_up(&mut h, "01012345678"), Ok(1), "wallet 1's id is free in the books");
    let a = funded(&mut h, "01099998888", 10_000);
    let held = send(&mut h, a, Recipient::Phone(phone("01055554444")), 1_000, None).unwrap();
    let books = h.state.books().transfers_count();
    let hold_post = Transfer {
        id: 77,
        pending_id: held.transfer_id,
        flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER),
        ..Default::default()
    };
    assert_eq!(h.transfers(vec![hold_post]), ["pending_transfer_not_found"]);
    // The id of the next remittance, between the accounts with the wallets' ids.
    let squatter = Transfer { ledger: 410, ..transfer(chart::REMITTANCE.id(2), w2, w1, 5_000) };
    assert_eq!(h.transfers(vec![squatter]), ["ok"]);
    assert_eq!(h.balance(w1), (0, 0, 0, 5_000), "the operators' account moved");
    assert_eq!(h.state.books().transfers_count(), books, "the books did not");
    assert_eq!((balance(&h, 1), balance(&h, a)), ((0, 0), (10_000, 1_000)));
    // The next remittance takes that id in the books, and the hold is still the sender's.
    let next = send(&mut h, a, Recipient::User(1), 2_000, None).unwrap();
    assert_eq!((next.id, next.transfer_id, next.status), (2, chart::REMITTANCE.id(2), RemittanceStatus::Completed));
    assert_eq!(cancel(&mut h, a, held.id).map(|r| r.status), Ok(RemittanceStatus::Cancelled));
    assert_eq!((balance(&h, 1), balance(&h, a)), ((2_000, 0), (8_000, 0)));
    h.restart();
}

/// Regression (self-review, Kasa 0.1): an operator closing a wallet through the ledger API
/// made later sends to it fail (or, before a fix, panic the sequencer). A closing transfer
/// on an account with a wallet's id now closes only that operators' account.
#[test]
fn an_operator_closing_an_account_with_a_wallets_id_leaves_the_wallet_open() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011110000", 10_000);
    let b = sign_up(&mut h, "01022220000").unwrap();
    let omnibus = chart::BANK_OMNIBUS.system_id(kasa_core::Currency::KRW);
    assert_eq!(h.accounts(vec![account(omnibus, 410, 0), account(wallet_account_id(b), 410, 0)]), ["ok", "ok"]);
    let mut close = pending(90, omnibus, wallet_account_id(b), 1, 0);
    close.flags = TransferFlags(TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT);
    close.ledger = 410;
    assert_eq!(h.transfers(vec![close]), ["ok"]);
    assert!(h.state.ledger().account(wallet_account_id(b)).unwrap().flags.has(AccountFlags::CLOSED));
    assert!(!h.state.books().account(wallet_account_id(b)).unwrap().flags.has(AccountFlags::CLOSED));
    assert_eq!(send(&mut h, a, Recipient::User(b), 1_000, None).map(|r| r.status), Ok(RemittanceStatus::Completed));
    assert_eq!(balance(&h, b), (1_000, 0));
}

fn sign_up_command(h: &mut Harness, number: &str) -> Command {
    let number = phone(number);
    let proof = verify(h, &number);
    Command::SignUp {
        phone: number, name: Name::new("김민지").unwrap(), pin_hash: PinHash::new(HASH).unwrap(), proof
    }
}

fn keyed(scope: KeyScope, key: &str, request: u8, command: Inner) -> Top {
    Top::Keyed(Box::new(Keyed { scope, key: IdempotencyKey::new(key).unwrap(), request_hash: [request; 32], command }))
}

fn keyed_outcome(h: &mut Harness, command: Top) -> KeyedOutcome {
    match h.apply(vec![command]).remove(0) {
        Outcome::Keyed(k) => k,
        other => panic!("{other:?}"),
    }
}

/// Idempotency keys: a keyed command is applied once per caller and key, and its outcome is
/// stored with its effect; a retry gets that outcome back, a different request under the
/// same key is told so, and keys are forgotten after 24 hours of engine time.
#[test]
fn keyed_commands_apply_at_most_once() {
    let mut h = Harness::default();
    let anonymous = KeyScope::Anonymous([1; 16]);
    let first_sign_up = Inner::Wallet(sign_up_command(&mut h, "01011112222"));
    let applied = keyed_outcome(&mut h, keyed(anonymous, "k1", 1, first_sign_up.clone()));
    let KeyedOutcome::Applied(InnerOutcome::Wallet(WalletOutcome::SignedUp(Ok(user)))) = &applied else {
        panic!("{applied:?}")
    };
    assert_eq!(user.id, 1);
    let KeyedOutcome::Applied(stored) = applied.clone() else { unreachable!() };
    // A retry applies nothing and gets the first answer, even after a restart.
    assert_eq!(
        keyed_outcome(&mut h, keyed(anonymous, "k1", 1, first_sign_up.clone())),
        KeyedOutcome::Replayed(stored.clone())
    );
    h.restart();
    assert_eq!(keyed_outcome(&mut h, keyed(anonymous, "k1", 1, first_sign_up)), KeyedOutcome::Replayed(stored));
    // The same key for another request is refused; another scope is another namespace.
    let second_sign_up = Inner::Wallet(sign_up_command(&mut h, "01033334444"));
    assert_eq!(keyed_outcome(&mut h, keyed(anonymous, "k1", 2, second_sign_up.clone())), KeyedOutcome::Reused);
    assert_eq!(h.state.wallets().users_count(), 1, "nothing was applied twice");
    let operator = keyed_outcome(&mut h, keyed(KeyScope::Operator, "k1", 2, second_sign_up));
    assert!(matches!(operator, KeyedOutcome::Applied(InnerOutcome::Wallet(WalletOutcome::SignedUp(Ok(_))))));
    assert!(IdempotencyKey::new("").is_err() && IdempotencyKey::new("a b").is_err(), "checked where it enters");
    // A session key needs a valid session; a command with many items cannot be keyed.
    let request =
        Inner::Wallet(Command::RequestMoney { requester: 1, from: Recipient::User(2), amount: won(1), memo: memo("") });
    assert_eq!(
        keyed_outcome(&mut h, keyed(KeyScope::Session([5; 32]), "k2", 1, request)),
        KeyedOutcome::SessionInvalid
    );
    let many = (1..=65).map(|i| transfer(i, 1, 2, 1)).collect();
    let ledger =
        Inner::Ledger(kasa_core::ledger::Command::CreateTransfers(kasa_core::ledger::Records::new(many).unwrap()));
    assert_eq!(keyed_outcome(&mut h, keyed(KeyScope::Operator, "k3", 1, ledger)), KeyedOutcome::NotKeyable);
    assert_eq!(h.state.idempotency().len(), 2);
    // After 24 hours the keys are forgotten: the same key runs the command again.
    h.advance(KEY_TTL_NANOS);
    h.apply(vec![]);
    assert!(h.state.idempotency().is_empty());
    let again = Inner::Wallet(sign_up_command(&mut h, "01011112222"));
    assert_eq!(
        keyed_outcome(&mut h, keyed(anonymous, "k1", 1, again)),
        KeyedOutcome::Applied(InnerOutcome::Wallet(WalletOutcome::SignedUp(Err(SignUpError::PhoneTaken))))
    );
}

/// A user holds a bounded number of live keys; a command over the bound is not applied.
#[test]
fn a_user_holds_a_bounded_number_of_keys() {
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01011112222").unwrap();
    let b = sign_up(&mut h, "01033334444").unwrap();
    login(&mut h, a, 1, true).unwrap();
    let ask = |i: u32| {
        let command = Inner::Wallet(Command::RequestMoney {
            requester: a,
            from: Recipient::User(b),
            amount: won(1),
            memo: memo(""),
        });
        keyed(KeyScope::Session([1; 32]), &format!("key-{i}"), 1, command)
    };
    let outcomes = h.apply((0..KEYS_PER_USER_MAX).map(ask).collect());
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Keyed(KeyedOutcome::Applied(_)))));
    assert_eq!(keyed_outcome(&mut h, ask(KEYS_PER_USER_MAX)), KeyedOutcome::TooManyKeys);
    assert_eq!(
        h.state.wallets().list_requests(b, kasa_core::wallet::RequestRole::Payer, 0, 2_000, |_| true).items.len(),
        1_000
    );
}

/// A session command runs as the session's user (whatever user the command names) at its
/// own event time, and refuses an unknown, closed or expired session without applying
/// anything.
#[test]
fn session_commands_resolve_the_user_at_event_time() {
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01011110000").unwrap();
    let b = funded(&mut h, "01022220000", 10_000);
    let expires_at = login(&mut h, a, 7, true).unwrap();
    let as_session = |token: u8, command: Command| Top::AsSession(SessionCommand { token_hash: [token; 32], command });
    let send = |from_user: u64| Command::Send {
        from_user,
        to: Recipient::User(b),
        amount: won(1),
        memo: memo(""),
        pin_ok: None,
    };
    // a has no money: the command ran as a, not as b whom it names.
    let outcome = h.apply(vec![as_session(7, send(b))]).remove(0);
    let refused = WalletOutcome::Sent(Err(SendError::Funding(FundingError::InsufficientFunds)));
    assert_eq!(outcome, Outcome::AsSession(Some(refused)));
    assert_eq!(balance(&h, b), (10_000, 0));
    assert_eq!(h.apply(vec![as_session(8, send(0))]).remove(0), Outcome::AsSession(None), "unknown session");
    let other = as_session(7, Command::UnlockPin { user_id: a });
    assert_eq!(h.apply(vec![other]).remove(0), Outcome::AsSession(None), "only user commands run as a session");
    // Expiry is checked at the command's own time, inside the batch.
    h.now = expires_at - 1;
    let outcomes = h.apply(vec![as_session(7, send(0)), as_session(7, send(0))]);
    assert!(matches!(outcomes[0], Outcome::AsSession(Some(_))));
    assert_eq!(outcomes[1], Outcome::AsSession(None), "expired one timestamp later");
    wallet(&mut h, Command::CloseSession { token_hash: [7; 32] });
    assert_eq!(h.apply(vec![as_session(7, send(0))]).remove(0), Outcome::AsSession(None), "closed session");
}

/// The limit audit that `kasa verify` runs after every command is not vacuous: a wallet
/// credit that passes the tier's cap, or a wallet debit that the day's outgoing total did
/// not count, is reported; a credit up to the cap exactly is not, nor is an operator's
/// adjustment debit (not outgoing money). The audit looks at Kasa's books only.
#[test]
fn the_limit_audit_reports_a_credit_past_the_cap_and_an_uncounted_debit() {
    let mut h = Harness::default();
    let alice = funded(&mut h, "010-7000-0001", 400_000);
    let source = 1u128 << 100; // an account that may go negative, of no chart kind
    let mut base = h.state.books().clone();
    let made = base.create_accounts(&[Account { id: source, ledger: 410, code: 1, ..Default::default() }], h.now);
    assert!(made[0].result.is_success());
    let wallet = wallet_account_id(alice);
    let audit = |id: u128, debit: u128, credit: u128, amount: u128| {
        let mut books = base.clone();
        let before = books.transfers_count();
        let t = Transfer { ledger: 410, ..transfer(id, debit, credit, amount) };
        assert!(books.create_transfers(&[t], h.now + 10)[0].result.is_success());
        h.state.wallets().check_limits_of_new_transfers(&books, h.state.limits(), before)
    };
    assert_eq!(audit(chart::FUNDING_RESERVE.id(9_999), source, wallet, 100_000), Ok(()), "up to the cap exactly");
    let past = audit(chart::FUNDING_RESERVE.id(9_999), source, wallet, 100_001).unwrap_err();
    assert!(past.contains("500001 won, over the basic balance cap of 500000"), "{past}");
    let past = audit(chart::ADJUSTMENT.id(9_999), source, wallet, 100_001).unwrap_err();
    assert!(past.contains("over the basic balance cap"), "adjustment credits are capped too: {past}");
    let uncounted = audit(chart::REMITTANCE.id(9_999), wallet, source, 1_000).unwrap_err();
    assert!(uncounted.contains("not counted"), "{uncounted}");
    assert_eq!(audit(chart::ADJUSTMENT.id(9_999), wallet, source, 1_000), Ok(()), "an adjustment is not outgoing");
    // The operators' ledger is not audited (it holds no wallets): the harness checks the
    // audit after this batch.
    assert_eq!(h.accounts(vec![account(wallet, 410, 0), account(source, 410, 0)]), ["ok", "ok"]);
    assert_eq!(h.transfers(vec![Transfer { ledger: 410, ..transfer(5, source, wallet, 10_000_000) }]), ["ok"]);
}
