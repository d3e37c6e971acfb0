//! Money requests and split bills (Dutch pay). A user asks another user for an amount; the
//! payer pays it (a remittance to the requester, under the same PIN, limit and funds rules)
//! or declines; a request nobody answers expires after 7 days, by engine time. A split bill is
//! a set of requests for the shares of a total, one per friend, so the requester sees who has
//! paid.

use super::command::{Memo, Recipient, RequestStatus, RequestView, Share, SplitBillView};
use super::remittance::SendError;
use super::Ctx;
use super::{Event, Wallets};
use crate::money::Amount;
use crate::text::BoundedVec;
use crate::time::NANOS_PER_DAY;
use serde::{Deserialize, Serialize};

/// How long a money request stays payable: 7 days.
pub const REQUEST_TTL_NANOS: u64 = 7 * NANOS_PER_DAY;
/// The most won one request (or share, or bill) may ask for: above any tier's limits, it only
/// keeps nonsense out.
pub const AMOUNT_MAX_KRW: Amount = Amount::new(1_000_000_000);
/// Requests one listing call looks at, at most: a filter that matches little cannot make a
/// read scan everything a user was ever sent.
pub const LIST_SCAN_MAX: usize = 1_000;

/// A money request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyRequest {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Who asks for money.
    pub requester: u64,
    /// Who is asked.
    pub payer: u64,
    /// Won.
    pub amount: Amount,
    /// A note from the requester.
    pub memo: Memo,
    /// When it was made.
    pub created_at: u64,
    /// Answered or not.
    pub status: RequestStatus,
    /// When paid: the remittance that paid it (0: none).
    pub remittance_id: u64,
    /// The split bill it belongs to (0: none).
    pub split_bill_id: u64,
}

impl MoneyRequest {
    /// When it stops being payable.
    pub fn expires_at(&self) -> u64 {
        self.created_at.saturating_add(REQUEST_TTL_NANOS)
    }

    /// The request as a response shows it at `now`.
    pub fn view(&self, now: u64) -> RequestView {
        RequestView {
            id: self.id,
            requester: self.requester,
            payer: self.payer,
            amount: self.amount,
            memo: self.memo.clone(),
            status: self.status,
            remittance_id: self.remittance_id,
            split_bill_id: self.split_bill_id,
            created_at: self.created_at,
            expires_at: self.expires_at(),
            as_of: now,
        }
    }
}

/// A split bill: a total and the requests for its shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBill {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Who paid the bill and asks for the shares.
    pub requester: u64,
    /// The whole bill, in won.
    pub total: Amount,
    /// A note.
    pub memo: Memo,
    /// The money requests, one per share.
    pub request_ids: BoundedVec<u64, { super::SHARES_MAX }>,
    /// When it was made.
    pub created_at: u64,
}

/// Why a request or split bill was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RequestError {
    /// No such user (the requester).
    #[error("no such user")]
    UnknownUser,
    /// The payer is not a Kasa user.
    #[error("no user has this phone number or id")]
    UnknownPayer,
    /// Asking oneself.
    #[error("a request goes to someone else")]
    ToSelf,
    /// A zero or too large amount.
    #[error("an amount must be 1 to {AMOUNT_MAX_KRW} won")]
    InvalidAmount,
    /// No shares, or a friend twice.
    #[error("a split bill has 1 to 50 shares, one per friend")]
    InvalidShares,
    /// The shares add up to more than the total.
    #[error("the shares add up to more than the total")]
    SharesExceedTotal,
    /// No such request for this user.
    #[error("no such money request")]
    NotFound,
    /// The request was answered already, or expired.
    #[error("the request is {}", .0.name())]
    NotPending(Answered),
    /// Paying failed (PIN, limits, funds, the requester's limits).
    #[error("{0}")]
    Payment(SendError),
}

/// Why a request can no longer be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answered {
    /// It was paid.
    Paid,
    /// It was declined.
    Declined,
    /// Its 7 days passed.
    Expired,
}

impl Answered {
    /// The status name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Answered::Paid => "paid",
            Answered::Declined => "declined",
            Answered::Expired => "expired",
        }
    }
}

/// A page of money requests.
#[derive(Debug)]
pub struct RequestPage<'a> {
    /// Newest first.
    pub items: Vec<&'a MoneyRequest>,
    /// Where the next page starts (the `before` of the next call), if there may be more.
    pub next_before: Option<u64>,
}

/// Which side of a money request a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestRole {
    /// Requests the user was asked to pay.
    Payer,
    /// Requests the user made.
    Requester,
}

impl Wallets {
    /// A money request by id.
    pub fn request(&self, id: u64) -> Option<&MoneyRequest> {
        id.checked_sub(1).and_then(|i| self.requests.get(i as usize))
    }

    /// A split bill by id.
    pub fn bill(&self, id: u64) -> Option<&SplitBill> {
        id.checked_sub(1).and_then(|i| self.bills.get(i as usize))
    }

    /// A split bill as a response shows it at `now`.
    pub fn bill_view(&self, bill: &SplitBill, now: u64) -> SplitBillView {
        let requests =
            bill.request_ids.as_slice().iter().filter_map(|&id| self.request(id)).map(|r| r.view(now)).collect();
        SplitBillView {
            id: bill.id,
            requester: bill.requester,
            total: bill.total,
            memo: bill.memo.clone(),
            requests: BoundedVec::new(requests).expect("a bill has at most SHARES_MAX requests"),
            created_at: bill.created_at,
        }
    }

    /// Up to `limit` of `user_id`'s requests in `role`, newest first, with ids below `before`
    /// (0: no bound), and only those `keep` accepts (a status filter, say). Looks at no more
    /// than [`LIST_SCAN_MAX`] requests: a page can then be short, with `next_before` set.
    pub fn list_requests(
        &self,
        user_id: u64,
        role: RequestRole,
        before: u64,
        limit: usize,
        keep: impl Fn(&MoneyRequest) -> bool,
    ) -> RequestPage<'_> {
        let index = match role {
            RequestRole::Payer => &self.by_payer,
            RequestRole::Requester => &self.by_requester,
        };
        let mut page = RequestPage { items: Vec::new(), next_before: None };
        let Some(ids) = index.get(&user_id) else { return page };
        let end = if before == 0 { ids.len() } else { ids.partition_point(|&id| id < before) };
        for (scanned, &id) in ids[..end].iter().rev().enumerate() {
            if scanned == LIST_SCAN_MAX {
                page.next_before = Some(id + 1);
                return page;
            }
            let Some(r) = self.request(id) else { continue };
            if !keep(r) {
                continue;
            }
            if page.items.len() == limit {
                page.next_before = page.items.last().map(|last| last.id);
                return page;
            }
            page.items.push(r);
        }
        page
    }

    /// Adds a request and indexes it under both users.
    pub(super) fn add_request(&mut self, request: MoneyRequest) {
        self.by_payer.entry(request.payer).or_default().push(request.id);
        self.by_requester.entry(request.requester).or_default().push(request.id);
        self.requests.push_back(request);
    }

    fn resolve_payer(&self, requester: u64, from: &Recipient) -> Result<u64, RequestError> {
        let payer = match from {
            Recipient::User(id) => self.user(*id).map(|u| u.id),
            Recipient::Phone(phone) => self.user_by_phone(phone).map(|u| u.id),
        }
        .ok_or(RequestError::UnknownPayer)?;
        if payer == requester {
            return Err(RequestError::ToSelf);
        }
        Ok(payer)
    }

    fn new_request(&mut self, requester: u64, payer: u64, amount: Amount, memo: &Memo, now: u64, bill: u64) -> u64 {
        let id = self.requests.len() as u64 + 1;
        self.add_request(MoneyRequest {
            id,
            requester,
            payer,
            amount,
            memo: memo.clone(),
            created_at: now,
            status: RequestStatus::Pending,
            remittance_id: 0,
            split_bill_id: bill,
        });
        id
    }

    /// Asks `from` for `amount`.
    pub(super) fn request_money(
        &mut self,
        requester: u64,
        from: &Recipient,
        amount: Amount,
        memo: &Memo,
        ctx: &mut Ctx,
    ) -> Result<RequestView, RequestError> {
        let now = ctx.now();
        if self.user(requester).is_none() {
            return Err(RequestError::UnknownUser);
        }
        if amount.is_zero() || amount > AMOUNT_MAX_KRW {
            return Err(RequestError::InvalidAmount);
        }
        let payer = self.resolve_payer(requester, from)?;
        let id = self.new_request(requester, payer, amount, memo, now, 0);
        ctx.emit(Event::MoneyRequested { request_id: id, requester, payer, amount });
        Ok(self.requests[(id - 1) as usize].view(now))
    }

    /// Splits `total` into requests for `shares`; the shares may add up to less than the
    /// total (the requester's own part is the rest).
    pub(super) fn split_bill(
        &mut self,
        requester: u64,
        total: Amount,
        shares: &[Share],
        memo: &Memo,
        ctx: &mut Ctx,
    ) -> Result<SplitBillView, RequestError> {
        let now = ctx.now();
        if self.user(requester).is_none() {
            return Err(RequestError::UnknownUser);
        }
        if total > AMOUNT_MAX_KRW {
            return Err(RequestError::InvalidAmount);
        }
        if shares.is_empty() {
            return Err(RequestError::InvalidShares);
        }
        let mut payers = Vec::with_capacity(shares.len());
        let mut sum = Amount::ZERO;
        for share in shares {
            if share.amount.is_zero() || share.amount > AMOUNT_MAX_KRW {
                return Err(RequestError::InvalidAmount);
            }
            sum = sum.checked_add(share.amount).ok_or(RequestError::SharesExceedTotal)?;
            let payer = self.resolve_payer(requester, &share.payer)?;
            if payers.contains(&payer) {
                return Err(RequestError::InvalidShares);
            }
            payers.push(payer);
        }
        if sum > total {
            return Err(RequestError::SharesExceedTotal);
        }
        let bill_id = self.bills.len() as u64 + 1;
        let mut ids = Vec::with_capacity(payers.len());
        for (&payer, share) in payers.iter().zip(shares) {
            let id = self.new_request(requester, payer, share.amount, memo, now, bill_id);
            ctx.emit(Event::MoneyRequested { request_id: id, requester, payer, amount: share.amount });
            ids.push(id);
        }
        let bill = SplitBill {
            id: bill_id,
            requester,
            total,
            memo: memo.clone(),
            request_ids: BoundedVec::new(ids).expect("shares are bounded by their type"),
            created_at: now,
        };
        let view = self.bill_view(&bill, now);
        self.bills.push_back(bill);
        Ok(view)
    }

    /// The payer answers a request: pay it (a remittance to the requester) or decline it.
    pub(super) fn answer_request(
        &mut self,
        payer: u64,
        request_id: u64,
        pay: bool,
        pin_ok: Option<bool>,
        ctx: &mut Ctx,
    ) -> Result<RequestView, RequestError> {
        let now = ctx.now();
        let r = self.request(request_id).filter(|r| r.payer == payer).cloned().ok_or(RequestError::NotFound)?;
        match r.view(now).status_name() {
            "pending" => {}
            "paid" => return Err(RequestError::NotPending(Answered::Paid)),
            "declined" => return Err(RequestError::NotPending(Answered::Declined)),
            _ => return Err(RequestError::NotPending(Answered::Expired)),
        }
        let index = (request_id - 1) as usize;
        if !pay {
            self.requests[index].status = RequestStatus::Declined;
            ctx.emit(Event::RequestDeclined { request_id });
            return Ok(self.requests[index].view(now));
        }
        let remittance = self
            .send(payer, &Recipient::User(r.requester), r.amount, &r.memo, pin_ok, ctx)
            .map_err(RequestError::Payment)?;
        let request = &mut self.requests[index];
        request.status = RequestStatus::Paid;
        request.remittance_id = remittance.id;
        ctx.emit(Event::RequestPaid { request_id, remittance_id: remittance.id });
        Ok(self.requests[index].view(now))
    }
}
