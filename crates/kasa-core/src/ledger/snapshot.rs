//! A ledger's section of a snapshot: its accounts and transfers as 128-byte records, the
//! status of every pending transfer, the balance histories and the ids of transfers that
//! failed for good (`id_already_failed`). Indexes, history links and
//! expiry orders are derived and rebuilt by [`Ledger::from_parts`], which also checks that
//! the parts fit together. The operators' ledger and Kasa's books each write one.

use super::{Account, AccountBalance, Ledger, PendingStatus, Transfer, RECORD_BYTES};
use crate::codec::{DecodeError, Reader, Sink};

/// The version of this section's layout.
pub const SECTION_VERSION: u16 = 1;

/// The most balance entries one account's history may claim; guards the decoder's
/// allocation against a corrupt count.
const HISTORY_ENTRIES_MAX: u64 = 1 << 32;

/// Records per write: keeps the per-call cost of the sink low without a big buffer.
const RECORDS_PER_PUT: usize = 512;

fn put_records<'a, T: 'a + super::command::Record>(
    sink: &mut impl Sink,
    count: usize,
    items: impl Iterator<Item = &'a T>,
    buffer: &mut Vec<u8>,
) {
    sink.put(&(count as u64).to_le_bytes());
    for item in items {
        item.encode_record(buffer);
        if buffer.len() >= RECORD_BYTES * RECORDS_PER_PUT {
            sink.put(buffer);
            buffer.clear();
        }
    }
    sink.put(buffer);
    buffer.clear();
}

impl Ledger {
    /// Writes the section.
    pub(crate) fn write_section(&self, sink: &mut impl Sink) {
        let mut buffer = Vec::with_capacity(RECORD_BYTES * RECORDS_PER_PUT);
        put_records(sink, self.accounts_count(), self.accounts(), &mut buffer);
        put_records(sink, self.transfers_count(), self.transfers(), &mut buffer);
        let pending: Vec<(u32, PendingStatus)> = self.pending_statuses().collect();
        sink.put(&(pending.len() as u64).to_le_bytes());
        for (position, status) in pending {
            buffer.extend_from_slice(&position.to_le_bytes());
            buffer.push(status as u8);
        }
        sink.put(&buffer);
        buffer.clear();
        let histories: Vec<(u32, &[AccountBalance])> = self.balance_histories().collect();
        sink.put(&(histories.len() as u64).to_le_bytes());
        for (position, history) in histories {
            buffer.extend_from_slice(&position.to_le_bytes());
            buffer.extend_from_slice(&(history.len() as u64).to_le_bytes());
            for b in history {
                buffer.extend_from_slice(&b.timestamp.to_le_bytes());
                buffer.extend_from_slice(&b.debits_pending.to_le_bytes());
                buffer.extend_from_slice(&b.debits_posted.to_le_bytes());
                buffer.extend_from_slice(&b.credits_pending.to_le_bytes());
                buffer.extend_from_slice(&b.credits_posted.to_le_bytes());
            }
            sink.put(&buffer);
            buffer.clear();
        }
        let failed: Vec<u128> = self.failed_transfer_ids().collect();
        sink.put(&(failed.len() as u64).to_le_bytes());
        for id in failed {
            buffer.extend_from_slice(&id.to_le_bytes());
            if buffer.len() >= RECORD_BYTES * RECORDS_PER_PUT {
                sink.put(&buffer);
                buffer.clear();
            }
        }
        sink.put(&buffer);
        buffer.clear();
    }

    /// Reads what [`Ledger::write_section`] wrote. Every count and position is checked.
    pub(crate) fn read_section(c: &mut Reader) -> Result<Ledger, DecodeError> {
        let accounts_count = c.count(RECORD_BYTES, "accounts")?;
        let accounts: Vec<Account> = c
            .take(accounts_count * RECORD_BYTES)?
            .chunks_exact(RECORD_BYTES)
            .map(|r| Account::decode(r.try_into().expect("128 bytes")))
            .collect();
        let transfers_count = c.count(RECORD_BYTES, "transfers")?;
        let transfer_bytes = c.take(transfers_count * RECORD_BYTES)?;
        let transfers =
            transfer_bytes.chunks_exact(RECORD_BYTES).map(|r| Transfer::decode(r.try_into().expect("128 bytes")));
        let pending_count = c.count(5, "pending statuses")?;
        let mut pending = Vec::with_capacity(pending_count);
        for _ in 0..pending_count {
            let position = c.u32()?;
            let byte = c.u8()?;
            let status = PendingStatus::from_u8(byte)
                .ok_or_else(|| DecodeError::invalid(format!("pending status byte {byte} is unknown")))?;
            pending.push((position, status));
        }
        let history_count = c.count(12, "balance histories")?;
        let mut balances = Vec::with_capacity(history_count);
        for _ in 0..history_count {
            let position = c.u32()?;
            let n = c.u64()?;
            if n > HISTORY_ENTRIES_MAX || n.saturating_mul(72) > c.remaining() as u64 {
                return Err(DecodeError::invalid(format!("claims {n} balance entries, more than its bytes hold")));
            }
            let mut history = Vec::with_capacity(n as usize);
            for _ in 0..n {
                history.push(AccountBalance {
                    timestamp: c.u64()?,
                    debits_pending: c.u128()?,
                    debits_posted: c.u128()?,
                    credits_pending: c.u128()?,
                    credits_posted: c.u128()?,
                });
            }
            balances.push((position, history));
        }
        let failed_count = c.count(16, "failed transfer ids")?;
        let failed = (0..failed_count).map(|_| c.u128()).collect::<Result<Vec<u128>, _>>()?;
        Ledger::from_parts(accounts, transfers, pending, balances, failed).map_err(DecodeError::Invalid)
    }
}
