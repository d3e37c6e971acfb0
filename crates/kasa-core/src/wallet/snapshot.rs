//! The wallet domain's section of a snapshot: its tables, written as bounded postcard blobs
//! (see [`crate::codec::put_table`]), and read back with every reference checked against the
//! tables before it and against Kasa's books, and every derived index rebuilt. Bad bytes give
//! an error that names the table and the item, never a panic or a wrong state.
//!
//! Version 2 of the section. What is *not* here is derived: phone and per-user indexes,
//! expiry orders, held remittances by number, returned holds by sender, pending fundings.

use super::adjust::Adjustment;
use super::funding::{BankAccount, Funding, FundingStatus};
use super::paycode::PaymentCode;
use super::remittance::{Remittance, RemittanceStatus};
use super::requests::{MoneyRequest, SplitBill};
use super::users::{Session, User, Verification, PIN_ATTEMPTS_MAX};
use super::Wallets;
use crate::codec::{put_table, read_table, DecodeError, Reader, Sink};
use crate::ledger::{expiry_of, Ledger};
use crate::table::Table;

/// The version of this section's layout: 2 added the users' payment codes.
pub const SECTION_VERSION: u16 = 2;

fn dense(what: &str, id: u64, expected: usize) -> Result<(), DecodeError> {
    if id != expected as u64 + 1 {
        return Err(DecodeError::invalid(format!("{what} {id} is out of order (expected id {})", expected + 1)));
    }
    Ok(())
}

/// The wallet domain's tables as they were when the view was taken: what its snapshot section
/// holds. Taking one costs a reference count per table (they are persistent collections).
#[derive(Clone, Debug)]
pub struct WalletsView {
    users: imbl::Vector<User>,
    sessions: Table<[u8; 32], Session>,
    verifications: Table<[u8; 16], Verification>,
    bank_accounts: imbl::Vector<BankAccount>,
    fundings: imbl::Vector<Funding>,
    remittances: imbl::Vector<Remittance>,
    requests: imbl::Vector<MoneyRequest>,
    bills: imbl::Vector<SplitBill>,
    adjustments: imbl::Vector<Adjustment>,
    payment_codes: Table<u64, PaymentCode>,
}

impl WalletsView {
    /// Writes the section, a table at a time in bounded blobs.
    pub(crate) fn write_section(&self, sink: &mut impl Sink) {
        let mut scratch = Vec::new();
        put_table(sink, self.users.iter(), self.users.len(), &mut scratch);
        put_table(sink, self.sessions.iter(), self.sessions.len(), &mut scratch);
        put_table(sink, self.verifications.iter(), self.verifications.len(), &mut scratch);
        put_table(sink, self.bank_accounts.iter(), self.bank_accounts.len(), &mut scratch);
        put_table(sink, self.fundings.iter(), self.fundings.len(), &mut scratch);
        put_table(sink, self.remittances.iter(), self.remittances.len(), &mut scratch);
        put_table(sink, self.requests.iter(), self.requests.len(), &mut scratch);
        put_table(sink, self.bills.iter(), self.bills.len(), &mut scratch);
        put_table(sink, self.adjustments.iter(), self.adjustments.len(), &mut scratch);
        put_table(sink, self.payment_codes.iter(), self.payment_codes.len(), &mut scratch);
    }
}

impl Wallets {
    /// The tables as they are now, for a snapshot written while the writer goes on.
    pub fn view(&self) -> WalletsView {
        WalletsView {
            users: self.users.clone(),
            sessions: self.sessions.clone(),
            verifications: self.verifications.clone(),
            bank_accounts: self.bank_accounts.clone(),
            fundings: self.fundings.clone(),
            remittances: self.remittances.clone(),
            requests: self.requests.clone(),
            bills: self.bills.clone(),
            adjustments: self.adjustments.clone(),
            payment_codes: self.payment_codes.clone(),
        }
    }

    /// Reads the section written by [`Wallets::write_section`]; `books` is the already read
    /// books section.
    pub(crate) fn read_section(r: &mut Reader<impl std::io::Read>, books: &Ledger) -> Result<Wallets, DecodeError> {
        let mut w = Wallets::default();
        read_table(r, "users", |u: User| {
            dense("user", u.id, w.users.len())?;
            if u.pin_failures >= PIN_ATTEMPTS_MAX {
                return Err(DecodeError::invalid(format!("user {} has {} PIN failures", u.id, u.pin_failures)));
            }
            if books.account(u.wallet_account_id()).is_none() {
                return Err(DecodeError::invalid(format!("user {} has no wallet account", u.id)));
            }
            if w.by_phone.insert(u.phone.clone(), u.id).is_some() {
                return Err(DecodeError::invalid(format!("user {} repeats a phone number", u.id)));
            }
            w.users.push_back(u);
            Ok(())
        })?;
        read_table(r, "sessions", |(hash, s): ([u8; 32], Session)| {
            if w.user(s.user_id).is_none() {
                return Err(DecodeError::invalid(format!("a session names unknown user {}", s.user_id)));
            }
            if w.sessions.insert(hash, s).is_some() {
                return Err(DecodeError::invalid("a session is listed twice".to_string()));
            }
            w.session_expiries.insert((s.expires_at, hash));
            w.user_sessions.insert((s.user_id, s.created_at, hash));
            Ok(())
        })?;
        read_table(r, "verifications", |(id, v): ([u8; 16], Verification)| {
            w.verification_expiries.insert((v.expires_at, id));
            w.verifications_by_phone.entry(v.phone.clone()).or_default().insert((v.created_at, id));
            if w.verifications.insert(id, v).is_some() {
                return Err(DecodeError::invalid("a verification is listed twice".to_string()));
            }
            Ok(())
        })?;
        read_table(r, "bank accounts", |b: BankAccount| {
            dense("bank account", b.id, w.bank_accounts.len())?;
            if w.user(b.user_id).is_none() {
                return Err(DecodeError::invalid(format!("bank account {} names unknown user {}", b.id, b.user_id)));
            }
            w.bank_accounts_of.insert((b.user_id, b.id));
            w.bank_accounts.push_back(b);
            Ok(())
        })?;
        read_table(r, "fundings", |f: Funding| {
            dense("funding", f.id, w.fundings.len())?;
            if w.bank_account(f.bank_account_id).is_none_or(|b| b.user_id != f.user_id) {
                return Err(DecodeError::invalid(format!("funding {} names an unknown user or bank account", f.id)));
            }
            if f.status == FundingStatus::Pending {
                w.pending_fundings.insert(f.id);
            }
            w.fundings.push_back(f);
            Ok(())
        })?;
        read_table(r, "remittances", |rem: Remittance| {
            dense("remittance", rem.id, w.remittances.len())?;
            let known = |u: u64| w.user(u).is_some();
            if !known(rem.from_user)
                || rem.to_user.is_some_and(|u| !known(u))
                || (rem.to_user.is_none() && rem.to_phone.is_none())
            {
                return Err(DecodeError::invalid(format!("remittance {} names unknown users", rem.id)));
            }
            match rem.status(books) {
                RemittanceStatus::Held if rem.to_user.is_none() => {
                    w.held_for.entry(rem.to_phone.clone().expect("checked above")).or_default().push(rem.id);
                }
                RemittanceStatus::Returned => {
                    let hold = books.transfer(rem.transfer_id()).expect("a status has its transfer");
                    let at = expiry_of(&hold)
                        .ok_or_else(|| DecodeError::invalid(format!("hold {} has no timeout", rem.id)))?;
                    w.returned.entry(rem.from_user).or_default().push((at, rem.id));
                }
                _ => {}
            }
            w.remittances.push_back(rem);
            Ok(())
        })?;
        read_table(r, "money requests", |q: MoneyRequest| {
            dense("money request", q.id, w.requests.len())?;
            if w.user(q.requester).is_none() || w.user(q.payer).is_none() {
                return Err(DecodeError::invalid(format!("money request {} names unknown users", q.id)));
            }
            w.add_request(q);
            Ok(())
        })?;
        read_table(r, "split bills", |b: SplitBill| {
            dense("split bill", b.id, w.bills.len())?;
            if w.user(b.requester).is_none() {
                return Err(DecodeError::invalid(format!("split bill {} names an unknown user", b.id)));
            }
            for &q in b.request_ids.as_slice() {
                if w.request(q).is_none_or(|q| q.split_bill_id != b.id) {
                    return Err(DecodeError::invalid(format!(
                        "split bill {} names request {q}, not one of its shares",
                        b.id
                    )));
                }
            }
            w.bills.push_back(b);
            Ok(())
        })?;
        read_table(r, "adjustments", |a: Adjustment| {
            dense("adjustment", a.id, w.adjustments.len())?;
            if w.user(a.user_id).is_none() {
                return Err(DecodeError::invalid(format!("adjustment {} names an unknown user", a.id)));
            }
            w.adjustments.push_back(a);
            Ok(())
        })?;
        read_table(r, "payment codes", |(user_id, c): (u64, PaymentCode)| {
            if c.user_id != user_id || w.user(user_id).is_none() || c.counter == 0 {
                return Err(DecodeError::invalid(format!("the payment code of user {user_id} is not a user's")));
            }
            if w.payment_codes.insert(user_id, c).is_some() {
                return Err(DecodeError::invalid(format!("user {user_id} has two payment codes")));
            }
            Ok(())
        })?;
        // Holds returned by their timeout are listed in time order per sender.
        for list in w.returned.values_mut() {
            list.sort_unstable();
        }
        w.check_invariants(books).map_err(DecodeError::Invalid)?;
        Ok(w)
    }
}
