//! Balance privacy: a refused send tells the sender about the sender's own PIN, limits and
//! funds, checked first, and about the recipient only that they cannot receive it, with no
//! amounts. A sender learns nothing about another wallet from a refused send, and a sender
//! with an empty wallet learns nothing at all.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::limits::{LimitExceeded, LimitKind, Tier, TierLimits};
use kasa_core::wallet::remittance::HOLDS_PER_PHONE_MAX;
use kasa_core::wallet::requests::RequestError;
use kasa_core::wallet::{Command, FundingError, Outcome, Recipient, RemittanceStatus, SendError};
use std::collections::BTreeSet;

fn daily_limit(value: u64, remaining: u64) -> SendError {
    SendError::Funding(FundingError::LimitExceeded(LimitExceeded {
        limit: LimitKind::DailyOutgoing,
        value: won(value),
        remaining: won(remaining),
    }))
}

/// Holds `count` remittances of 1 won for `number`, from a new sender.
fn hold_for(h: &mut Harness, sender_phone: &str, number: &str, count: usize) -> u64 {
    let sender = funded(h, sender_phone, 100_000);
    for _ in 0..count {
        let held = send(h, sender, Recipient::Phone(phone(number)), 1, None).unwrap();
        assert_eq!(held.status, RemittanceStatus::Held);
    }
    sender
}

/// Regression (issue "a user with an empty wallet binary-searches amounts and reads
/// limit_exceeded (recipient's cap) against insufficient_funds"): the recipient's cap was
/// checked before the sender's funds, so refused sends from an empty wallet told how much
/// room another wallet had. Now every recipient gets the same answer for the same amount.
#[test]
fn an_empty_wallet_learns_nothing_about_any_recipient() {
    let mut h = Harness::default();
    let full = funded(&mut h, "01010000001", 500_000);
    let almost = funded(&mut h, "01010000002", 499_000);
    let empty = sign_up(&mut h, "01010000003").unwrap();
    hold_for(&mut h, "01010000004", "01020000001", HOLDS_PER_PHONE_MAX);
    let prober = sign_up(&mut h, "01099999999").unwrap();
    let recipients = [
        Recipient::User(full),
        Recipient::User(almost),
        Recipient::User(empty),
        Recipient::User(99),
        Recipient::User(prober),
        Recipient::Phone(phone("01020000001")),
        Recipient::Phone(phone("01020000002")),
    ];
    let insufficient = SendError::Funding(FundingError::InsufficientFunds);
    let cases = [
        (1, None, insufficient),
        (999, None, insufficient),
        (1_000, None, insufficient),
        (1_001, None, insufficient),
        (50_000, None, insufficient),
        (50_001, None, SendError::Funding(FundingError::PinRequired)),
        (250_000, Some(true), insufficient),
        (500_000, Some(true), insufficient),
        (500_001, Some(true), daily_limit(500_000, 500_000)),
    ];
    for (amount, pin, expected) in cases {
        let answers: BTreeSet<String> =
            recipients.iter().map(|to| format!("{:?}", send(&mut h, prober, to.clone(), amount, pin))).collect();
        assert_eq!(answers, BTreeSet::from([format!("{:?}", Err::<(), _>(expected))]), "{amount} won");
    }
    assert_eq!(h.state.wallets().remittances_count(), HOLDS_PER_PHONE_MAX, "nothing but the holds was sent");
}

#[test]
fn the_senders_pin_and_daily_limit_come_before_anything_about_the_recipient() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 300_000);
    let full = funded(&mut h, "01033334444", 500_000);
    hold_for(&mut h, "01055556666", "01077778888", HOLDS_PER_PHONE_MAX);
    let lower = TierLimits { balance_cap: won(500_000), daily_outgoing: won(100_000) };
    assert!(matches!(
        wallet(&mut h, Command::SetTierLimits { tier: Tier::Basic, limits: lower }),
        Outcome::TierLimitsSet(Ok(_))
    ));
    for to in [Recipient::User(full), Recipient::Phone(phone("01077778888"))] {
        let cases = [
            (60_000, None, SendError::Funding(FundingError::PinRequired)),
            (1, Some(false), SendError::Funding(FundingError::WrongPin { attempts_left: 4 })),
            (100_001, Some(true), daily_limit(100_000, 100_000)),
            (1, Some(true), SendError::RecipientCannotReceive),
            (1, None, SendError::RecipientCannotReceive),
        ];
        for (amount, pin, expected) in cases {
            assert_eq!(send(&mut h, a, to.clone(), amount, pin), Err(expected), "{to:?} {amount} {pin:?}");
        }
    }
    assert_eq!(balance(&h, a), (300_000, 0));
}

#[test]
fn a_refusal_on_the_recipients_side_says_nothing_about_amounts() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 300_000);
    let almost = funded(&mut h, "01033334444", 499_000);
    assert_eq!(send(&mut h, a, Recipient::User(almost), 1_001, None), Err(SendError::RecipientCannotReceive));
    let message = SendError::RecipientCannotReceive.to_string();
    assert!(!message.chars().any(|c| c.is_ascii_digit()), "{message}");
    // Asked for money by a full wallet: paying it is refused the same way.
    let ask = request(&mut h, almost, Recipient::User(a), 1_001).unwrap();
    assert_eq!(answer(&mut h, a, ask.id, true, None), Err(RequestError::Payment(SendError::RecipientCannotReceive)));
    // Exactly the room left goes through.
    assert!(send(&mut h, a, Recipient::User(almost), 1_000, None).is_ok());
    assert_eq!(balance(&h, almost), (500_000, 0));
}

#[test]
fn a_number_with_20_holds_waiting_refuses_more_holds() {
    let mut h = Harness::default();
    let x = hold_for(&mut h, "01011110001", "01077778888", HOLDS_PER_PHONE_MAX - 5);
    let y = hold_for(&mut h, "01011110002", "01077778888", 5);
    let to = || Recipient::Phone(phone("01077778888"));
    assert_eq!(send(&mut h, x, to(), 1, None), Err(SendError::RecipientCannotReceive));
    assert_eq!(send(&mut h, y, to(), 1, None), Err(SendError::RecipientCannotReceive));
    assert!(send(&mut h, y, Recipient::Phone(phone("01077779999")), 1, None).is_ok(), "another number has room");
    cancel(&mut h, y, HOLDS_PER_PHONE_MAX as u64).unwrap();
    let last = send(&mut h, y, to(), 2, None).unwrap();
    assert_eq!(last.status, RemittanceStatus::Held, "a cancel makes room");
    h.restart();
    assert_eq!(send(&mut h, x, to(), 1, None), Err(SendError::RecipientCannotReceive), "counted after a restart");
    // The number signs up and claims all twenty in the same step.
    let z = sign_up(&mut h, "01077778888").unwrap();
    assert_eq!(balance(&h, z), (HOLDS_PER_PHONE_MAX as u128 + 1, 0));
    let claimed = h.events.iter().filter(|e| e.kind.name() == "remittance.claimed").count();
    assert_eq!(claimed, HOLDS_PER_PHONE_MAX);
}
