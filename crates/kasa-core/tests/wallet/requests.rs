//! Money requests and split bills: a request is paid (a remittance under the payer's PIN,
//! limits and funds), declined, or expires after 7 days of engine time; a split bill is one
//! request per share; listings are per role, newest first, and bounded per call.

use crate::support::wallet::*;
use crate::support::*;
use kasa_core::wallet::requests::{Answered, AMOUNT_MAX_KRW, LIST_SCAN_MAX, REQUEST_TTL_NANOS};
use kasa_core::wallet::{Command, Recipient, RequestError, RequestRole, RequestStatus, RequestView};

fn amount_of(i: u64) -> kasa_core::money::Amount {
    won(1 + i)
}

/// Listing is per role, newest first, and looks at a bounded number of requests per call: a
/// filter that matches nothing among many requests ends the page early with a place to go on
/// from, instead of scanning them all on the sequencer.
#[test]
fn listing_requests_is_per_role_and_bounded() {
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01033330001").unwrap();
    let b = sign_up(&mut h, "01033330002").unwrap();
    let total = LIST_SCAN_MAX as u64 + 5;
    let asks: Vec<kasa_core::Command> = (0..total)
        .map(|i| {
            kasa_core::Command::Wallet(Command::RequestMoney {
                requester: a,
                from: Recipient::User(b),
                amount: amount_of(i),
                memo: memo(""),
            })
        })
        .collect();
    for chunk in asks.chunks(500) {
        h.apply(chunk.to_vec());
    }
    let wallets = h.state.wallets();
    let page = wallets.list_requests(b, RequestRole::Payer, 0, 3, |_| true);
    let ids: Vec<u64> = page.items.iter().map(|r| r.id).collect();
    assert_eq!((ids, page.next_before), (vec![total, total - 1, total - 2], Some(total - 2)));
    let next = wallets.list_requests(b, RequestRole::Payer, total - 2, 2, |_| true);
    assert_eq!(next.items.iter().map(|r| r.id).collect::<Vec<_>>(), [total - 3, total - 4], "the next page");
    assert!(wallets.list_requests(b, RequestRole::Requester, 0, 3, |_| true).items.is_empty(), "b asked for nothing");
    assert_eq!(wallets.list_requests(a, RequestRole::Requester, 0, 100, |_| true).items.len(), 100);
    // Nothing matches: the first call stops after LIST_SCAN_MAX, the second finishes.
    let none = wallets.list_requests(b, RequestRole::Payer, 0, 10, |r| r.amount.is_zero());
    assert_eq!((none.items.len(), none.next_before), (0, Some(total - LIST_SCAN_MAX as u64 + 1)));
    let rest = wallets.list_requests(b, RequestRole::Payer, none.next_before.unwrap(), 10, |r| r.amount.is_zero());
    assert_eq!((rest.items.len(), rest.next_before), (0, None));
    // One match far down is found by paging on.
    let far = wallets.list_requests(b, RequestRole::Payer, none.next_before.unwrap(), 10, |r| r.amount == won(2));
    assert_eq!(far.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn a_request_is_paid_declined_or_expires() {
    let mut h = Harness::default();
    let a = funded(&mut h, "01011110000", 10_000);
    let b = funded(&mut h, "01022220000", 50_000);
    let from_b = || Recipient::Phone(phone("010-2222-0000"));
    let at = h.now;
    let r1 = request(&mut h, a, from_b(), 4_500).unwrap();
    let expected = RequestView {
        id: 1,
        requester: a,
        payer: b,
        amount: won(4_500),
        memo: memo("커피"),
        status: RequestStatus::Pending,
        remittance_id: 0,
        split_bill_id: 0,
        created_at: at,
        expires_at: at + REQUEST_TTL_NANOS,
        as_of: at,
    };
    assert_eq!(r1, expected);
    assert_eq!(answer(&mut h, a, r1.id, true, None), Err(RequestError::NotFound), "only the payer answers");
    let paid = answer(&mut h, b, r1.id, true, None).unwrap();
    assert_eq!((paid.status_name(), paid.remittance_id), ("paid", 1));
    let remittance = h.state.wallets().remittance(1).unwrap();
    assert_eq!((remittance.from_user, remittance.to_user, remittance.memo.as_str()), (b, Some(a), "커피"));
    assert_eq!((balance(&h, a), balance(&h, b)), ((14_500, 0), (45_500, 0)));
    assert_eq!(answer(&mut h, b, r1.id, true, None), Err(RequestError::NotPending(Answered::Paid)));
    assert_eq!(answer(&mut h, b, r1.id, false, None), Err(RequestError::NotPending(Answered::Paid)));
    let r2 = request(&mut h, a, from_b(), 1_000).unwrap().id;
    assert_eq!(answer(&mut h, b, r2, false, None).map(|r| r.status_name()), Ok("declined"));
    assert_eq!(answer(&mut h, b, r2, true, None), Err(RequestError::NotPending(Answered::Declined)));
    // Payable until 7 days have passed, to the nanosecond.
    let r3 = request(&mut h, a, from_b(), 1_000).unwrap();
    let r4 = request(&mut h, a, from_b(), 1_000).unwrap();
    h.now = r3.expires_at - 1;
    assert_eq!(answer(&mut h, b, r3.id, true, None).map(|r| r.status_name()), Ok("paid"));
    h.now = r4.expires_at;
    assert_eq!(h.state.wallets().request(r4.id).unwrap().view(h.now).status_name(), "expired");
    assert_eq!(answer(&mut h, b, r4.id, true, None), Err(RequestError::NotPending(Answered::Expired)));
    assert_eq!(answer(&mut h, b, r4.id, false, None), Err(RequestError::NotPending(Answered::Expired)));
    assert_eq!(balance(&h, b), (44_500, 0));
    // Amounts, payers and requesters are checked.
    let max = AMOUNT_MAX_KRW.minor();
    let cases = [
        (a, from_b(), 0, Err(RequestError::InvalidAmount)),
        (a, from_b(), max + 1, Err(RequestError::InvalidAmount)),
        (a, Recipient::User(a), 1, Err(RequestError::ToSelf)),
        (a, Recipient::User(99), 1, Err(RequestError::UnknownPayer)),
        (a, Recipient::Phone(phone("01099990000")), 1, Err(RequestError::UnknownPayer)),
        (99, from_b(), 1, Err(RequestError::UnknownUser)),
        (a, from_b(), max, Ok(5)),
    ];
    for (requester, from, amount, expected) in cases {
        assert_eq!(request(&mut h, requester, from.clone(), amount).map(|r| r.id), expected, "{from:?} {amount}");
    }
    h.restart();
    assert_eq!(h.state.wallets().request(r2).unwrap().status, RequestStatus::Declined);
}

#[test]
fn a_split_bill_is_one_request_per_share() {
    let mut h = Harness::default();
    let a = sign_up(&mut h, "01011110000").unwrap();
    let b = funded(&mut h, "01022220000", 50_000);
    let c = funded(&mut h, "01033330000", 50_000);
    let (to_b, to_c) = (|| Recipient::User(b), || Recipient::Phone(phone("01033330000")));
    let cases = [
        (30_000, vec![(to_b(), 20_000), (to_c(), 20_000)], RequestError::SharesExceedTotal),
        (30_000, vec![(to_b(), 10_000), (Recipient::Phone(phone("01022220000")), 10_000)], RequestError::InvalidShares),
        (30_000, vec![], RequestError::InvalidShares),
        (30_000, vec![(to_b(), 0)], RequestError::InvalidAmount),
        (AMOUNT_MAX_KRW.minor() + 1, vec![(to_b(), 1)], RequestError::InvalidAmount),
        (30_000, vec![(to_b(), 10_000), (Recipient::User(a), 10_000)], RequestError::ToSelf),
        (30_000, vec![(Recipient::User(99), 10_000)], RequestError::UnknownPayer),
    ];
    for (total, shares, expected) in cases {
        assert_eq!(split(&mut h, a, total, shares.clone()), Err(expected), "{total} {shares:?}");
    }
    assert_eq!(h.state.wallets().request(1), None, "a refused split bill asks nobody");
    let bill = split(&mut h, a, 30_000, vec![(to_b(), 10_000), (to_c(), 10_000)]).unwrap();
    assert_eq!((bill.id, bill.total, bill.requests.len()), (1, won(30_000), 2));
    let shares: Vec<(u64, u64, u64)> =
        bill.requests.as_slice().iter().map(|r| (r.payer, r.amount.minor(), r.split_bill_id)).collect();
    assert_eq!(shares, [(b, 10_000, 1), (c, 10_000, 1)]);
    let ids: Vec<u64> = bill.requests.as_slice().iter().map(|r| r.id).collect();
    assert_eq!(answer(&mut h, b, ids[0], true, None).map(|r| r.status_name()), Ok("paid"));
    let now = h.now;
    let view = h.state.wallets().bill_view(h.state.wallets().bill(bill.id).unwrap(), now);
    let statuses: Vec<&str> = view.requests.as_slice().iter().map(|r| r.status_name()).collect();
    assert_eq!(statuses, ["paid", "pending"]);
    assert_eq!(balance(&h, a), (10_000, 0));
    h.restart();
    assert_eq!(h.state.wallets().bill_view(h.state.wallets().bill(bill.id).unwrap(), now), view);
}
