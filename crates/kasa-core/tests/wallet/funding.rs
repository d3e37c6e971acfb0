//! Funding: linked bank accounts, top-ups and withdrawals. Both reserve the money as a
//! pending transfer in Kasa's books and wait for the bank's answer (`SettleFunding`), with
//! no timeout of their own; limits and fees are checked and reserved in the same step.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::chart;
use kasa_core::fees::FeeSchedule;
use kasa_core::limits::{LimitExceeded, LimitKind, Tier, TierLimits};
use kasa_core::time::kst_day;
use kasa_core::wallet::funding::{BANK_ACCOUNTS_PER_USER_MAX, BANK_ANSWER_TIMEOUT_SECONDS};
use kasa_core::wallet::{
    BankCode, BankResult, Command, FundingError, FundingKind, FundingStatus, FundingView, Last4, LinkError, Outcome,
    Recipient, SendError, UserError,
};
use kasa_core::{Currency, PendingStatus};

use FundingKind::{TopUp, Withdrawal};

/// A user with bank account 1 linked.
fn setup() -> (Harness, u64) {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    assert_eq!(link(&mut h, id, "1234567890"), Ok(1));
    (h, id)
}

fn start1(
    h: &mut Harness,
    user_id: u64,
    kind: FundingKind,
    amount: u64,
    pin_ok: Option<bool>,
) -> Result<u64, FundingError> {
    start(h, user_id, 1, kind, amount, pin_ok).map(|f| f.id)
}

fn status(h: &mut Harness, funding_id: u64, result: BankResult) -> Option<FundingStatus> {
    settle(h, funding_id, result).map(|f| f.status)
}

fn daily(value: u64, remaining: u64) -> FundingError {
    FundingError::LimitExceeded(LimitExceeded {
        limit: LimitKind::DailyOutgoing,
        value: won(value),
        remaining: won(remaining),
    })
}

fn cap(value: u64, remaining: u64) -> FundingError {
    FundingError::LimitExceeded(LimitExceeded {
        limit: LimitKind::BalanceCap,
        value: won(value),
        remaining: won(remaining),
    })
}

fn fee_income(h: &Harness) -> Option<(u128, u128)> {
    let account = h.state.books().account(chart::FEE_INCOME.system_id(Currency::KRW))?;
    Some((account.credits_posted, account.debits_posted))
}

/// A withdrawal fee set by an operator is reserved with the amount (one pending transfer,
/// so funds cover both or neither), counts against the daily limit, moves to fee income
/// only when the bank pays out, and comes back whole on a decline or an expiry.
#[test]
fn a_withdrawal_fee_is_reserved_with_the_amount_and_charged_when_the_bank_pays() {
    let (mut h, id) = setup();
    assert_eq!(start1(&mut h, id, TopUp, 100_000, None), Ok(1));
    settle(&mut h, 1, BankResult::Approved);
    assert_eq!(set_fee(&mut h, 10_001), Err(UserError::AmountTooHigh { max: won(10_000) }));
    assert_eq!(set_fee(&mut h, 500), Ok(won(500)));
    assert_eq!(h.state.fees().withdrawal, FeeSchedule::fixed(won(500)));

    // 99,501 + 500 is more than the 100,000 held; 99,500 + 500 is all of it.
    assert_eq!(start1(&mut h, id, Withdrawal, 99_501, Some(true)), Err(FundingError::InsufficientFunds));
    let at = h.now;
    let w = start(&mut h, id, 1, Withdrawal, 99_500, Some(true)).unwrap();
    let expected = FundingView {
        id: 2,
        kind: Withdrawal,
        user_id: id,
        bank_account_id: 1,
        amount: won(99_500),
        fee: won(500),
        status: FundingStatus::Pending,
        created_at: at,
        transfer_id: chart::FUNDING_RESERVE.id(2),
    };
    assert_eq!(w, expected);
    assert_eq!(h.state.books().transfer(w.transfer_id).unwrap().amount, 100_000, "amount and fee, one reservation");
    assert_eq!((balance(&h, id), outgoing_today(&h, id)), ((100_000, 100_000), won(100_000)));
    assert_eq!(fee_income(&h), None, "no fee income before the first payout");
    assert_eq!(settle(&mut h, 2, BankResult::Approved), Some(FundingView { status: FundingStatus::Succeeded, ..w }));
    assert_eq!(balance(&h, id), (0, 0));
    assert_eq!(fee_income(&h), Some((500, 0)));

    // Declined, or never taken by the bank: amount and fee back, and the daily limit too.
    assert_eq!(start1(&mut h, id, TopUp, 50_000, None), Ok(3));
    settle(&mut h, 3, BankResult::Approved);
    assert_eq!(start1(&mut h, id, Withdrawal, 1_000, Some(true)), Ok(4));
    assert_eq!(outgoing_today(&h, id), won(101_500));
    assert_eq!(status(&mut h, 4, BankResult::Declined), Some(FundingStatus::Declined));
    assert_eq!((balance(&h, id), outgoing_today(&h, id)), ((50_000, 0), won(100_000)));
    assert_eq!(start1(&mut h, id, Withdrawal, 2_000, Some(true)), Ok(5));
    assert_eq!(status(&mut h, 5, BankResult::Expired), Some(FundingStatus::Expired));
    assert_eq!((balance(&h, id), outgoing_today(&h, id)), ((50_000, 0), won(100_000)));
    assert_eq!(fee_income(&h), Some((500, 0)), "no fee without a payout");

    // Top-ups are free; snapshots keep the fee; a fee of 0 makes withdrawals free again.
    assert_eq!(h.state.wallets().funding(3).unwrap().fee, won(0));
    h.restart();
    assert_eq!(h.state.fees().withdrawal, FeeSchedule::fixed(won(500)));
    assert_eq!(set_fee(&mut h, 0), Ok(won(0)));
    assert_eq!(start(&mut h, id, 1, Withdrawal, 1_000, Some(true)).map(|f| f.fee), Ok(won(0)));
}

/// Regression (the reshaping): a declined or expired withdrawal's view showed the fee it had
/// reserved, although nothing was charged, and the history showed no fee for a pending
/// withdrawal, although one was reserved. Kasa 0.1 showed the fee while pending or paid out
/// and 0 once declined or expired (`fee_charged`), as the API documents; both do again.
#[test]
fn a_declined_or_expired_withdrawal_shows_no_fee() {
    let (mut h, id) = setup();
    start1(&mut h, id, TopUp, 100_000, None).unwrap();
    settle(&mut h, 1, BankResult::Approved);
    set_fee(&mut h, 500).unwrap();
    for (result, shown) in [(BankResult::Approved, 500), (BankResult::Declined, 0), (BankResult::Expired, 0)] {
        let f = start(&mut h, id, 1, Withdrawal, 1_000, Some(true)).unwrap();
        assert_eq!(f.fee, won(500), "a pending withdrawal shows the fee it reserved");
        assert_eq!(history(&h.state, id, Default::default(), 1)[0].fee, won(500), "in the history too");
        let settled = settle(&mut h, f.id, result).unwrap();
        assert_eq!(settled.fee, won(shown), "{result:?}");
        assert_eq!(h.state.wallets().funding(f.id).unwrap().view(), settled, "the stored funding agrees");
        let entry = history(&h.state, id, Default::default(), 1).remove(0);
        assert_eq!((entry.object_id, entry.fee), (f.id, won(shown)), "the history agrees");
    }
}

#[test]
fn bank_accounts_are_validated_and_bounded() {
    let (mut h, id) = setup();
    assert_eq!(link(&mut h, id, "1234567890"), Err(LinkError::AlreadyLinked));
    assert_eq!(link(&mut h, 9, "1234567891"), Err(LinkError::UnknownUser));
    for n in 1..BANK_ACCOUNTS_PER_USER_MAX {
        assert_eq!(link(&mut h, id, &format!("123456789{n}")), Ok(1 + n as u64));
    }
    assert_eq!(link(&mut h, id, "9999999999"), Err(LinkError::TooMany));
    let ids: Vec<u64> = h.state.wallets().bank_accounts_of(id).map(|b| b.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let view = h.state.wallets().bank_account(1).unwrap().view();
    assert_eq!((view.bank_code.as_str(), view.last4.as_str(), view.holder_name.as_str()), ("088", "7890", "김민지"));
    // Another user may link the same account: the lookup is per user.
    let other = sign_up(&mut h, "01099998888").unwrap();
    assert_eq!(link(&mut h, other, "1234567890"), Ok(6));
    // Numbers are checked where they enter, as sealed numbers with their last four digits.
    assert!(Last4::new("12a4").is_err() && Last4::new("123").is_err() && BankCode::new("88").is_err());
}

#[test]
fn a_funding_names_its_user_a_bank_account_of_theirs_and_a_positive_amount() {
    let (mut h, id) = setup();
    let other = sign_up(&mut h, "01099998888").unwrap();
    link(&mut h, other, "5555555555").unwrap();
    let cases = [
        (id, 2, 1_000, Err(FundingError::UnknownBankAccount)),
        (id, 3, 1_000, Err(FundingError::UnknownBankAccount)),
        (id, 1, 0, Err(FundingError::InvalidAmount)),
        (99, 1, 1_000, Err(FundingError::UnknownUser)),
        (id, 1, 1_000, Ok(1)),
    ];
    for (user, bank, amount, expected) in cases {
        assert_eq!(start(&mut h, user, bank, TopUp, amount, None).map(|f| f.id), expected, "{user} {bank} {amount}");
    }
    assert_eq!(h.state.wallets().fundings_count(), 1, "refusals keep nothing");
}

#[test]
fn a_top_up_reserves_then_posts_or_voids_on_the_banks_answer() {
    let (mut h, id) = setup();
    let b = sign_up(&mut h, "01099998888").unwrap();
    let f = start(&mut h, id, 1, TopUp, 100_000, None).unwrap();
    assert_eq!(f.status, FundingStatus::Pending);
    assert_eq!(h.state.books().pending_status(f.transfer_id), Some(PendingStatus::Pending));
    assert_eq!(h.state.wallets().pending_fundings().map(|f| f.id).collect::<Vec<_>>(), [f.id]);
    assert_eq!(balance(&h, id), (0, 0), "nothing is spendable before the bank answers");
    assert_eq!(send(&mut h, id, Recipient::User(b), 1, None), Err(SendError::Funding(FundingError::InsufficientFunds)));
    assert_eq!(status(&mut h, f.id, BankResult::Approved), Some(FundingStatus::Succeeded));
    assert_eq!(balance(&h, id), (100_000, 0));
    assert_eq!(h.state.wallets().pending_fundings().count(), 0);
    // A late second answer changes nothing.
    assert_eq!(status(&mut h, f.id, BankResult::Declined), Some(FundingStatus::Succeeded));
    assert_eq!(balance(&h, id), (100_000, 0));
    let g = start1(&mut h, id, TopUp, 13, None).unwrap();
    assert_eq!(status(&mut h, g, BankResult::Declined), Some(FundingStatus::Declined));
    assert_eq!(status(&mut h, g, BankResult::Approved), Some(FundingStatus::Declined));
    assert_eq!(balance(&h, id), (100_000, 0));
    assert_eq!(settle(&mut h, 99, BankResult::Approved), None);
    assert_eq!(settle(&mut h, 0, BankResult::Approved), None);
}

#[test]
fn the_balance_cap_counts_pending_top_ups_and_is_exact_at_the_boundary() {
    let (mut h, id) = setup();
    let f = start1(&mut h, id, TopUp, 300_000, None).unwrap();
    assert_eq!(start1(&mut h, id, TopUp, 200_001, None), Err(cap(500_000, 200_000)));
    let g = start1(&mut h, id, TopUp, 200_000, None).unwrap();
    // A declined top-up gives its room back.
    let d = start1(&mut h, id, TopUp, 1, None);
    assert_eq!(d, Err(cap(500_000, 0)));
    settle(&mut h, g, BankResult::Declined);
    let g = start1(&mut h, id, TopUp, 200_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    settle(&mut h, g, BankResult::Approved);
    assert_eq!(balance(&h, id), (500_000, 0));
    assert_eq!(start1(&mut h, id, TopUp, 1, None), Err(cap(500_000, 0)));
    let verified = user_changed(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }).unwrap();
    assert_eq!(verified.tier, Tier::Verified);
    assert!(start1(&mut h, id, TopUp, 1, None).is_ok());
    assert_eq!(start1(&mut h, id, TopUp, 1_500_000, None), Err(cap(2_000_000, 1_499_999)));
}

#[test]
fn withdrawals_need_funds_the_pin_above_the_free_amount_and_fit_the_daily_limit() {
    let (mut h, id) = setup();
    let f = start1(&mut h, id, TopUp, 500_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    assert_eq!(start1(&mut h, id, Withdrawal, 50_001, None), Err(FundingError::PinRequired));
    assert_eq!(start1(&mut h, id, Withdrawal, 60_000, Some(false)), Err(FundingError::WrongPin { attempts_left: 4 }));
    let w = start1(&mut h, id, Withdrawal, 50_000, None).unwrap();
    assert_eq!(balance(&h, id), (500_000, 50_000), "the withdrawal is reserved");
    let w2 = start1(&mut h, id, Withdrawal, 450_000, Some(true)).unwrap();
    assert_eq!(start1(&mut h, id, Withdrawal, 1, Some(true)), Err(daily(500_000, 0)));
    // A declined withdrawal gives its amount back to the daily limit and the wallet.
    assert_eq!(status(&mut h, w2, BankResult::Declined), Some(FundingStatus::Declined));
    assert_eq!(status(&mut h, w, BankResult::Approved), Some(FundingStatus::Succeeded));
    assert_eq!(balance(&h, id), (450_000, 0));
    assert_eq!(outgoing_today(&h, id), won(50_000));
    // More than the wallet holds (the daily limit has room after raising the tier).
    user_changed(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }).unwrap();
    assert_eq!(start1(&mut h, id, Withdrawal, 450_001, Some(true)), Err(FundingError::InsufficientFunds));
    // The PIN-free budget is for 24 hours, not per withdrawal: the 50,000 above used it up.
    assert_eq!(start1(&mut h, id, Withdrawal, 1, None), Err(FundingError::PinRequired));
    assert_eq!(
        user_changed(&mut h, Command::SetPinFreeAmount { user_id: id, amount: won(50_001) }),
        Err(UserError::AmountTooHigh { max: won(50_000) })
    );
}

/// The daily limit counts a withdrawal's fee with its amount.
#[test]
fn the_daily_limit_counts_the_fee() {
    let (mut h, id) = setup();
    let f = start1(&mut h, id, TopUp, 500_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    set_fee(&mut h, 500).unwrap();
    assert_eq!(start1(&mut h, id, Withdrawal, 499_501, Some(true)), Err(daily(500_000, 500_000)));
    assert!(start1(&mut h, id, Withdrawal, 499_500, Some(true)).is_ok());
    assert_eq!(outgoing_today(&h, id), won(500_000));
}

/// Fundings no longer expire by a timeout in the ledger: a restart or a slow bank must never
/// release a reservation the bank may still act on. Only the bank rail's answer (`Expired`
/// when the bank says it never took the request) releases it.
#[test]
fn a_funding_waits_for_the_banks_answer_and_only_an_expired_answer_releases_it() {
    let (mut h, id) = setup();
    let f = start1(&mut h, id, TopUp, 100_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    let w = start(&mut h, id, 1, Withdrawal, 40_000, None).unwrap();
    let day = kst_day(w.created_at);
    assert_eq!(h.state.limits().outgoing_on(id, day), won(40_000));
    assert_eq!(h.state.books().transfer(w.transfer_id).unwrap().timeout, 0, "no timeout in the books");
    assert_eq!(h.state.next_expiry(), None);
    h.advance((BANK_ANSWER_TIMEOUT_SECONDS + 1) * SECOND);
    h.apply(vec![]);
    assert_eq!(h.state.wallets().funding(w.id).unwrap().status, FundingStatus::Pending);
    assert_eq!(h.state.books().pending_status(w.transfer_id), Some(PendingStatus::Pending));
    assert_eq!((balance(&h, id), h.state.limits().outgoing_on(id, day)), ((100_000, 40_000), won(40_000)));
    h.restart();
    assert_eq!(status(&mut h, w.id, BankResult::Expired), Some(FundingStatus::Expired));
    assert_eq!(h.state.books().pending_status(w.transfer_id), Some(PendingStatus::Voided));
    assert_eq!((balance(&h, id), h.state.limits().outgoing_on(id, day)), ((100_000, 0), won(0)));
    // A bank answer after that finds it expired and moves nothing.
    assert_eq!(status(&mut h, w.id, BankResult::Approved), Some(FundingStatus::Expired));
    assert_eq!(balance(&h, id), (100_000, 0));
    h.restart();
}

#[test]
fn operators_lower_tier_limits_within_the_legal_maxima_and_balances_above_them_stay() {
    let (mut h, id) = setup();
    let f = start1(&mut h, id, TopUp, 400_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    let set = |h: &mut Harness, balance_cap, daily_outgoing| {
        let limits = TierLimits { balance_cap: won(balance_cap), daily_outgoing: won(daily_outgoing) };
        match wallet(h, Command::SetTierLimits { tier: Tier::Basic, limits }) {
            Outcome::TierLimitsSet(r) => r.map_err(|e| e.0),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(set(&mut h, 500_001, 100_000), Err(Tier::Basic.legal_maxima()));
    assert_eq!(set(&mut h, 100_000, 500_001), Err(Tier::Basic.legal_maxima()));
    let lower = TierLimits { balance_cap: won(300_000), daily_outgoing: won(100_000) };
    assert_eq!(set(&mut h, 300_000, 100_000), Ok(lower));
    // The wallet keeps its 400,000 (limits bind when money moves), but takes nothing more.
    assert_eq!(balance(&h, id), (400_000, 0));
    assert_eq!(start1(&mut h, id, TopUp, 1, None), Err(cap(300_000, 0)));
    assert_eq!(start1(&mut h, id, Withdrawal, 100_001, Some(true)), Err(daily(100_000, 100_000)));
    assert!(start1(&mut h, id, Withdrawal, 100_000, Some(true)).is_ok());
    h.restart();
    assert_eq!(h.state.limits().tier(Tier::Basic), lower);
    assert_eq!(h.state.limits().tier(Tier::Verified), Tier::Verified.legal_maxima());
}

/// The first nanosecond of the KST day after the one of `t`.
fn next_kst_midnight(t: u64) -> u64 {
    ((kst_day(t) + 1) * 86_400 - 9 * 3_600) * SECOND
}

/// The daily limit is per KST day: it resets at midnight in Seoul, not in UTC; and a
/// withdrawal declined the day after it started gives nothing back to the new day.
#[test]
fn the_daily_limit_resets_at_midnight_in_seoul_and_a_late_decline_gives_back_nothing() {
    let (mut h, id) = setup();
    user_changed(&mut h, Command::SetTier { user_id: id, tier: Tier::Verified }).unwrap();
    let limits = TierLimits { balance_cap: won(2_000_000), daily_outgoing: won(1_000_000) };
    assert!(matches!(
        wallet(&mut h, Command::SetTierLimits { tier: Tier::Verified, limits }),
        Outcome::TierLimitsSet(Ok(_))
    ));
    let f = start1(&mut h, id, TopUp, 2_000_000, None).unwrap();
    settle(&mut h, f, BankResult::Approved);
    let midnight = next_kst_midnight(h.now);
    assert_eq!(midnight % (86_400 * SECOND), 15 * 3_600 * SECOND, "15:00 UTC");
    h.now = midnight - 3_600 * SECOND;
    let late = start1(&mut h, id, Withdrawal, 300_000, Some(true)).unwrap();
    start1(&mut h, id, Withdrawal, 600_000, Some(true)).unwrap();
    h.now = midnight - 1;
    assert_eq!(start1(&mut h, id, Withdrawal, 100_001, Some(true)), Err(daily(1_000_000, 100_000)));
    h.now = midnight;
    assert_eq!(outgoing_today(&h, id), won(0));
    assert!(start1(&mut h, id, Withdrawal, 100_001, Some(true)).is_ok(), "a new day in Seoul");
    assert_eq!(status(&mut h, late, BankResult::Declined), Some(FundingStatus::Declined));
    assert_eq!(outgoing_today(&h, id), won(100_001), "yesterday's decline is not today's room");
    assert_eq!(balance(&h, id), (2_000_000, 700_001));
}
