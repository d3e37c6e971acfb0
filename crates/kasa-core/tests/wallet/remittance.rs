//! Remittances: wallet to wallet at once, or held for a number without a wallet until it
//! signs up (claimed in the same step as the sign-up), is cancelled by its sender, or returns
//! after 48 hours of engine time; and the history that shows each of these.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::chart;
use kasa_core::limits::{LimitExceeded, LimitKind};
use kasa_core::time::kst_day;
use kasa_core::wallet::remittance::HOLD_SECONDS;
use kasa_core::wallet::{
    CancelError, FundingError, HistoryCursor, Recipient, RemittanceStatus, RemittanceView, SendError,
};
use kasa_core::{Currency, State};

fn status(h: &Harness, id: u64) -> RemittanceStatus {
    h.state.wallets().remittance(id).unwrap().status(h.state.books())
}

/// The remittance holding account's (credits, debits), posted and pending together.
fn holding(h: &Harness) -> (u128, u128) {
    let a = h.state.books().account(chart::REMITTANCE_HOLDING.system_id(Currency::KRW)).unwrap();
    (a.credits_posted + a.credits_pending, a.debits_posted + a.debits_pending)
}

#[test]
fn money_moves_between_users_with_limits_checked_in_the_same_step() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 300_000);
    let b = funded(&mut h, "01033334444", 450_000);
    let at = h.now;
    let first = send(&mut h, a, Recipient::Phone(phone("010-3333-4444")), 50_000, None).unwrap();
    let expected = RemittanceView {
        id: 1,
        status: RemittanceStatus::Completed,
        amount: won(50_000),
        memo: memo("밥값"),
        from_user: a,
        to_user: Some(b),
        to_phone: None,
        created_at: at,
        transfer_id: chart::REMITTANCE.id(1),
    };
    assert_eq!(first, expected, "a number with a wallet is that wallet");
    assert_eq!((available(&h, a), available(&h, b)), (250_000, 500_000));
    // b is at the cap: a's next send is refused without telling a how full b is.
    assert_eq!(send(&mut h, a, Recipient::User(b), 1, Some(true)), Err(SendError::RecipientCannotReceive));
    assert_eq!(send(&mut h, a, Recipient::User(a), 1, Some(true)), Err(SendError::ToSelf));
    assert_eq!(send(&mut h, a, Recipient::Phone(phone("01011112222")), 1, Some(true)), Err(SendError::ToSelf));
    assert_eq!(send(&mut h, a, Recipient::User(99), 1, Some(true)), Err(SendError::UnknownRecipient));
    assert_eq!(
        send(&mut h, a, Recipient::User(b), 0, Some(true)),
        Err(SendError::Funding(FundingError::InvalidAmount))
    );
    assert_eq!(send(&mut h, a, Recipient::User(b), 60_000, None), Err(SendError::Funding(FundingError::PinRequired)));
    // Exactly up to a's cap is fine.
    assert_eq!(send(&mut h, b, Recipient::User(a), 250_000, Some(true)).map(|r| r.id), Ok(2));
    assert_eq!((available(&h, a), available(&h, b)), (500_000, 250_000));
    // a sent 50,000 today: 450,000 of the daily 500,000 are left.
    assert_eq!(
        send(&mut h, a, Recipient::User(b), 450_001, Some(true)),
        Err(SendError::Funding(FundingError::LimitExceeded(LimitExceeded {
            limit: LimitKind::DailyOutgoing,
            value: won(500_000),
            remaining: won(450_000),
        })))
    );
    let c = funded(&mut h, "01055556666", 1_000);
    assert_eq!(
        send(&mut h, c, Recipient::User(b), 2_000, None),
        Err(SendError::Funding(FundingError::InsufficientFunds))
    );
    assert_eq!(available(&h, c), 1_000, "a refused send moves nothing");
    assert_eq!(h.state.wallets().remittances_count(), 2, "and keeps nothing");
    assert_eq!(send(&mut h, 99, Recipient::User(b), 1, None), Err(SendError::UnknownUser));
}

#[test]
fn money_for_a_number_without_a_wallet_is_held_then_claimed_at_sign_up() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 100_000);
    let r = send(&mut h, a, Recipient::Phone(phone("010-7777-8888")), 30_000, None).unwrap();
    assert_eq!((r.status, r.to_user, r.to_phone), (RemittanceStatus::Held, None, Some(phone("+821077778888"))));
    assert_eq!(balance(&h, a), (100_000, 30_000), "held money is not spendable, and not gone either");
    let b = sign_up(&mut h, "+821077778888").unwrap();
    assert_eq!(status(&h, r.id), RemittanceStatus::Completed);
    assert_eq!(balance(&h, b), (30_000, 0));
    assert_eq!(balance(&h, a), (70_000, 0));
    assert_eq!(h.state.wallets().remittance(r.id).unwrap().to_user, Some(b));
    let (credits, debits) = holding(&h);
    assert_eq!((credits, debits), (30_000, 30_000), "the holding account is empty once the claim is paid out");
    // The sender's history says sent; the new user's says received.
    let sent = history(&h.state, a, HistoryCursor::default(), 1).remove(0);
    assert_eq!((sent.kind.name(), sent.status, sent.balance_after), ("sent", "completed", Some(won(70_000))));
    let received = history(&h.state, b, HistoryCursor::default(), 10);
    assert_eq!(received.len(), 1);
    assert_eq!((received[0].kind.name(), received[0].counterparty_user), ("received", Some(a)));
    h.restart();
    assert_eq!(status(&h, r.id), RemittanceStatus::Completed);
}

/// A sign-up claims what is held for its number oldest first, as far as the new wallet's cap
/// allows; a hold that does not fit stays held and goes back to its sender after 48 hours.
#[test]
fn a_sign_up_claims_only_what_fits_under_the_new_wallets_cap() {
    let mut h = Harness::default();
    let x = funded(&mut h, "01011110001", 500_000);
    let y = funded(&mut h, "01011110002", 500_000);
    let to = || Recipient::Phone(phone("01077778888"));
    let x1 = send(&mut h, x, to(), 300_000, Some(true)).unwrap().id;
    let y1 = send(&mut h, y, to(), 300_000, Some(true)).unwrap().id;
    let x2 = send(&mut h, x, to(), 100_000, Some(true)).unwrap().id;
    let z = sign_up(&mut h, "01077778888").unwrap();
    assert_eq!(balance(&h, z), (400_000, 0));
    let statuses: Vec<RemittanceStatus> = [x1, y1, x2].iter().map(|&id| status(&h, id)).collect();
    assert_eq!(statuses, [RemittanceStatus::Completed, RemittanceStatus::Held, RemittanceStatus::Completed]);
    // New sends to the number go to the wallet; the hold that did not fit returns in time.
    assert_eq!(send(&mut h, y, to(), 1, None).map(|r| r.to_user), Ok(Some(z)));
    h.advance(u64::from(HOLD_SECONDS) * SECOND);
    h.apply(vec![]);
    assert_eq!(status(&h, y1), RemittanceStatus::Returned);
    assert_eq!(balance(&h, y), (499_999, 0));
    assert_eq!(balance(&h, z), (400_001, 0));
}

#[test]
fn held_money_returns_after_48_hours_or_when_cancelled() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011112222", 100_000);
    let r1 = send(&mut h, a, Recipient::Phone(phone("01055550001")), 10_000, None).unwrap().id;
    let r2 = send(&mut h, a, Recipient::Phone(phone("01055550002")), 20_000, None).unwrap();
    let day = kst_day(r2.created_at);
    assert_eq!(available(&h, a), 70_000);
    assert_eq!(h.state.limits().outgoing_on(a, day), won(30_000));
    assert_eq!(cancel(&mut h, 99, r1), Err(CancelError::NotFound), "only the sender cancels");
    assert_eq!(cancel(&mut h, a, 99), Err(CancelError::NotFound));
    assert_eq!(cancel(&mut h, a, r1).map(|r| r.status), Ok(RemittanceStatus::Cancelled));
    assert_eq!(cancel(&mut h, a, r1), Err(CancelError::NotHeld));
    assert_eq!((status(&h, r1), available(&h, a)), (RemittanceStatus::Cancelled, 80_000));
    assert_eq!(h.state.limits().outgoing_on(a, day), won(20_000), "a cancel gives the daily limit back");
    h.now = r2.created_at + u64::from(HOLD_SECONDS) * SECOND - 1;
    h.apply(vec![]);
    assert_eq!(status(&h, r2.id), RemittanceStatus::Held, "48 hours less a nanosecond");
    h.advance(1);
    h.apply(vec![]);
    assert_eq!((status(&h, r2.id), available(&h, a)), (RemittanceStatus::Returned, 100_000));
    assert_eq!(h.state.limits().outgoing_on(a, day), won(0), "returned money frees the daily limit");
    assert_eq!(cancel(&mut h, a, r2.id), Err(CancelError::NotHeld));
    // The history has an entry for each event: the money held, and the money back, at the
    // moment it came back (the cancel; the end of the 48 hours).
    let page = |state: &State, cursor: HistoryCursor| history(state, a, cursor, 10);
    let rows = |state: &State, cursor: HistoryCursor| {
        page(state, cursor).iter().map(|e| (e.kind.name(), e.status, e.amount, e.timestamp)).collect::<Vec<_>>()
    };
    let entries = rows(&h.state, HistoryCursor::default());
    let shape: Vec<_> = entries.iter().map(|&(kind, status, amount, _)| (kind, status, amount.minor())).collect();
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
    assert_eq!(entries[0].3, entries[2].3 + u64::from(HOLD_SECONDS) * SECOND, "returned exactly 48 hours after");
    let full = page(&h.state, HistoryCursor::default());
    assert_eq!(full[0].counterparty_phone.as_deref(), Some("+**********02"), "the number, masked");
    assert_eq!(rows(&h.state, full[0].cursor_after()), entries[1..].to_vec(), "a page after the newest");
    assert_eq!(rows(&h.state, full[1].cursor_after())[0], entries[2], "the timeout's entry is not repeated");
    // At equal times a transfer's entry comes first, and a page boundary between the two
    // loses neither: after the timeout's entry, nothing at its time is left; after a
    // transfer's entry at the same time, the timeout's entry still is.
    let at = full[0].timestamp;
    let after_transfer = HistoryCursor { before: at, returned_before: at + 1 };
    assert_eq!(rows(&h.state, after_transfer), entries, "the timeout's entry at `at` still comes");
    assert_eq!(full[0].cursor_after(), HistoryCursor { before: at, returned_before: at });
    // The index behind the returned entries is rebuilt from a snapshot.
    h.restart();
    assert_eq!(rows(&h.state, HistoryCursor::default()), entries);
    // Signing up after the return claims nothing.
    let late = sign_up(&mut h, "01055550002").unwrap();
    assert_eq!(balance(&h, late), (0, 0));
}

#[test]
fn a_long_history_reads_whole_through_its_pages_and_a_short_one_in_one() {
    // More transfers than the ledger page the history reads at a time (256), so that the
    // pages of 100 entries cross two of its boundaries.
    let mut h = Harness::default();
    let a = funded(&mut h, "01055550001", 100_000);
    let b = funded(&mut h, "01055550002", 10_000);
    for _ in 0..600 {
        send(&mut h, a, Recipient::User(b), 1, Some(true)).expect("a send");
    }
    let mut seen = Vec::new();
    let mut cursor = HistoryCursor::default();
    loop {
        let page = history(&h.state, a, cursor, 100);
        let Some(last) = page.last() else { break };
        cursor = last.cursor_after();
        seen.extend(page.iter().map(|e| (e.kind.name(), e.timestamp)));
    }
    assert_eq!(seen.len(), 601, "600 sends and the top-up, each once");
    assert!(seen.windows(2).all(|w| w[0].1 > w[1].1), "newest first, no entry twice");
    assert_eq!(seen.last().map(|e| e.0), Some("top_up"));
    // The recipient's short history (the top-up, then 600 receipts) is whole in one read
    // of more than it holds.
    assert_eq!(history(&h.state, b, HistoryCursor::default(), 1_000).len(), 601);
    // A member with one entry gets it, and nothing past the oldest.
    let c = funded(&mut h, "01055550003", 5_000);
    assert_eq!(history(&h.state, c, HistoryCursor::default(), 20).len(), 1);
}
