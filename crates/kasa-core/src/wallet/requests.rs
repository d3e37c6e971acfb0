//! Money requests and split bills (Dutch pay). A user asks another user for an amount; the
//! payer pays it (a remittance to the requester, under the same PIN, limit and funds rules)
//! or declines; a request nobody answers expires after 7 days, by engine time. A split bill is
//! a set of requests for the shares of a total, one per friend, so the requester sees who has
//! paid.

use super::remittance::{Recipient, SendError};
use super::{get_str, put_str, Wallets};
use crate::ledger::Ledger;
use std::collections::BTreeMap;

/// How long a money request stays payable: 7 days.
pub const REQUEST_TTL_NANOS: u64 = 7 * 24 * 3600 * 1_000_000_000;
/// Most shares in one split bill.
pub const SHARES_MAX: usize = 50;
/// The most won one request (or share, or bill) may ask for: above any tier's limits, it only
/// keeps nonsense out.
pub const AMOUNT_MAX_KRW: u64 = 1_000_000_000;

/// Where a money request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RequestStatus {
    /// Waiting for the payer.
    Pending = 1,
    /// Paid (see `remittance_id`).
    Paid = 2,
    /// Declined by the payer.
    Declined = 3,
}

impl RequestStatus {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Pending),
            2 => Some(Self::Paid),
            3 => Some(Self::Declined),
            _ => None,
        }
    }
}

/// A money request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoneyRequest {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Who asks for money.
    pub requester: u64,
    /// Who is asked.
    pub payer: u64,
    /// Won.
    pub amount: u64,
    /// A note from the requester.
    pub memo: String,
    /// When it was made.
    pub created_at: u64,
    /// Answered or not.
    pub status: RequestStatus,
    /// When paid: the remittance that paid it.
    pub remittance_id: u64,
    /// The split bill it belongs to (0: none).
    pub split_bill_id: u64,
}

impl MoneyRequest {
    /// The status name at `now`: a pending request past its 7 days reads `expired`.
    pub fn status_at(&self, now: u64) -> &'static str {
        match self.status {
            RequestStatus::Pending if now >= self.expires_at() => "expired",
            RequestStatus::Pending => "pending",
            RequestStatus::Paid => "paid",
            RequestStatus::Declined => "declined",
        }
    }

    /// When it stops being payable.
    pub fn expires_at(&self) -> u64 {
        self.created_at.saturating_add(REQUEST_TTL_NANOS)
    }
}

/// A split bill: a total and the requests for its shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitBill {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Who paid the bill and asks for the shares.
    pub requester: u64,
    /// The whole bill, in won.
    pub total: u64,
    /// A note.
    pub memo: String,
    /// The money requests, one per share.
    pub request_ids: Vec<u64>,
    /// When it was made.
    pub created_at: u64,
}

/// Why a request or split bill was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// Zero amount, or shares that do not add up to the total.
    #[error("{0}")]
    InvalidAmount(String),
    /// The memo is too long or has control characters.
    #[error("the memo must be at most 100 characters without control characters")]
    InvalidMemo,
    /// No such request for this user.
    #[error("no such money request")]
    NotFound,
    /// The request was answered already, or expired.
    #[error("the request is {0}")]
    NotPending(&'static str),
    /// Paying failed (PIN, limits, funds).
    #[error("{0}")]
    Payment(SendError),
}

/// Money requests and split bills.
#[derive(Clone, Debug, Default)]
pub struct RequestBook {
    pub(crate) requests: Vec<MoneyRequest>,
    pub(crate) bills: Vec<SplitBill>,
    /// Per user, the ids of the requests they were asked to pay, ascending; and of those they
    /// made. Derived from `requests` (rebuilt on decode, not in the canonical encoding).
    by_payer: BTreeMap<u64, Vec<u64>>,
    by_requester: BTreeMap<u64, Vec<u64>>,
}

/// Requests one listing call looks at, at most: a filter that matches little cannot make a
/// read scan everything a user was ever sent (it runs on the sequencer).
pub const LIST_SCAN_MAX: usize = 1_000;

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

impl RequestBook {
    /// Adds a request and indexes it under both users.
    fn add(&mut self, request: MoneyRequest) {
        self.by_payer.entry(request.payer).or_default().push(request.id);
        self.by_requester.entry(request.requester).or_default().push(request.id);
        self.requests.push(request);
    }

    /// Up to `limit` of `user_id`'s requests in `role`, newest first, with ids below `before`
    /// (0: no bound), and only those `keep` accepts (a status filter, say). Looks at no more
    /// than [`LIST_SCAN_MAX`] requests: a page can then be short, with `next_before` set.
    pub fn list(
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

    /// A money request by id.
    pub fn request(&self, id: u64) -> Option<&MoneyRequest> {
        id.checked_sub(1).and_then(|i| self.requests.get(i as usize))
    }

    /// A split bill by id.
    pub fn bill(&self, id: u64) -> Option<&SplitBill> {
        id.checked_sub(1).and_then(|i| self.bills.get(i as usize))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.requests.len() as u64).to_le_bytes());
        for r in &self.requests {
            out.extend_from_slice(&r.requester.to_le_bytes());
            out.extend_from_slice(&r.payer.to_le_bytes());
            out.extend_from_slice(&r.amount.to_le_bytes());
            put_str(out, &r.memo);
            out.extend_from_slice(&r.created_at.to_le_bytes());
            out.push(r.status as u8);
            out.extend_from_slice(&r.remittance_id.to_le_bytes());
            out.extend_from_slice(&r.split_bill_id.to_le_bytes());
        }
        out.extend_from_slice(&(self.bills.len() as u64).to_le_bytes());
        for b in &self.bills {
            out.extend_from_slice(&b.requester.to_le_bytes());
            out.extend_from_slice(&b.total.to_le_bytes());
            put_str(out, &b.memo);
            out.extend_from_slice(&(b.request_ids.len() as u64).to_le_bytes());
            for id in &b.request_ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
            out.extend_from_slice(&b.created_at.to_le_bytes());
        }
    }

    pub(crate) fn decode(c: &mut crate::command::Cursor, users: u64) -> Result<RequestBook, String> {
        let e = |e: crate::DecodeError| e.to_string();
        let known = |u: u64| u >= 1 && u <= users;
        let mut book = RequestBook::default();
        for i in 0..c.u64().map_err(e)? {
            let id = i + 1;
            let requester = c.u64().map_err(e)?;
            let payer = c.u64().map_err(e)?;
            let amount = c.u64().map_err(e)?;
            let memo = get_str(c)?;
            let created_at = c.u64().map_err(e)?;
            let status =
                RequestStatus::from_u8(c.u8().map_err(e)?).ok_or_else(|| format!("request {id}: bad status"))?;
            let remittance_id = c.u64().map_err(e)?;
            let split_bill_id = c.u64().map_err(e)?;
            if !known(requester) || !known(payer) {
                return Err(format!("request {id} names unknown users"));
            }
            book.add(MoneyRequest {
                id,
                requester,
                payer,
                amount,
                memo,
                created_at,
                status,
                remittance_id,
                split_bill_id,
            });
        }
        for i in 0..c.u64().map_err(e)? {
            let id = i + 1;
            let requester = c.u64().map_err(e)?;
            let total = c.u64().map_err(e)?;
            let memo = get_str(c)?;
            let n = c.u64().map_err(e)?;
            if n as usize > SHARES_MAX {
                return Err(format!("split bill {id} claims {n} shares"));
            }
            let mut request_ids = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let r = c.u64().map_err(e)?;
                if book.request(r).is_none_or(|r| r.split_bill_id != id) {
                    return Err(format!("split bill {id} names request {r}, which is not one of its shares"));
                }
                request_ids.push(r);
            }
            let created_at = c.u64().map_err(e)?;
            if !known(requester) {
                return Err(format!("split bill {id} names an unknown user"));
            }
            book.bills.push(SplitBill { id, requester, total, memo, request_ids, created_at });
        }
        Ok(book)
    }
}

impl Wallets {
    fn resolve_payer(&self, requester: u64, from: &Recipient) -> Result<u64, RequestError> {
        let payer = match from {
            Recipient::User(id) => self.user(*id).map(|u| u.id),
            Recipient::Phone(raw) => {
                let phone = super::Phone::parse(raw).map_err(|_| RequestError::UnknownPayer)?;
                self.user_by_phone(&phone).map(|u| u.id)
            }
        }
        .ok_or(RequestError::UnknownPayer)?;
        if payer == requester {
            return Err(RequestError::ToSelf);
        }
        Ok(payer)
    }

    /// Asks `from` for `amount`.
    pub fn request_money(
        &mut self,
        requester: u64,
        from: &Recipient,
        amount: u64,
        memo: &str,
        now: u64,
    ) -> Result<u64, RequestError> {
        if self.user(requester).is_none() {
            return Err(RequestError::UnknownUser);
        }
        if amount == 0 || amount > AMOUNT_MAX_KRW {
            return Err(RequestError::InvalidAmount(format!("the amount must be 1 to {AMOUNT_MAX_KRW} won")));
        }
        if memo.chars().count() > super::remittance::MEMO_CHARS_MAX || memo.chars().any(char::is_control) {
            return Err(RequestError::InvalidMemo);
        }
        let payer = self.resolve_payer(requester, from)?;
        Ok(self.push_request(requester, payer, amount, memo, now, 0))
    }

    fn push_request(
        &mut self,
        requester: u64,
        payer: u64,
        amount: u64,
        memo: &str,
        now: u64,
        split_bill_id: u64,
    ) -> u64 {
        let id = self.requests.requests.len() as u64 + 1;
        self.requests.add(MoneyRequest {
            id,
            requester,
            payer,
            amount,
            memo: memo.to_string(),
            created_at: now,
            status: RequestStatus::Pending,
            remittance_id: 0,
            split_bill_id,
        });
        id
    }

    /// Splits `total` into requests for `shares` (payer, amount); the amounts must add up to
    /// the total minus the requester's own part, which is `total` minus their sum.
    pub fn split_bill(
        &mut self,
        requester: u64,
        total: u64,
        shares: &[(Recipient, u64)],
        memo: &str,
        now: u64,
    ) -> Result<u64, RequestError> {
        if self.user(requester).is_none() {
            return Err(RequestError::UnknownUser);
        }
        if total > AMOUNT_MAX_KRW {
            return Err(RequestError::InvalidAmount(format!("the total must be at most {AMOUNT_MAX_KRW} won")));
        }
        if shares.is_empty() || shares.len() > SHARES_MAX {
            return Err(RequestError::InvalidAmount(format!("a split bill has 1 to {SHARES_MAX} shares")));
        }
        if memo.chars().count() > super::remittance::MEMO_CHARS_MAX || memo.chars().any(char::is_control) {
            return Err(RequestError::InvalidMemo);
        }
        let mut payers = Vec::with_capacity(shares.len());
        let mut sum: u64 = 0;
        for (who, amount) in shares {
            if *amount == 0 || *amount > AMOUNT_MAX_KRW {
                return Err(RequestError::InvalidAmount(format!("every share must be 1 to {AMOUNT_MAX_KRW} won")));
            }
            sum = sum.checked_add(*amount).ok_or_else(|| RequestError::InvalidAmount("the shares overflow".into()))?;
            let payer = self.resolve_payer(requester, who)?;
            if payers.contains(&payer) {
                return Err(RequestError::InvalidAmount("each friend appears once".into()));
            }
            payers.push(payer);
        }
        if sum > total {
            return Err(RequestError::InvalidAmount(format!(
                "the shares add up to {sum}, more than the total {total}"
            )));
        }
        let id = self.requests.bills.len() as u64 + 1;
        let request_ids = payers
            .iter()
            .zip(shares)
            .map(|(&payer, (_, amount))| self.push_request(requester, payer, *amount, memo, now, id))
            .collect();
        self.requests.bills.push(SplitBill {
            id,
            requester,
            total,
            memo: memo.to_string(),
            request_ids,
            created_at: now,
        });
        Ok(id)
    }

    /// The payer answers a request: pay it (a remittance to the requester) or decline it.
    #[allow(clippy::too_many_arguments)]
    pub fn answer_request(
        &mut self,
        ledger: &mut Ledger,
        payer: u64,
        request_id: u64,
        pay: bool,
        pin_ok: Option<bool>,
        now: u64,
    ) -> Result<(), RequestError> {
        let r =
            self.requests.request(request_id).filter(|r| r.payer == payer).cloned().ok_or(RequestError::NotFound)?;
        let status = r.status_at(now);
        if status != "pending" {
            return Err(RequestError::NotPending(status));
        }
        let index = (request_id - 1) as usize;
        if !pay {
            self.requests.requests[index].status = RequestStatus::Declined;
            return Ok(());
        }
        let remittance = self
            .send(ledger, payer, &Recipient::User(r.requester), r.amount, &r.memo, pin_ok, now)
            .map_err(RequestError::Payment)?;
        let request = &mut self.requests.requests[index];
        request.status = RequestStatus::Paid;
        request.remittance_id = remittance;
        Ok(())
    }
}
