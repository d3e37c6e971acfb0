//! Wallet users through `State::apply`: sign-up creates the user and the wallet account
//! together, one user per phone number, PIN lockout that a restart (snapshot) cannot reset,
//! sessions that expire by engine time.

mod support;

use kasa_core::wallet::{
    wallet_account_id, SessionError, SignUpError, Tier, WalletOutcome, PIN_ATTEMPTS_MAX, PIN_LOCK_NANOS,
};
use kasa_core::{Command, Outcome, State};
use support::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn wallet(h: &mut Harness, command: Command) -> WalletOutcome {
    match h.apply(vec![command]).remove(0) {
        Outcome::Wallet(outcome) => outcome,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn sign_up(h: &mut Harness, phone: &str) -> Result<u64, SignUpError> {
    match wallet(h, Command::SignUp { phone: phone.into(), name: "김민지".into(), pin_hash: HASH.into() }) {
        WalletOutcome::SignedUp(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn login(h: &mut Harness, user_id: u64, token: u8, pin_ok: bool) -> Result<u64, SessionError> {
    match wallet(h, Command::OpenSession { user_id, token_hash: [token; 32], pin_ok, ttl_seconds: 3600 }) {
        WalletOutcome::SessionOpened(result) => result,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Signs a user up, links a bank account and tops it up with `amount` won (settled).
fn funded(h: &mut Harness, phone: &str, amount: u64) -> u64 {
    use kasa_core::wallet::FundingKind;
    let id = sign_up(h, phone).unwrap();
    let link = Command::LinkBankAccount {
        user_id: id,
        bank_code: "088".into(),
        account_number: format!("{:010}", id).into(),
        holder_name: "x".into(),
    };
    let WalletOutcome::BankAccountLinked(Ok(bank)) = wallet(h, link) else { panic!("link failed") };
    let start =
        Command::StartFunding { user_id: id, bank_account_id: bank, kind: FundingKind::TopUp, amount, pin_ok: None };
    let WalletOutcome::FundingStarted(Ok(f)) = wallet(h, start) else { panic!("top-up failed") };
    wallet(h, Command::SettleFunding { funding_id: f, approved: true });
    id
}

#[test]
fn sign_up_creates_the_user_and_the_wallet_account_together() {
    let mut h = Harness::default();
    assert_eq!(sign_up(&mut h, "010-1234-5678"), Ok(1));
    let user = h.state.wallets().user(1).unwrap().clone();
    assert_eq!(user.phone.as_str(), "+821012345678");
    assert_eq!(user.tier, Tier::Basic);
    let account = h.state.ledger().account(wallet_account_id(1)).expect("the wallet account exists");
    assert_eq!(account.ledger, 410);
    assert!(account.flags.has(kasa_core::AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
    // The same number in another spelling is the same phone.
    assert_eq!(sign_up(&mut h, "+82 10 1234 5678"), Err(SignUpError::PhoneTaken));
    assert_eq!(sign_up(&mut h, "010-1234-567"), Ok(2), "a different (10-digit) number");
    assert!(matches!(sign_up(&mut h, "hello"), Err(SignUpError::InvalidPhone(_))));
    let bad_name = Command::SignUp { phone: "01099998888".into(), name: "\u{7}".into(), pin_hash: HASH.into() };
    assert_eq!(wallet(&mut h, bad_name), WalletOutcome::SignedUp(Err(SignUpError::InvalidName)));
    let bad_hash = Command::SignUp { phone: "01099998888".into(), name: "a".into(), pin_hash: "1234".into() };
    assert_eq!(wallet(&mut h, bad_hash), WalletOutcome::SignedUp(Err(SignUpError::InvalidPinHash)));
    assert_eq!(h.state.wallets().users_count(), 2);
    assert_eq!(h.state.ledger().accounts_count(), 2, "failed sign-ups made no account");
}

/// Regression (review): operators could create accounts and transfers with domain ids,
/// blocking every later sign-up, funding or send (ids are handed out in order), or post and
/// void Kasa's own pending transfers behind the wallet's back. The ledger API now refuses
/// the reserved range.
#[test]
fn the_ledger_api_cannot_touch_domain_ids() {
    use kasa_core::wallet::domain_id;
    let mut h = Harness::default();
    assert_eq!(h.accounts(vec![account(wallet_account_id(1), 410, 0)]), ["id_reserved"]);
    assert_eq!(sign_up(&mut h, "01012345678"), Ok(1));
    let a = funded(&mut h, "01099998888", 10_000);
    let send = Command::Send {
        from_user: a,
        to: kasa_core::wallet::Recipient::Phone("01055554444".into()),
        amount: 1_000,
        memo: String::new(),
        pin_ok: None,
    };
    let WalletOutcome::Sent(Ok(held)) = wallet(&mut h, send) else { panic!() };
    let hold = h.state.wallets().remittances().remittance(held).unwrap().transfer_id();
    let operator_post = kasa_core::Transfer {
        id: 77,
        pending_id: hold,
        flags: kasa_core::TransferFlags(kasa_core::TransferFlags::POST_PENDING_TRANSFER),
        ..Default::default()
    };
    assert_eq!(h.transfers(vec![operator_post]), ["pending_id_reserved"]);
    let squatter = kasa_core::Transfer { id: domain_id(6, held + 1), ..transfer(0, 1, 2, 1) };
    assert_eq!(h.transfers(vec![squatter]), ["id_reserved"]);
}

#[test]
fn five_wrong_pins_lock_and_the_lock_survives_a_snapshot() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    for attempt in 1..PIN_ATTEMPTS_MAX {
        assert_eq!(
            login(&mut h, id, 9, false),
            Err(SessionError::WrongPin { attempts_left: PIN_ATTEMPTS_MAX - attempt, locked_until: 0 })
        );
    }
    let Err(SessionError::WrongPin { attempts_left: 0, locked_until }) = login(&mut h, id, 9, false) else { panic!() };
    assert!(locked_until > h.now);
    // Locked: even the right PIN is refused, and nothing is counted.
    assert_eq!(login(&mut h, id, 1, true), Err(SessionError::Locked { until: locked_until }));
    // A restart (snapshot and decode) does not reset the lock.
    let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
    assert_eq!(restored.hash(), h.state.hash());
    h.state = restored;
    assert_eq!(login(&mut h, id, 1, true), Err(SessionError::Locked { until: locked_until }));
    // After the cool-down the right PIN works and clears the count.
    h.advance(PIN_LOCK_NANOS);
    let expires_at = login(&mut h, id, 1, true).unwrap();
    assert!(h.state.wallets().session(&[1; 32], expires_at - 1).is_some());
    assert_eq!(h.state.wallets().user(id).unwrap().pin_failures, 0);
}

#[test]
fn an_operator_unlock_lifts_the_lock_and_tiers_change() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    for _ in 0..PIN_ATTEMPTS_MAX {
        let _ = login(&mut h, id, 9, false);
    }
    assert!(matches!(login(&mut h, id, 1, true), Err(SessionError::Locked { .. })));
    assert_eq!(wallet(&mut h, Command::UnlockPin { user_id: id }), WalletOutcome::TierSet(true));
    assert!(login(&mut h, id, 1, true).is_ok());
    assert_eq!(wallet(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }), WalletOutcome::TierSet(true));
    assert_eq!(h.state.wallets().user(id).unwrap().tier, Tier::Verified);
    assert_eq!(wallet(&mut h, Command::SetTier { user_id: 99, tier: Tier::Verified }), WalletOutcome::TierSet(false));
    assert_eq!(login(&mut h, 99, 1, true), Err(SessionError::UnknownUser));
    assert_eq!(login(&mut h, 0, 1, true), Err(SessionError::UnknownUser));
}

#[test]
fn sessions_close_and_expire_by_engine_time() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let expires_at = login(&mut h, id, 1, true).unwrap();
    login(&mut h, id, 2, true).unwrap();
    assert_eq!(wallet(&mut h, Command::CloseSession { token_hash: [2; 32] }), WalletOutcome::SessionClosed(true));
    assert_eq!(wallet(&mut h, Command::CloseSession { token_hash: [2; 32] }), WalletOutcome::SessionClosed(false));
    assert!(h.state.wallets().session(&[2; 32], h.now).is_none());
    assert!(h.state.wallets().session(&[1; 32], h.now).is_some());
    // Reads at a later time see it expired; the next batch after expiry drops it for good.
    assert!(h.state.wallets().session(&[1; 32], expires_at).is_none());
    h.now = expires_at;
    h.apply(vec![]);
    let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
    assert!(restored.wallets().session(&[1; 32], 0).is_none(), "expired sessions are gone from the state");
}

#[test]
fn a_user_holds_a_bounded_number_of_sessions() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    for token in 1..=20u8 {
        login(&mut h, id, token, true).unwrap();
    }
    let now = h.now;
    let live = (1..=20u8).filter(|&t| h.state.wallets().session(&[t; 32], now).is_some()).count();
    assert_eq!(live, kasa_core::wallet::SESSIONS_PER_USER_MAX);
    assert!(h.state.wallets().session(&[1; 32], now).is_none(), "the oldest sessions were closed");
    assert!(h.state.wallets().session(&[20; 32], now).is_some());
}

mod funding {
    use super::*;
    use kasa_core::wallet::{FundingError, FundingKind, FundingStatus, LimitExceeded, LinkError};

    fn link(h: &mut Harness, user_id: u64, number: &str) -> Result<u64, LinkError> {
        let command = Command::LinkBankAccount {
            user_id,
            bank_code: "004".into(),
            account_number: number.into(),
            holder_name: "김민지".into(),
        };
        match wallet(h, command) {
            WalletOutcome::BankAccountLinked(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn start(
        h: &mut Harness,
        user_id: u64,
        kind: FundingKind,
        amount: u64,
        pin_ok: Option<bool>,
    ) -> Result<u64, FundingError> {
        match wallet(h, Command::StartFunding { user_id, bank_account_id: 1, kind, amount, pin_ok }) {
            WalletOutcome::FundingStarted(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn settle(h: &mut Harness, funding_id: u64, approved: bool) -> Option<FundingStatus> {
        match wallet(h, Command::SettleFunding { funding_id, approved }) {
            WalletOutcome::FundingSettled(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn balance(h: &Harness, user_id: u64) -> (u128, u128) {
        let a = h.state.ledger().account(wallet_account_id(user_id)).unwrap();
        (a.credits_posted - a.debits_posted, a.debits_pending)
    }

    fn setup() -> (Harness, u64) {
        let mut h = Harness::default();
        let id = sign_up(&mut h, "01012345678").unwrap();
        assert_eq!(link(&mut h, id, "1234567890"), Ok(1));
        (h, id)
    }

    /// A withdrawal fee set by an operator is reserved with the amount (one pending transfer,
    /// so funds cover both or neither), counts against the daily limit, moves to fee income
    /// only when the bank pays out, and comes back whole on a decline or an expiry.
    #[test]
    fn a_withdrawal_fee_is_reserved_with_the_amount_and_charged_when_the_bank_pays() {
        use kasa_core::wallet::funding::{fee_income_account_id, WITHDRAWAL_FEE_MAX_KRW};
        let (mut h, id) = setup();
        assert_eq!(start(&mut h, id, FundingKind::TopUp, 100_000, None), Ok(1));
        settle(&mut h, 1, true);
        let set = |h: &mut Harness, fee| wallet(h, Command::SetFees { withdrawal_fee: fee });
        assert_eq!(set(&mut h, WITHDRAWAL_FEE_MAX_KRW + 1), WalletOutcome::TierSet(false));
        assert_eq!(set(&mut h, 500), WalletOutcome::TierSet(true));
        let fee_of = |h: &Harness, f: u64| {
            let book = h.state.wallets().funding();
            book.fee(h.state.ledger(), book.funding(f).unwrap())
        };
        let used = |h: &Harness| h.state.wallets().funding().outgoing_today(id, h.now);

        // 99,501 + 500 is more than the 100,000 held; 99,500 + 500 is all of it.
        assert_eq!(
            start(&mut h, id, FundingKind::Withdrawal, 99_501, Some(true)),
            Err(FundingError::InsufficientFunds)
        );
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 99_500, Some(true)), Ok(2));
        assert_eq!((balance(&h, id), fee_of(&h, 2), used(&h)), ((100_000, 100_000), 500, 100_000));
        assert_eq!(settle(&mut h, 2, true), Some(FundingStatus::Succeeded));
        assert_eq!(balance(&h, id), (0, 0));
        let income = h.state.ledger().account(fee_income_account_id()).expect("created by the first fee");
        assert_eq!((income.credits_posted, income.debits_posted), (500, 0));

        // Declined, or never answered: amount and fee back, and the daily limit too.
        assert_eq!(start(&mut h, id, FundingKind::TopUp, 50_000, None), Ok(3));
        settle(&mut h, 3, true);
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 1_000, Some(true)), Ok(4));
        assert_eq!(used(&h), 101_500);
        assert_eq!(settle(&mut h, 4, false), Some(FundingStatus::Declined));
        assert_eq!((balance(&h, id), used(&h)), ((50_000, 0), 100_000));
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 2_000, Some(true)), Ok(5));
        h.advance(61 * SECOND);
        h.apply(vec![]);
        assert_eq!((balance(&h, id), used(&h)), ((50_000, 0), 100_000));
        let income = h.state.ledger().account(fee_income_account_id()).unwrap();
        assert_eq!(income.credits_posted, 500, "no fee without a payout");

        // Top-ups are free; a fee of 0 again makes withdrawals free; snapshots keep the fee.
        assert_eq!(fee_of(&h, 3), 0);
        let restored = kasa_core::State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
        assert_eq!(restored.wallets().withdrawal_fee(), 500);
        set(&mut h, 0);
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 1_000, Some(true)), Ok(6));
        assert_eq!(fee_of(&h, 6), 0);
    }

    #[test]
    fn bank_accounts_are_validated_and_bounded() {
        let (mut h, id) = setup();
        assert_eq!(link(&mut h, id, "1234567890"), Err(LinkError::AlreadyLinked));
        assert_eq!(link(&mut h, id, "12345"), Err(LinkError::InvalidAccountNumber));
        assert_eq!(link(&mut h, 9, "1234567891"), Err(LinkError::UnknownUser));
        for n in 1..5 {
            assert!(link(&mut h, id, &format!("123456789{n}")).is_ok());
        }
        assert_eq!(link(&mut h, id, "9999999999"), Err(LinkError::TooMany));
        let account = h.state.wallets().funding().bank_account(1).unwrap();
        assert_eq!(account.masked_number(), "******7890");
    }

    #[test]
    fn a_top_up_reserves_then_posts_or_voids_on_the_banks_answer() {
        let (mut h, id) = setup();
        let f = start(&mut h, id, FundingKind::TopUp, 100_000, None).unwrap();
        let status = |h: &Harness, f: u64| {
            let book = h.state.wallets().funding();
            book.status(h.state.ledger(), book.funding(f).unwrap())
        };
        assert_eq!(status(&h, f), FundingStatus::Pending);
        assert_eq!(balance(&h, id), (0, 0), "nothing is spendable before the bank answers");
        assert_eq!(settle(&mut h, f, true), Some(FundingStatus::Succeeded));
        assert_eq!(balance(&h, id), (100_000, 0));
        // A late second answer changes nothing.
        assert_eq!(settle(&mut h, f, false), Some(FundingStatus::Succeeded));
        let g = start(&mut h, id, FundingKind::TopUp, 13, None).unwrap();
        assert_eq!(settle(&mut h, g, false), Some(FundingStatus::Declined));
        assert_eq!(balance(&h, id), (100_000, 0));
        assert_eq!(settle(&mut h, 99, true), None);
    }

    #[test]
    fn the_balance_cap_counts_pending_top_ups_and_is_exact_at_the_boundary() {
        let (mut h, id) = setup();
        let f = start(&mut h, id, FundingKind::TopUp, 300_000, None).unwrap();
        assert_eq!(
            start(&mut h, id, FundingKind::TopUp, 200_001, None),
            Err(FundingError::LimitExceeded(LimitExceeded {
                limit: "balance_cap",
                value: 500_000,
                remaining: 200_000
            }))
        );
        let g = start(&mut h, id, FundingKind::TopUp, 200_000, None).unwrap();
        settle(&mut h, f, true);
        settle(&mut h, g, true);
        assert_eq!(balance(&h, id), (500_000, 0));
        assert!(matches!(start(&mut h, id, FundingKind::TopUp, 1, None), Err(FundingError::LimitExceeded(_))));
        assert_eq!(
            wallet(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }),
            WalletOutcome::TierSet(true)
        );
        assert!(start(&mut h, id, FundingKind::TopUp, 1, None).is_ok());
    }

    #[test]
    fn withdrawals_need_funds_the_pin_above_the_free_amount_and_fit_the_daily_limit() {
        let (mut h, id) = setup();
        let f = start(&mut h, id, FundingKind::TopUp, 500_000, None).unwrap();
        settle(&mut h, f, true);
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 50_001, None), Err(FundingError::PinRequired));
        assert_eq!(
            start(&mut h, id, FundingKind::Withdrawal, 60_000, Some(false)),
            Err(FundingError::WrongPin { attempts_left: 4 })
        );
        let w = start(&mut h, id, FundingKind::Withdrawal, 50_000, None).unwrap();
        assert_eq!(balance(&h, id), (500_000, 50_000), "the withdrawal is reserved");
        let w2 = start(&mut h, id, FundingKind::Withdrawal, 450_000, Some(true)).unwrap();
        assert_eq!(
            start(&mut h, id, FundingKind::Withdrawal, 1, Some(true)),
            Err(FundingError::LimitExceeded(LimitExceeded { limit: "daily_outgoing", value: 500_000, remaining: 0 }))
        );
        // A declined withdrawal gives its amount back to the daily limit and the wallet.
        assert_eq!(settle(&mut h, w2, false), Some(FundingStatus::Declined));
        assert_eq!(settle(&mut h, w, true), Some(FundingStatus::Succeeded));
        assert_eq!(balance(&h, id), (450_000, 0));
        assert_eq!(h.state.wallets().funding().outgoing_today(id, h.now), 50_000);
        // More than the wallet holds (the daily limit has room after raising the tier).
        wallet(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified });
        assert_eq!(
            start(&mut h, id, FundingKind::Withdrawal, 450_001, Some(true)),
            Err(FundingError::InsufficientFunds)
        );
        // The user can require the PIN for every amount.
        assert_eq!(wallet(&mut h, Command::SetPinFreeAmount { user_id: id, amount: 0 }), WalletOutcome::TierSet(true));
        assert_eq!(start(&mut h, id, FundingKind::Withdrawal, 1, None), Err(FundingError::PinRequired));
        assert_eq!(
            wallet(&mut h, Command::SetPinFreeAmount { user_id: id, amount: 50_001 }),
            WalletOutcome::TierSet(false)
        );
    }

    #[test]
    fn an_unanswered_funding_expires_by_engine_time_and_gives_back_the_daily_limit() {
        let (mut h, id) = setup();
        let f = start(&mut h, id, FundingKind::TopUp, 100_000, None).unwrap();
        settle(&mut h, f, true);
        let w = start(&mut h, id, FundingKind::Withdrawal, 40_000, None).unwrap();
        assert_eq!(h.state.wallets().funding().outgoing_today(id, h.now), 40_000);
        h.advance(61 * SECOND);
        h.apply(vec![]);
        let book = h.state.wallets().funding();
        assert_eq!(book.status(h.state.ledger(), book.funding(w).unwrap()), FundingStatus::Expired);
        assert_eq!(book.outgoing_today(id, h.now), 0);
        assert_eq!(balance(&h, id), (100_000, 0));
        // A bank answer after the timeout finds it expired and moves nothing.
        assert_eq!(settle(&mut h, w, true), Some(FundingStatus::Expired));
        assert_eq!(balance(&h, id), (100_000, 0));
        let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
        assert_eq!(restored.hash(), h.state.hash());
    }
}

mod remittance {
    use super::*;
    use kasa_core::wallet::{CancelError, FundingError, Recipient, RemittanceStatus, SendError};

    fn send(h: &mut Harness, from: u64, to: Recipient, amount: u64, pin_ok: Option<bool>) -> Result<u64, SendError> {
        match wallet(h, Command::Send { from_user: from, to, amount, memo: "밥값".into(), pin_ok }) {
            WalletOutcome::Sent(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn balance(h: &Harness, user: u64) -> u128 {
        let a = h.state.ledger().account(wallet_account_id(user)).unwrap();
        a.credits_posted - a.debits_posted - a.debits_pending
    }

    fn status(h: &Harness, id: u64) -> RemittanceStatus {
        let book = h.state.wallets().remittances();
        book.status(h.state.ledger(), book.remittance(id).unwrap())
    }

    #[test]
    fn money_moves_between_users_with_limits_checked_in_the_same_step() {
        let mut h = Harness::default();
        let a = funded(&mut h, "01011112222", 300_000);
        let b = funded(&mut h, "01033334444", 450_000);
        let r = send(&mut h, a, Recipient::Phone("010-3333-4444".into()), 50_000, None).unwrap();
        assert_eq!(status(&h, r), RemittanceStatus::Completed);
        assert_eq!((balance(&h, a), balance(&h, b)), (250_000, 500_000));
        // b is at the cap: a's next send is refused without telling a how full b is.
        assert_eq!(send(&mut h, a, Recipient::User(b), 1, None), Err(SendError::RecipientLimit { value: 500_000 }));
        assert_eq!(send(&mut h, a, Recipient::User(a), 1, None), Err(SendError::ToSelf));
        assert_eq!(send(&mut h, a, Recipient::User(99), 1, None), Err(SendError::UnknownRecipient));
        assert_eq!(
            send(&mut h, a, Recipient::User(b), 60_000, None),
            Err(SendError::Funding(FundingError::PinRequired))
        );
        // Exactly up to a's cap is fine.
        assert_eq!(send(&mut h, b, Recipient::User(a), 250_000, Some(true)), Ok(2));
        assert_eq!((balance(&h, a), balance(&h, b)), (500_000, 250_000));
        // a sent 50,000 today: 450,000 of the daily 500,000 are left.
        let over = send(&mut h, a, Recipient::User(b), 450_001, Some(true));
        assert!(
            matches!(over, Err(SendError::Funding(FundingError::LimitExceeded(ref l))) if l.remaining == 450_000),
            "{over:?}"
        );
        let c = funded(&mut h, "01055556666", 1_000);
        assert_eq!(
            send(&mut h, c, Recipient::User(b), 2_000, None),
            Err(SendError::Funding(FundingError::InsufficientFunds))
        );
        assert_eq!(balance(&h, c), 1_000, "a refused send moves nothing");
    }

    #[test]
    fn money_for_a_number_without_a_wallet_is_held_then_claimed_at_sign_up() {
        let mut h = Harness::default();
        let a = funded(&mut h, "01011112222", 100_000);
        let r = send(&mut h, a, Recipient::Phone("010-7777-8888".into()), 30_000, None).unwrap();
        assert_eq!(status(&h, r), RemittanceStatus::Held);
        assert_eq!(balance(&h, a), 70_000, "held money is not spendable");
        let b = sign_up(&mut h, "+821077778888").unwrap();
        assert_eq!(status(&h, r), RemittanceStatus::Completed);
        assert_eq!(balance(&h, b), 30_000);
        assert_eq!(h.state.wallets().remittances().remittance(r).unwrap().to_user, Some(b));
        let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
        assert_eq!(restored.hash(), h.state.hash());
    }

    #[test]
    fn held_money_returns_after_48_hours_or_when_cancelled() {
        let mut h = Harness::default();
        let a = funded(&mut h, "01011112222", 100_000);
        let r1 = send(&mut h, a, Recipient::Phone("01055550001".into()), 10_000, None).unwrap();
        let r2 = send(&mut h, a, Recipient::Phone("01055550002".into()), 20_000, None).unwrap();
        assert_eq!(balance(&h, a), 70_000);
        let cancel = |h: &mut Harness, user_id, remittance_id| match wallet(
            h,
            Command::CancelRemittance { user_id, remittance_id },
        ) {
            WalletOutcome::RemittanceCancelled(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(cancel(&mut h, 99, r1), Err(CancelError::NotFound), "only the sender cancels");
        assert_eq!(cancel(&mut h, a, r1), Ok(()));
        assert_eq!(cancel(&mut h, a, r1), Err(CancelError::NotHeld));
        assert_eq!((status(&h, r1), balance(&h, a)), (RemittanceStatus::Cancelled, 80_000));
        h.advance(48 * 3600 * SECOND);
        h.apply(vec![]);
        assert_eq!((status(&h, r2), balance(&h, a)), (RemittanceStatus::Returned, 100_000));
        assert_eq!(h.state.wallets().funding().outgoing_today(a, h.now), 0, "returned money frees the daily limit");
        // The history has an entry for each event: the money held, and the money back, at the
        // moment it came back (the cancel; the end of the 48 hours).
        use kasa_core::wallet::HistoryCursor;
        let page =
            |state: &kasa_core::State, cursor: HistoryCursor| state.wallets().history(state.ledger(), a, cursor, 10);
        let history = |state: &kasa_core::State, cursor: HistoryCursor| {
            let entries = page(state, cursor);
            entries.iter().map(|e| (e.kind.name(), e.status, e.amount, e.timestamp)).collect::<Vec<_>>()
        };
        let entries = history(&h.state, HistoryCursor::default());
        let shape: Vec<_> = entries.iter().map(|&(kind, status, amount, _)| (kind, status, amount)).collect();
        assert_eq!(
            shape,
            vec![
                ("returned", "returned", 20_000),
                ("returned", "cancelled", 10_000),
                ("held", "returned", 20_000),
                ("held", "cancelled", 10_000),
                ("top_up", "succeeded", 100_000)
            ]
        );
        assert_eq!(entries[0].3, entries[2].3 + 48 * 3600 * SECOND, "returned exactly 48 hours after it was held");
        let full = page(&h.state, HistoryCursor::default());
        assert_eq!(history(&h.state, full[0].cursor_after()), entries[1..].to_vec(), "a page after the newest");
        assert_eq!(history(&h.state, full[1].cursor_after())[0], entries[2], "the timeout's entry is not repeated");
        // At equal times a transfer's entry comes first, and a page boundary between the two
        // loses neither: after the timeout's entry, nothing at its time is left; after a
        // transfer's entry at the same time, the timeout's entry still is.
        let at = full[0].timestamp;
        let after_transfer = HistoryCursor { before: at, returned_before: at + 1 };
        assert_eq!(history(&h.state, after_transfer), entries, "the timeout's entry at `at` still comes");
        assert_eq!(full[0].cursor_after(), HistoryCursor { before: at, returned_before: at });
        // The index behind the returned entries is rebuilt from a snapshot.
        let restored = kasa_core::State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
        assert_eq!(history(&restored, HistoryCursor::default()), entries);
        // Signing up after the return claims nothing.
        let late = sign_up(&mut h, "01055550002").unwrap();
        assert_eq!(balance(&h, late), 0);
    }
}

mod requests {
    use super::*;
    use kasa_core::wallet::requests::REQUEST_TTL_NANOS;
    use kasa_core::wallet::{Recipient, RequestError};

    fn answer(h: &mut Harness, payer: u64, request_id: u64, pay: bool) -> Result<(), RequestError> {
        match wallet(h, Command::AnswerRequest { payer, request_id, pay, pin_ok: None }) {
            WalletOutcome::RequestAnswered(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn balance(h: &Harness, user: u64) -> u128 {
        let a = h.state.ledger().account(wallet_account_id(user)).unwrap();
        a.credits_posted - a.debits_posted
    }

    /// Listing is per role, newest first, and looks at a bounded number of requests per
    /// call: a filter that matches nothing among many requests ends the page early with a
    /// place to go on from, instead of scanning them all on the sequencer.
    #[test]
    fn listing_requests_is_per_role_and_bounded() {
        use kasa_core::wallet::requests::LIST_SCAN_MAX;
        use kasa_core::wallet::RequestRole;
        let mut h = Harness::default();
        let a = sign_up(&mut h, "01033330001").unwrap();
        let b = sign_up(&mut h, "01033330002").unwrap();
        let total = LIST_SCAN_MAX as u64 + 5;
        let asks: Vec<Command> = (0..total)
            .map(|i| Command::RequestMoney {
                requester: a,
                from: Recipient::User(b),
                amount: 1 + i,
                memo: String::new(),
            })
            .collect();
        for chunk in asks.chunks(500) {
            h.apply(chunk.to_vec());
        }
        let book = h.state.wallets().requests();
        let page = book.list(b, RequestRole::Payer, 0, 3, |_| true);
        let ids: Vec<u64> = page.items.iter().map(|r| r.id).collect();
        assert_eq!((ids, page.next_before), (vec![total, total - 1, total - 2], Some(total - 2)));
        assert!(book.list(b, RequestRole::Requester, 0, 3, |_| true).items.is_empty(), "b asked for nothing");
        assert_eq!(book.list(a, RequestRole::Requester, 0, 100, |_| true).items.len(), 100);
        // Nothing matches: the first call stops after LIST_SCAN_MAX, the second finishes.
        let none = book.list(b, RequestRole::Payer, 0, 10, |r| r.amount == 0);
        assert_eq!((none.items.len(), none.next_before), (0, Some(total - LIST_SCAN_MAX as u64 + 1)));
        let rest = book.list(b, RequestRole::Payer, none.next_before.unwrap(), 10, |r| r.amount == 0);
        assert_eq!((rest.items.len(), rest.next_before), (0, None));
        // One match far down is found by paging on.
        let far = book.list(b, RequestRole::Payer, none.next_before.unwrap(), 10, |r| r.amount == 2);
        assert_eq!(far.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_request_is_paid_declined_or_expires() {
        let mut h = Harness::default();
        let a = funded(&mut h, "01011110000", 10_000);
        let b = funded(&mut h, "01022220000", 50_000);
        let ask = |h: &mut Harness, amount| match wallet(
            h,
            Command::RequestMoney {
                requester: a,
                from: Recipient::Phone("010-2222-0000".into()),
                amount,
                memo: "커피".into(),
            },
        ) {
            WalletOutcome::MoneyRequested(r) => r,
            other => panic!("{other:?}"),
        };
        let r1 = ask(&mut h, 4_500).unwrap();
        assert_eq!(answer(&mut h, a, r1, true), Err(RequestError::NotFound), "only the payer answers");
        assert_eq!(answer(&mut h, b, r1, true), Ok(()));
        assert_eq!((balance(&h, a), balance(&h, b)), (14_500, 45_500));
        assert_eq!(answer(&mut h, b, r1, true), Err(RequestError::NotPending("paid")));
        let r2 = ask(&mut h, 1_000).unwrap();
        assert_eq!(answer(&mut h, b, r2, false), Ok(()));
        assert_eq!(h.state.wallets().requests().request(r2).unwrap().status_at(h.now), "declined");
        let r3 = ask(&mut h, 1_000).unwrap();
        h.advance(REQUEST_TTL_NANOS);
        assert_eq!(h.state.wallets().requests().request(r3).unwrap().status_at(h.now), "expired");
        assert_eq!(answer(&mut h, b, r3, true), Err(RequestError::NotPending("expired")));
        assert_eq!(balance(&h, b), 45_500);
        assert!(matches!(ask(&mut h, 0), Err(RequestError::InvalidAmount(_))));
        assert!(matches!(ask(&mut h, u64::MAX), Err(RequestError::InvalidAmount(_))));
        let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
        assert_eq!(restored.hash(), h.state.hash());
    }

    #[test]
    fn a_split_bill_is_one_request_per_share() {
        let mut h = Harness::default();
        let a = sign_up(&mut h, "01011110000").unwrap();
        let b = funded(&mut h, "01022220000", 50_000);
        let c = funded(&mut h, "01033330000", 50_000);
        let split = |h: &mut Harness, shares: Vec<(Recipient, u64)>| match wallet(
            h,
            Command::SplitBill { requester: a, total: 30_000, shares, memo: "회식".into() },
        ) {
            WalletOutcome::BillSplit(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            split(&mut h, vec![(Recipient::User(b), 20_000), (Recipient::User(c), 20_000)]),
            Err(RequestError::InvalidAmount(_))
        ));
        assert!(matches!(
            split(&mut h, vec![(Recipient::User(b), 10_000), (Recipient::User(b), 10_000)]),
            Err(RequestError::InvalidAmount(_))
        ));
        assert_eq!(split(&mut h, vec![(Recipient::User(a), 10_000)]), Err(RequestError::ToSelf));
        let bill = split(&mut h, vec![(Recipient::User(b), 10_000), (Recipient::Phone("01033330000".into()), 10_000)])
            .unwrap();
        let ids = h.state.wallets().requests().bill(bill).unwrap().request_ids.clone();
        assert_eq!(ids.len(), 2);
        assert_eq!(answer(&mut h, b, ids[0], true), Ok(()));
        let book = h.state.wallets().requests();
        let statuses: Vec<&str> = ids.iter().map(|&r| book.request(r).unwrap().status_at(h.now)).collect();
        assert_eq!(statuses, ["paid", "pending"]);
        assert_eq!(balance(&h, a), 10_000);
    }
}

/// Regression (self-review): an operator closing a wallet through the ledger API, or taking
/// a reserved system account id, made a later funding or send panic the sequencer. Both are
/// now refused cleanly and change nothing.
#[test]
fn operator_changes_to_domain_accounts_refuse_cleanly_instead_of_panicking() {
    use kasa_core::wallet::funding::bank_omnibus_account_id;
    use kasa_core::wallet::{FundingError, FundingKind, Recipient, SendError};
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01011110000").unwrap();
    let b = sign_up(&mut h, "01022220000").unwrap();
    // An operator cannot take the omnibus id any more (it is in the reserved range).
    let omnibus = kasa_core::Account { id: bank_omnibus_account_id(), ledger: 410, code: 7, ..Default::default() };
    assert_eq!(h.accounts(vec![omnibus]), ["id_reserved"]);
    let link = Command::LinkBankAccount {
        user_id: a,
        bank_code: "088".into(),
        account_number: "1234567890".into(),
        holder_name: "x".into(),
    };
    wallet(&mut h, link);
    let start =
        Command::StartFunding { user_id: a, bank_account_id: 1, kind: FundingKind::TopUp, amount: 10, pin_ok: None };
    assert_eq!(wallet(&mut h, start), WalletOutcome::FundingStarted(Ok(1)));
    // An operator closes b's wallet with a closing pending transfer: sends to b are refused.
    let mut close = pending(90, bank_omnibus_account_id(), wallet_account_id(b), 1, 0);
    close.flags =
        kasa_core::TransferFlags(kasa_core::TransferFlags::PENDING | kasa_core::TransferFlags::CLOSING_CREDIT);
    close.ledger = 410;
    assert_eq!(h.transfers(vec![close]), ["ok"]);
    let send = Command::Send { from_user: a, to: Recipient::User(b), amount: 1, memo: String::new(), pin_ok: None };
    let outcome = wallet(&mut h, send);
    assert!(matches!(outcome, WalletOutcome::Sent(Err(SendError::Funding(FundingError::Ledger(_))))), "{outcome:?}");
}

/// Idempotency keys: a keyed command is applied once per caller and key, a retry sees the
/// stored answer, a different request under the same key is told so, and keys expire after
/// 24 hours of engine time.
#[test]
fn keyed_commands_apply_at_most_once() {
    use kasa_core::idempotency::{StoredResponse, KEY_TTL_NANOS};
    use kasa_core::KeyedOutcome;
    let mut h = Harness::default();
    let keyed = |key: &str, hash: u8, phone: &str| Command::Keyed {
        scope: 0,
        key: key.into(),
        request_hash: [hash; 32],
        command: Box::new(Command::SignUp { phone: phone.into(), name: "a".into(), pin_hash: HASH.into() }),
    };
    let first = h.apply(vec![keyed("k1", 1, "01011112222")]).remove(0);
    let Outcome::Keyed(KeyedOutcome::Applied(inner)) = first else { panic!("{first:?}") };
    assert_eq!(*inner, Outcome::Wallet(WalletOutcome::SignedUp(Ok(1))));
    // A retry applies nothing and has no answer yet; then the answer is stored and replayed.
    let retry = h.apply(vec![keyed("k1", 1, "01011112222")]).remove(0);
    assert_eq!(retry, Outcome::Keyed(KeyedOutcome::Exists { same_request: true, response: None }));
    let store = Command::StoreResponse { scope: 0, key: "k1".into(), status: 201, body: b"{\"id\":\"1\"}".to_vec() };
    assert_eq!(h.apply(vec![store.clone()]).remove(0), Outcome::ResponseStored(true));
    assert_eq!(h.apply(vec![store]).remove(0), Outcome::ResponseStored(false), "an answer is stored once");
    let retry = h.apply(vec![keyed("k1", 1, "01011112222")]).remove(0);
    let stored = StoredResponse { status: 201, body: b"{\"id\":\"1\"}".to_vec() };
    assert_eq!(retry, Outcome::Keyed(KeyedOutcome::Exists { same_request: true, response: Some(stored) }));
    // The same key for another request is refused; another scope is another namespace.
    let other = h.apply(vec![keyed("k1", 2, "01033334444")]).remove(0);
    assert!(matches!(other, Outcome::Keyed(KeyedOutcome::Exists { same_request: false, .. })));
    assert_eq!(h.state.wallets().users_count(), 1, "nothing was applied twice");
    let invalid = h.apply(vec![keyed("", 1, "01033334444")]).remove(0);
    assert_eq!(invalid, Outcome::Keyed(KeyedOutcome::InvalidKey));
    // A snapshot keeps the keys; after 24 hours they are forgotten.
    let restored = State::decode_snapshot(&h.state.encode_snapshot()).unwrap();
    assert_eq!(restored.hash(), h.state.hash());
    assert_eq!(restored.idempotency().len(), 1);
    h.advance(KEY_TTL_NANOS);
    h.apply(vec![]);
    assert!(h.state.idempotency().is_empty());
}

/// A session command runs as the session's user at its own event time, and refuses an
/// unknown, closed or expired session without applying anything.
#[test]
fn session_commands_resolve_the_user_at_event_time() {
    use kasa_core::wallet::{FundingError, Recipient, SendError};
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01011110000").unwrap();
    let b = sign_up(&mut h, "01022220000").unwrap();
    let expires_at = login(&mut h, a, 7, true).unwrap();
    let send = |token: u8| Command::AsSession {
        token_hash: [token; 32],
        command: Box::new(Command::Send {
            from_user: 0,
            to: Recipient::User(b),
            amount: 1,
            memo: String::new(),
            pin_ok: None,
        }),
    };
    let outcome = h.apply(vec![send(7)]).remove(0);
    // a has no money: the command ran as a (a send from user 0 would be UnknownUser).
    let expected = Outcome::Wallet(WalletOutcome::Sent(Err(SendError::Funding(FundingError::InsufficientFunds))));
    assert_eq!(outcome, Outcome::AsSession(Some(Box::new(expected))));
    assert_eq!(h.apply(vec![send(8)]).remove(0), Outcome::AsSession(None), "unknown session");
    h.now = expires_at;
    assert_eq!(h.apply(vec![send(7)]).remove(0), Outcome::AsSession(None), "expired session");
    let other = Command::AsSession { token_hash: [7; 32], command: Box::new(Command::UnlockPin { user_id: a }) };
    assert_eq!(h.apply(vec![other]).remove(0), Outcome::AsSession(None), "only user commands run as a session");
}

/// The limit audit that `kasa verify` runs after every command is not vacuous: a wallet
/// credit of Kasa's own that passes the tier's cap, or a wallet debit that the day's
/// outgoing total did not count, is reported; a credit up to the cap exactly is not.
#[test]
fn the_limit_audit_reports_a_credit_past_the_cap_and_an_uncounted_debit() {
    use kasa_core::wallet::domain_id;
    use kasa_core::{Account, Transfer};
    let mut h = Harness::default();
    let alice = funded(&mut h, "010-7000-0001", 400_000);
    let source = 1u128 << 100; // an operator's account, which may go negative
    let mut base = h.state.ledger().clone();
    let made = base.create_accounts(&[Account { id: source, ledger: 410, code: 1, ..Default::default() }], h.now);
    assert!(made[0].result.is_success());
    let transfer = |id: u128, debit: u128, credit: u128, amount: u128| Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 410,
        code: 1,
        ..Default::default()
    };
    let audit = |amount: u128, debit: bool| {
        let mut ledger = base.clone();
        let before = ledger.transfers_count();
        let t = if debit {
            transfer(domain_id(6, 9_999), wallet_account_id(alice), source, amount)
        } else {
            transfer(domain_id(4, 9_999), source, wallet_account_id(alice), amount)
        };
        assert!(ledger.create_transfers(&[t], h.now + 10)[0].result.is_success());
        h.state.wallets().check_limits_of_new_transfers(&ledger, before)
    };
    assert_eq!(audit(100_000, false), Ok(()), "up to the 500,000 cap exactly");
    let past = audit(100_001, false).unwrap_err();
    assert!(past.contains("500001 won, over the basic balance cap of 500000"), "{past}");
    let uncounted = audit(1_000, true).unwrap_err();
    assert!(uncounted.contains("not counted"), "{uncounted}");
    // The operator's own transfers (adjustments, outside the domain range) are not audited.
    let mut ledger = base.clone();
    let before = ledger.transfers_count();
    ledger.create_transfers(&[transfer(7, source, wallet_account_id(alice), 1_000_000)], h.now + 10);
    assert_eq!(h.state.wallets().check_limits_of_new_transfers(&ledger, before), Ok(()));
}
