//! A ledger's section of a snapshot: its accounts and transfers as 128-byte records, the
//! status of every pending transfer, the balance log and the ids of transfers that failed for
//! good (`id_already_failed`). Indexes, history links and expiry orders are derived, and
//! rebuilt by [`LedgerBuilder`], which also checks that the parts fit together. The
//! operators' ledger and Kasa's books each write one.
//!
//! A snapshot is written from a [`LedgerView`] (frozen copy-on-write chunks, so the writer
//! goes on while another thread encodes) and read as a stream, a slice of records at a time:
//! neither side ever holds the whole section in one buffer.

use super::balances::BalanceLogView;
use super::cold::TransfersView;
use super::store::ChunkedView;
use super::{
    Account, AccountBalance, Ledger, PendingStatus, Transfer, TransferFlags, NANOS_PER_SECOND, NONE, RECORD_BYTES,
};
use crate::codec::{DecodeError, Reader, Sink};

/// The version of this section's layout.
pub const SECTION_VERSION: u16 = 1;

/// Records per write and per read: keeps the per-call cost of the sink low with a small buffer.
const RECORDS_PER_PUT: usize = 512;
/// Bytes of one balance log entry: the account's position and the balance.
const BALANCE_ENTRY_BYTES: usize = 4 + 8 + 4 * 16;

/// A ledger's content as it was when the view was taken: what its snapshot section holds.
#[derive(Clone, Debug)]
pub struct LedgerView {
    accounts: ChunkedView<Account>,
    transfers: TransfersView,
    pending: ChunkedView<u8>,
    balance_log: BalanceLogView,
    failed: ChunkedView<u128>,
}

impl Ledger {
    /// A frozen view of the ledger's content, for a snapshot written while the ledger changes.
    pub fn view(&self) -> LedgerView {
        LedgerView {
            accounts: self.accounts.view(),
            transfers: self.transfers.view(),
            pending: self.pending.view(),
            balance_log: self.balance_log.view(),
            failed: self.failed_ids.view(),
        }
    }
}

fn put_records<'a, T: 'a + super::command::Record>(
    sink: &mut impl Sink,
    items: impl Iterator<Item = &'a T>,
    buffer: &mut Vec<u8>,
) {
    for item in items {
        item.encode_record(buffer);
        flush_if_full(sink, buffer);
    }
    sink.put(buffer);
    buffer.clear();
}

fn flush_if_full(sink: &mut impl Sink, buffer: &mut Vec<u8>) {
    if buffer.len() >= RECORD_BYTES * RECORDS_PER_PUT {
        sink.put(buffer);
        buffer.clear();
    }
}

impl LedgerView {
    /// Writes the section.
    pub(crate) fn write_section(&self, sink: &mut impl Sink) {
        let mut buffer = Vec::with_capacity(RECORD_BYTES * (RECORDS_PER_PUT + 1));
        // Both counts first, so that a reader sizes the transfer index once before it reads.
        sink.put(&(self.accounts.len() as u64).to_le_bytes());
        sink.put(&(self.transfers.len() as u64).to_le_bytes());
        put_records(sink, self.accounts.iter(), &mut buffer);
        self.transfers.for_each_chunk(|records| put_records(sink, records.iter(), &mut buffer));
        let pending_count = self.pending.iter().filter(|&&b| b != 0).count();
        sink.put(&(pending_count as u64).to_le_bytes());
        for (position, &status) in self.pending.iter().enumerate().filter(|(_, &b)| b != 0) {
            buffer.extend_from_slice(&(position as u32).to_le_bytes());
            buffer.push(status);
            flush_if_full(sink, &mut buffer);
        }
        sink.put(&buffer);
        buffer.clear();
        sink.put(&(self.balance_log.len() as u64).to_le_bytes());
        self.balance_log.for_each(|account, b| {
            buffer.extend_from_slice(&account.to_le_bytes());
            buffer.extend_from_slice(&b.timestamp.to_le_bytes());
            buffer.extend_from_slice(&b.debits_pending.to_le_bytes());
            buffer.extend_from_slice(&b.debits_posted.to_le_bytes());
            buffer.extend_from_slice(&b.credits_pending.to_le_bytes());
            buffer.extend_from_slice(&b.credits_posted.to_le_bytes());
            flush_if_full(sink, &mut buffer);
        });
        sink.put(&buffer);
        buffer.clear();
        sink.put(&(self.failed.len() as u64).to_le_bytes());
        for id in self.failed.iter() {
            buffer.extend_from_slice(&id.to_le_bytes());
            flush_if_full(sink, &mut buffer);
        }
        sink.put(&buffer);
    }
}

impl Ledger {
    /// Reads what [`LedgerView::write_section`] wrote, a slice of records at a time. Every
    /// count, position and reference is checked.
    pub(crate) fn read_section(
        c: &mut Reader<impl std::io::Read>,
        cold: Option<(&dyn super::ColdSpill, usize)>,
    ) -> Result<Ledger, DecodeError> {
        let invalid = DecodeError::Invalid;
        let accounts = c.u64()?;
        let transfers = c.u64()?;
        let records = accounts.checked_add(transfers).and_then(|n| n.checked_mul(RECORD_BYTES as u64));
        if records.is_none_or(|bytes| bytes > c.remaining() as u64) {
            return Err(DecodeError::invalid(format!(
                "claims {accounts} accounts and {transfers} transfers, more than its bytes hold"
            )));
        }
        let mut builder = LedgerBuilder::new(transfers as usize);
        if let Some((spill, which)) = cold {
            builder.ledger.set_cold_store(spill.store(which));
        }
        let mut left = accounts as usize;
        while left > 0 {
            let n = left.min(RECORDS_PER_PUT);
            for r in c.take(n * RECORD_BYTES)?.chunks_exact(RECORD_BYTES) {
                builder.account(Account::decode(r.try_into().expect("128 bytes"))).map_err(invalid)?;
            }
            left -= n;
        }
        let mut left = transfers as usize;
        while left > 0 {
            let n = left.min(RECORDS_PER_PUT);
            let chunk: Vec<Transfer> = c
                .take(n * RECORD_BYTES)?
                .chunks_exact(RECORD_BYTES)
                .map(|r| Transfer::decode(r.try_into().expect("128 bytes")))
                .collect();
            for t in chunk {
                builder.transfer(t).map_err(invalid)?;
            }
            left -= n;
            if builder.ledger.transfers.len().is_multiple_of(super::TRANSFERS_PER_CHUNK) || left == 0 {
                builder.spill(super::ColdKind::Transfers, cold);
            }
        }
        for _ in 0..c.count(5, "pending statuses")? {
            let position = c.u32()?;
            let byte = c.u8()?;
            let status = PendingStatus::from_u8(byte)
                .ok_or_else(|| DecodeError::invalid(format!("pending status byte {byte} is unknown")))?;
            builder.pending(position, status).map_err(invalid)?;
        }
        for _ in 0..c.count(BALANCE_ENTRY_BYTES, "balances")? {
            let account = c.u32()?;
            let balance = AccountBalance {
                timestamp: c.u64()?,
                debits_pending: c.u128()?,
                debits_posted: c.u128()?,
                credits_pending: c.u128()?,
                credits_posted: c.u128()?,
            };
            builder.balance(account, balance).map_err(invalid)?;
            if builder.ledger.balance_log.len().is_multiple_of(super::TRANSFERS_PER_CHUNK) {
                builder.spill(super::ColdKind::Balances, cold);
            }
        }
        builder.spill(super::ColdKind::Balances, cold);
        for _ in 0..c.count(16, "failed transfer ids")? {
            let id = c.u128()?;
            builder.failed(id).map_err(invalid)?;
        }
        builder.finish().map_err(invalid)
    }
}

/// Rebuilds a ledger from the parts a snapshot holds, one item at a time, checking each, and
/// derives the indexes, history links and expiry order on the way.
pub struct LedgerBuilder {
    ledger: Ledger,
    last_timestamp: u64,
    /// Per account position, the timestamp of its last balance so far (0: none): checks each
    /// account's history for order without reading back an entry that went cold meanwhile.
    last_balance: Vec<u64>,
}

impl LedgerBuilder {
    /// A builder for about `transfers` transfers (the index is sized once for them).
    pub fn new(transfers: usize) -> Self {
        let mut ledger = Ledger::default();
        let no_records = |_: u32| -> u128 { unreachable!("the index is empty") };
        ledger.transfer_index.reserve(transfers, no_records);
        LedgerBuilder { ledger, last_timestamp: 0, last_balance: Vec::new() }
    }

    /// With a spill, puts the chunks of a kind beyond the hot window in the store.
    fn spill(&mut self, kind: super::ColdKind, cold: Option<(&dyn super::ColdSpill, usize)>) {
        if let Some((spill, which)) = cold {
            self.ledger.spill_while_decoding(kind, spill, which);
        }
    }

    /// Adds the next account.
    pub fn account(&mut self, a: Account) -> Result<(), String> {
        let ledger = &mut self.ledger;
        if a.id == 0 || a.id == u128::MAX || ledger.account_position(a.id).is_some() {
            return Err(format!("account id {} is invalid or repeated", a.id));
        }
        let position = ledger.accounts.push(a);
        let accounts = &ledger.accounts;
        ledger.account_index.insert(a.id, position, |p| accounts.get(p).id);
        ledger.account_heads.push(NONE);
        ledger.account_counts.push(0);
        Ok(())
    }

    /// Adds the next transfer (after every account).
    pub fn transfer(&mut self, t: Transfer) -> Result<(), String> {
        let ledger = &mut self.ledger;
        let records = &ledger.transfers;
        let vacant = match ledger.transfer_index.probe_by(t.id, |p| records.id_hash(p), |p| records.is(p, t.id)) {
            Err(vacant) if t.id != 0 && t.id != u128::MAX => vacant,
            _ => return Err(format!("transfer id {} is invalid or repeated", t.id)),
        };
        if t.timestamp <= self.last_timestamp {
            return Err(format!("transfer {} is out of timestamp order", t.id));
        }
        self.last_timestamp = t.timestamp;
        let dr = ledger.account_position(t.debit_account_id);
        let cr = ledger.account_position(t.credit_account_id);
        let (Some(dr), Some(cr)) = (dr, cr) else {
            return Err(format!("transfer {} names an unknown account", t.id));
        };
        if dr == cr {
            return Err(format!("transfer {} debits and credits one account", t.id));
        }
        ledger.insert_transfer(t, dr, cr, Some(vacant));
        Ok(())
    }

    /// Sets the status of the pending transfer at `position` (after every transfer).
    pub fn pending(&mut self, position: u32, status: PendingStatus) -> Result<(), String> {
        let ledger = &mut self.ledger;
        if position as usize >= ledger.transfers.len()
            || !ledger.transfers.at(position).flags.has(TransferFlags::PENDING)
        {
            return Err(format!("pending status names position {position}, which is not a pending transfer"));
        }
        if *ledger.pending.get(position) != 0 {
            return Err(format!("pending status of position {position} given twice"));
        }
        if status == PendingStatus::Pending {
            let p = ledger.transfers.at(position);
            if p.timeout != 0 {
                let at = (p.timeout as u64)
                    .checked_mul(NANOS_PER_SECOND)
                    .and_then(|ns| p.timestamp.checked_add(ns))
                    .ok_or_else(|| format!("pending transfer {} expires past the end of time", p.id))?;
                ledger.expiries.insert((at, position));
            }
        }
        *ledger.pending.get_mut(position) = status as u8;
        Ok(())
    }

    /// Adds the next entry of the balance log.
    pub fn balance(&mut self, account: u32, balance: AccountBalance) -> Result<(), String> {
        let ledger = &mut self.ledger;
        if account as usize >= ledger.accounts.len() {
            return Err(format!("a balance names account position {account}, which does not exist"));
        }
        self.last_balance.resize(ledger.accounts.len(), 0);
        let last = &mut self.last_balance[account as usize];
        if *last > balance.timestamp {
            return Err(format!("the balance history of account position {account} goes back in time"));
        }
        *last = balance.timestamp;
        let entry = ledger.balance_log.push(account, &balance);
        ledger.balance_index.push(account, entry);
        Ok(())
    }

    /// Adds the next id of a transfer that failed for good.
    pub fn failed(&mut self, id: u128) -> Result<(), String> {
        let ledger = &mut self.ledger;
        if id == 0 || id == u128::MAX || ledger.failed_before(id) || ledger.transfer_position(id).is_some() {
            return Err(format!("failed transfer id {id} is invalid, repeated or a transfer's"));
        }
        ledger.remember_failed(id);
        Ok(())
    }

    /// The ledger, once its parts are checked to fit together: parts that decode but do not
    /// (a pending transfer without a status, balances that differ from the reservations)
    /// would panic later, on a client's request, so they are refused now.
    pub fn finish(mut self) -> Result<Ledger, String> {
        self.ledger.check_invariants()?;
        self.ledger.seal();
        Ok(self.ledger)
    }
}
