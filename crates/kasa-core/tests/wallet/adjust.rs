//! Operators' adjustments (`Adjust`): the only way an operator moves a wallet's money. A
//! credit stays within the tier's balance cap, a debit within what the wallet has
//! available; each has a reason on record, shows in the user's history and emits
//! `wallet.adjusted`. A debit is not the user's outgoing money: it uses neither the daily
//! limit nor the PIN-free budget.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::chart;
use kasa_core::event::EventKind;
use kasa_core::limits::{LimitExceeded, LimitKind};
use kasa_core::wallet::{
    AdjustError, AdjustmentView, BankResult, Direction, Event, FundingError, FundingKind, HistoryCursor, Reason,
    Recipient, SendError,
};
use kasa_core::Currency;

use Direction::{Credit, Debit};

#[test]
fn a_credit_stays_within_the_balance_cap_counting_money_on_its_way_in() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let bank = link(&mut h, id, "1234567890").unwrap();
    start(&mut h, id, bank, FundingKind::TopUp, 100_000, None).unwrap();
    assert_eq!(
        adjust(&mut h, id, 400_001, Credit, "보상"),
        Err(AdjustError::BalanceCap { cap: won(500_000), remaining: won(400_000) })
    );
    let at = h.now;
    let view = adjust(&mut h, id, 400_000, Credit, "이중 출금 보상").unwrap();
    let expected = AdjustmentView {
        id: 1,
        user_id: id,
        amount: won(400_000),
        direction: Credit,
        reason: Reason::new("이중 출금 보상").unwrap(),
        created_at: at,
        transfer_id: chart::ADJUSTMENT.id(1),
    };
    assert_eq!(view, expected);
    let t = h.state.books().transfer(view.transfer_id).unwrap();
    let adjustments = chart::ADJUSTMENTS.system_id(Currency::KRW);
    assert_eq!(
        (t.debit_account_id, t.credit_account_id, t.amount, t.code),
        (adjustments, wallet_id(id), 400_000, 3006)
    );
    assert_eq!(balance(&h, id), (400_000, 0));
    assert_eq!(
        adjust(&mut h, id, 1, Credit, "보상"),
        Err(AdjustError::BalanceCap { cap: won(500_000), remaining: won(0) })
    );
    assert_eq!(h.state.wallets().adjustment(1).map(|a| a.view()), Some(expected));
    assert!(h.state.wallets().adjustment(2).is_none(), "a refusal keeps nothing");
}

fn wallet_id(user: u64) -> u128 {
    kasa_core::wallet::wallet_account_id(user)
}

#[test]
fn a_debit_stays_within_what_the_wallet_has_available() {
    let mut h = Harness::default();
    let id = funded(&mut h, "01012345678", 100_000);
    start(&mut h, id, 1, FundingKind::Withdrawal, 30_000, None).unwrap();
    assert_eq!(
        adjust(&mut h, id, 70_001, Debit, "오입금 회수"),
        Err(AdjustError::InsufficientFunds { available: won(70_000) })
    );
    assert_eq!(adjust(&mut h, id, 70_000, Debit, "오입금 회수").map(|a| a.direction), Ok(Debit));
    assert_eq!(balance(&h, id), (30_000, 30_000));
    // The pending withdrawal can still be paid out.
    assert!(settle(&mut h, 2, BankResult::Approved).is_some());
    assert_eq!(balance(&h, id), (0, 0));
    assert_eq!(adjust(&mut h, id, 1, Debit, "회수"), Err(AdjustError::InsufficientFunds { available: won(0) }));
    let account = h.state.books().account(chart::ADJUSTMENTS.system_id(Currency::KRW)).unwrap();
    assert_eq!((account.debits_posted, account.credits_posted), (0, 70_000));
}

#[test]
fn an_adjustment_names_a_user_and_a_positive_amount() {
    let mut h = Harness::default();
    let id = sign_up(&mut h, "01012345678").unwrap();
    let cases = [
        (id, 0, Credit, AdjustError::InvalidAmount),
        (id, 0, Debit, AdjustError::InvalidAmount),
        (99, 1, Credit, AdjustError::UnknownUser),
        (99, 0, Debit, AdjustError::UnknownUser),
        (0, 1, Credit, AdjustError::UnknownUser),
    ];
    for (user, amount, direction, expected) in cases {
        assert_eq!(adjust(&mut h, user, amount, direction, "사유"), Err(expected), "{user} {amount} {direction:?}");
    }
    assert!(h.state.books().account(chart::ADJUSTMENTS.system_id(Currency::KRW)).is_none(), "nothing was created");
    assert!(h.take_events().iter().all(|e| e.kind.name() != "wallet.adjusted"));
    // A reason is required, printable and bounded, before a command exists.
    for reason in ["".to_string(), "  ".to_string(), "a\nb".to_string(), "x".repeat(201)] {
        assert!(Reason::new(reason.clone()).is_err(), "{reason:?}");
    }
    assert!(Reason::new("x".repeat(200)).is_ok());
}

#[test]
fn an_adjustment_shows_in_the_history_with_its_reason_and_emits_wallet_adjusted() {
    let mut h = Harness::default();
    let id = funded(&mut h, "01012345678", 10_000);
    h.take_events();
    let credit = adjust(&mut h, id, 5_000, Credit, "이벤트 적립").unwrap();
    let debit = adjust(&mut h, id, 2_000, Debit, "오입금 회수").unwrap();
    let events: Vec<EventKind> = h.take_events().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        events,
        [
            EventKind::Wallet(Event::WalletAdjusted {
                adjustment_id: 1,
                user_id: id,
                direction: Credit,
                amount: won(5_000)
            }),
            EventKind::Wallet(Event::WalletAdjusted {
                adjustment_id: 2,
                user_id: id,
                direction: Debit,
                amount: won(2_000)
            }),
        ]
    );
    let entries = history(&h.state, id, HistoryCursor::default(), 10);
    let rows: Vec<_> = entries
        .iter()
        .map(|e| (e.kind.name(), e.object_id, e.amount.minor(), e.credit, e.status, e.memo.as_str(), e.balance_after))
        .collect();
    assert_eq!(
        rows,
        [
            ("adjustment", 2, 2_000, false, "completed", "오입금 회수", Some(won(13_000))),
            ("adjustment", 1, 5_000, true, "completed", "이벤트 적립", Some(won(15_000))),
            ("top_up", 1, 10_000, true, "succeeded", "", Some(won(10_000))),
        ]
    );
    assert_eq!((entries[0].timestamp, entries[1].timestamp), (debit.created_at, credit.created_at));
    h.restart();
    assert_eq!(history(&h.state, id, HistoryCursor::default(), 10), entries);
}

/// An operator's debit is not money the user sent: it leaves the daily limit and the PIN-free
/// budget as they were (the limit audit skips it too).
#[test]
fn an_adjustment_debit_does_not_count_as_outgoing() {
    let mut h = Harness::default();
    let id = funded(&mut h, "01012345678", 500_000);
    let b = sign_up(&mut h, "01099998888").unwrap();
    adjust(&mut h, id, 60_000, Debit, "회수").unwrap();
    assert_eq!(outgoing_today(&h, id), won(0));
    assert_eq!(h.state.limits().pin_free_used(id, h.now), won(0));
    assert!(send(&mut h, id, Recipient::User(b), 50_000, None).is_ok(), "the whole PIN-free budget");
    assert!(send(&mut h, id, Recipient::User(b), 390_000, Some(true)).is_ok());
    assert_eq!(outgoing_today(&h, id), won(440_000));
    // A credit does not give daily room back either.
    adjust(&mut h, id, 100_000, Credit, "보상").unwrap();
    assert_eq!(
        send(&mut h, id, Recipient::User(b), 60_001, Some(true)),
        Err(SendError::Funding(FundingError::LimitExceeded(LimitExceeded {
            limit: LimitKind::DailyOutgoing,
            value: won(500_000),
            remaining: won(60_000),
        })))
    );
    assert!(send(&mut h, id, Recipient::User(b), 60_000, Some(true)).is_ok());
}
