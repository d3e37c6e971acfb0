//! The PIN-free budget: what a user may send and withdraw without the PIN is a budget over a
//! rolling 24 hours (50,000 won by default, lowered by the user), not an amount per
//! movement. A movement with the right PIN goes through and leaves the budget alone; a
//! wrong PIN counts towards the lock whatever the amount.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::limits::PIN_FREE_STEP_NANOS;
use kasa_core::time::NANOS_PER_DAY;
use kasa_core::wallet::requests::RequestError;
use kasa_core::wallet::{
    BankResult, Command, FundingError, FundingKind, Recipient, SendError, SessionError, UserError, PIN_LOCK_NANOS,
};

/// One money movement of the tables below.
#[derive(Clone, Copy, Debug)]
enum Move {
    Send(u64, Option<bool>),
    Withdraw(u64, Option<bool>),
}

/// Applies a movement by `user` (to user 2, or from bank account of `user`'s own).
fn apply(h: &mut Harness, user: u64, step: Move) -> Result<(), FundingError> {
    match step {
        Move::Send(amount, pin) => send(h, user, Recipient::User(2), amount, pin).map(drop).map_err(|e| match e {
            SendError::Funding(e) => e,
            other => panic!("{other:?}"),
        }),
        Move::Withdraw(amount, pin) => start(h, user, user, FundingKind::Withdrawal, amount, pin).map(drop),
    }
}

fn used(h: &Harness, user: u64) -> u64 {
    h.state.limits().pin_free_used(user, h.now).minor()
}

/// User 1 with 300,000 won and bank account 1, user 2 empty.
fn setup() -> (Harness, u64) {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 300_000);
    assert_eq!(sign_up(&mut h, "01033334444"), Ok(2));
    (h, a)
}

/// Regression (issue "six sends of 50,000 without a PIN emptied a 300,000 wallet"): the
/// PIN-free amount was checked per movement, so a phone left unlocked could be emptied
/// 50,000 at a time. It is now a budget for 24 hours.
#[test]
fn six_sends_of_50000_without_a_pin_move_50000_in_all() {
    let (mut h, a) = setup();
    let results: Vec<_> = (0..6).map(|_| apply(&mut h, a, Move::Send(50_000, None))).collect();
    let pin_required = Err(FundingError::PinRequired);
    assert_eq!(results, [Ok(()), pin_required, pin_required, pin_required, pin_required, pin_required]);
    assert_eq!(balance(&h, a), (250_000, 0));
}

#[test]
fn sends_and_withdrawals_share_the_budget_and_a_right_pin_leaves_it_alone() {
    let (mut h, a) = setup();
    set_fee(&mut h, 100).unwrap();
    let pin_required = Err(FundingError::PinRequired);
    // (movement, result, PIN-free amount used after it)
    let steps = [
        (Move::Send(20_000, None), Ok(()), 20_000),
        (Move::Withdraw(19_900, None), Ok(()), 40_000), // the fee counts with the amount
        (Move::Send(10_001, None), pin_required, 40_000),
        (Move::Withdraw(9_901, None), pin_required, 40_000),
        (Move::Send(100_000, Some(true)), Ok(()), 40_000),
        (Move::Withdraw(50_000, Some(true)), Ok(()), 40_000),
        (Move::Send(10_000, None), Ok(()), 50_000),
        (Move::Send(1, None), pin_required, 50_000),
        (Move::Withdraw(1, None), pin_required, 50_000),
        (Move::Send(1, Some(true)), Ok(()), 50_000),
    ];
    for (i, (step, expected, after)) in steps.into_iter().enumerate() {
        assert_eq!(apply(&mut h, a, step), expected, "step {i}: {step:?}");
        assert_eq!(used(&h, a), after, "step {i}: {step:?}");
    }
    // Paying a money request is a send like any other.
    let ask = request(&mut h, 2, Recipient::User(a), 1).unwrap();
    assert_eq!(
        answer(&mut h, a, ask.id, true, None),
        Err(RequestError::Payment(SendError::Funding(FundingError::PinRequired)))
    );
    assert!(answer(&mut h, a, ask.id, true, Some(true)).is_ok());
}

/// A refused movement spends nothing; a cancelled hold does not give the budget back (it
/// bounds what a phone without its PIN can start, not what comes back).
#[test]
fn only_movements_that_happen_spend_the_budget() {
    let (mut h, a) = setup();
    let full = funded(&mut h, "01055556666", 500_000);
    assert_eq!(send(&mut h, a, Recipient::User(full), 40_000, None), Err(SendError::RecipientCannotReceive));
    assert_eq!(send(&mut h, a, Recipient::User(99), 40_000, None), Err(SendError::UnknownRecipient));
    let poor = funded(&mut h, "01077770000", 100);
    assert_eq!(apply(&mut h, poor, Move::Send(200, None)), Err(FundingError::InsufficientFunds));
    assert_eq!((used(&h, a), used(&h, poor)), (0, 0));
    let held = send(&mut h, a, Recipient::Phone(phone("01099990000")), 50_000, None).unwrap();
    cancel(&mut h, a, held.id).unwrap();
    assert_eq!(used(&h, a), 50_000);
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired));
}

#[test]
fn a_wrong_pin_counts_towards_the_lock_even_for_a_small_amount() {
    let (mut h, a) = setup();
    // Wrong PINs count wherever they are typed: logins, sends, withdrawals.
    login(&mut h, a, 1, false).unwrap_err();
    let moves = [Move::Send(1, Some(false)), Move::Withdraw(1, Some(false)), Move::Send(1, Some(false))];
    for (step, left) in moves.into_iter().zip([3, 2, 1]) {
        assert_eq!(apply(&mut h, a, step), Err(FundingError::WrongPin { attempts_left: left }), "{step:?}");
    }
    let fifth = h.now;
    let until = fifth + PIN_LOCK_NANOS;
    assert_eq!(apply(&mut h, a, Move::Send(1, Some(false))), Err(FundingError::PinLocked { until }));
    assert_eq!(apply(&mut h, a, Move::Send(1, Some(true))), Err(FundingError::PinLocked { until }));
    assert_eq!(login(&mut h, a, 1, true), Err(SessionError::Locked { until }));
    assert_eq!(balance(&h, a), (300_000, 0), "nothing moved");
    assert_eq!(used(&h, a), 0, "nor was the budget touched");
    // The lock is on the PIN: the budget is what a phone without its PIN may move anyway, so
    // it stays usable, and no more than it.
    assert_eq!(apply(&mut h, a, Move::Send(50_000, None)), Ok(()));
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired));
}

#[test]
fn the_budget_comes_back_24_hours_after_the_ten_minute_step_of_each_spend() {
    let (mut h, a) = setup();
    let first = send(&mut h, a, Recipient::User(2), 30_000, None).unwrap().created_at;
    h.advance(6 * 3600 * SECOND);
    let second = send(&mut h, a, Recipient::User(2), 20_000, None).unwrap().created_at;
    let back = |t: u64| (t / PIN_FREE_STEP_NANOS + 1) * PIN_FREE_STEP_NANOS + NANOS_PER_DAY;
    for t in [first, second] {
        assert!(back(t) > t + NANOS_PER_DAY && back(t) <= t + NANOS_PER_DAY + PIN_FREE_STEP_NANOS);
    }
    h.now = back(first) - 1;
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired), "not yet");
    h.now = back(first);
    assert_eq!(used(&h, a), 20_000);
    assert_eq!(apply(&mut h, a, Move::Send(30_001, None)), Err(FundingError::PinRequired));
    assert_eq!(apply(&mut h, a, Move::Send(30_000, None)), Ok(()), "the first spend left the window");
    h.now = back(second) - 1;
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired));
    h.now = back(second);
    assert_eq!(apply(&mut h, a, Move::Withdraw(20_000, None)), Ok(()), "the second one too");
    assert_eq!(used(&h, a), 50_000);
    h.restart();
    assert_eq!(used(&h, a), 50_000, "the spends survive a restart");
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired));
}

#[test]
fn lowering_the_pin_free_amount_applies_at_once() {
    let (mut h, a) = setup();
    let set = |h: &mut Harness, user_id: u64, amount: u64| {
        user_changed(h, Command::SetPinFreeAmount { user_id, amount: won(amount) }).map(|u| u.pin_free_amount.minor())
    };
    assert_eq!(apply(&mut h, a, Move::Send(20_000, None)), Ok(()));
    assert_eq!(set(&mut h, a, 10_000), Ok(10_000));
    assert_eq!(apply(&mut h, a, Move::Send(1, None)), Err(FundingError::PinRequired), "20,000 used of 10,000");
    assert_eq!(set(&mut h, a, 0), Ok(0));
    assert_eq!(apply(&mut h, a, Move::Withdraw(1, None)), Err(FundingError::PinRequired), "the PIN for everything");
    assert_eq!(apply(&mut h, a, Move::Withdraw(1, Some(true))), Ok(()));
    assert_eq!(set(&mut h, a, 50_001), Err(UserError::AmountTooHigh { max: won(50_000) }));
    assert_eq!(set(&mut h, 99, 10_000), Err(UserError::UnknownUser));
    h.restart();
    assert_eq!(h.state.wallets().user(a).unwrap().pin_free_amount, won(0), "kept across a restart");
    assert_eq!(set(&mut h, a, 50_000), Ok(50_000));
    assert_eq!(apply(&mut h, a, Move::Send(30_001, None)), Err(FundingError::PinRequired));
    assert_eq!(apply(&mut h, a, Move::Send(30_000, None)), Ok(()));
    // Settling the withdrawal above changes nothing about the budget.
    settle(&mut h, 2, BankResult::Approved).unwrap();
    assert_eq!(used(&h, a), 50_000);
}
