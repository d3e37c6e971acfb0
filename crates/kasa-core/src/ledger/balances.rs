//! The balance log of accounts with the `history` flag, kept small: a wallet account logs a
//! balance after every transfer, so at millions of members the log is one of the largest
//! things in memory.
//!
//! An [`AccountBalance`] is four `u128` amounts and a timestamp; with the account's position
//! and the amounts' alignment, an entry took 96 bytes. The log keeps the amounts in 64 bits
//! (48 bytes an entry), and an entry whose amounts do not all fit (more than 18 quintillion
//! minor units: never a won wallet) points into a second array that holds them whole. Each
//! account's entries are found through [`Positions`], which holds up to three positions
//! inline (most wallets have few entries), and a vector beyond that.
//!
//! Like the transfers, the log is append-only, so its full chunks before the last never
//! change again and go **cold** as the transfers' do (`cold.rs`): the engine copies them to
//! its embedded store and the log drops them, keeping only the chunk list. A cold entry is
//! read back through the ledger's [`ColdStore`]. The positions and the wide amounts stay in
//! memory (4 bytes an entry, and wide amounts never happen in a won wallet).

use super::cold::ColdStore;
use super::store::{Chunked, ChunkedView, CHUNK_RECORDS};
use super::AccountBalance;
use std::sync::Arc;

/// One entry of the log, as the cold store keeps it too ([`LoggedBalance::BYTES`] bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoggedBalance {
    /// The account's position.
    account: u32,
    /// 0 if the amounts fit in `amounts`, else 1 + the position of the whole amounts in the
    /// wide array.
    wide: u32,
    timestamp: u64,
    /// Debits pending, debits posted, credits pending, credits posted.
    amounts: [u64; 4],
}

impl LoggedBalance {
    /// Bytes of an entry in the cold store.
    pub const BYTES: usize = 48;

    /// Appends the entry's bytes (little-endian fields in order).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.account.to_le_bytes());
        out.extend_from_slice(&self.wide.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        for a in self.amounts {
            out.extend_from_slice(&a.to_le_bytes());
        }
    }

    /// The entry [`LoggedBalance::encode`] wrote.
    pub fn decode(bytes: &[u8; Self::BYTES]) -> LoggedBalance {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        LoggedBalance {
            account: u32_at(0),
            wide: u32_at(4),
            timestamp: u64_at(8),
            amounts: [u64_at(16), u64_at(24), u64_at(32), u64_at(40)],
        }
    }
}

/// Every balance of accounts with the `history` flag, in the order they were recorded.
/// Append-only and copy-on-write, like the transfers.
#[derive(Clone, Debug, Default)]
pub(crate) struct BalanceLog {
    entries: Chunked<LoggedBalance>,
    wide: Chunked<[u128; 4]>,
    /// Where cold entries are read.
    store: Option<Arc<dyn ColdStore>>,
}

fn amounts(b: &AccountBalance) -> [u128; 4] {
    [b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted]
}

fn balance(
    timestamp: u64,
    [debits_pending, debits_posted, credits_pending, credits_posted]: [u128; 4],
) -> AccountBalance {
    AccountBalance { timestamp, debits_pending, debits_posted, credits_pending, credits_posted }
}

impl LoggedBalance {
    /// The balance, with `wide` giving the whole amounts of a wide entry.
    fn balance(&self, wide: impl FnOnce() -> [u128; 4]) -> AccountBalance {
        let amounts = if self.wide == 0 { self.amounts.map(u128::from) } else { wide() };
        balance(self.timestamp, amounts)
    }
}

impl BalanceLog {
    /// Appends account `account`'s balance `b`; returns its position.
    pub(crate) fn push(&mut self, account: u32, b: &AccountBalance) -> u32 {
        let whole = amounts(b);
        let narrow = whole.map(|a| u64::try_from(a).ok());
        let logged = match narrow {
            [Some(dp), Some(dq), Some(cp), Some(cq)] => {
                LoggedBalance { account, wide: 0, timestamp: b.timestamp, amounts: [dp, dq, cp, cq] }
            }
            _ => {
                let wide = self.wide.push(whole);
                LoggedBalance { account, wide: wide + 1, timestamp: b.timestamp, amounts: [0; 4] }
            }
        };
        self.entries.push(logged)
    }

    /// Removes the newest entry (the rollback of a failed chain); returns its account.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        let logged = self.entries.pop()?;
        if logged.wide != 0 {
            self.wide.pop();
        }
        Some(logged.account)
    }

    /// The entry at `position`, which must exist: the account's position and the balance.
    pub(crate) fn get(&self, position: u32) -> (u32, AccountBalance) {
        let logged = self.entry(position);
        (logged.account, logged.balance(|| *self.wide.get(logged.wide - 1)))
    }

    /// The entry at `position` as it is kept, which must exist.
    pub(crate) fn entry(&self, position: u32) -> LoggedBalance {
        if self.entries.is_hot(position) {
            *self.entries.get(position)
        } else {
            self.read_cold(position)
        }
    }

    #[cold]
    #[inline(never)]
    fn read_cold(&self, position: u32) -> LoggedBalance {
        let mut out = [LoggedBalance::default()];
        self.store.as_ref().expect("a cold chunk without a store").read_balances(position, &mut out);
        out[0]
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn set_store(&mut self, store: Arc<dyn ColdStore>) {
        self.store = Some(store);
    }

    /// The number of chunks of entries, and how many of the oldest are cold.
    pub(crate) fn chunks(&self) -> (usize, usize) {
        (self.entries.chunk_count(), self.entries.cold_chunks())
    }

    /// Chunk `index` if no write will touch it again: what may go to the store.
    pub(crate) fn sealed_full_chunk(&self, index: usize) -> Option<Arc<Vec<LoggedBalance>>> {
        self.entries.sealed_full_chunk(index)
    }

    /// Drops the next chunk to go cold. The store must hold it.
    pub(crate) fn make_cold(&mut self) {
        assert!(self.store.is_some(), "a chunk goes cold only with a store to read it from");
        self.entries.make_cold();
    }

    pub(crate) fn seal(&mut self) {
        self.entries.seal();
        self.wide.seal();
    }

    pub(crate) fn view(&self) -> BalanceLogView {
        BalanceLogView { entries: self.entries.view(), wide: self.wide.view(), store: self.store.clone() }
    }

    pub(crate) fn bytes_allocated(&self) -> usize {
        self.entries.bytes_allocated() + self.wide.bytes_allocated()
    }
}

/// A frozen view of the balance log, for a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct BalanceLogView {
    entries: ChunkedView<LoggedBalance>,
    wide: ChunkedView<[u128; 4]>,
    store: Option<Arc<dyn ColdStore>>,
}

impl BalanceLogView {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Calls `f` with the entries in order (account position, balance), reading cold chunks
    /// from the store a chunk at a time (they never change, so any later read gives the same).
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32, AccountBalance)) {
        // Wide entries are in the wide array in the log's order.
        let mut wide = self.wide.iter();
        let mut buffer = Vec::new();
        for (index, chunk) in self.entries.chunks().enumerate() {
            let entries = match chunk {
                Some(entries) => entries,
                None => {
                    buffer.resize(CHUNK_RECORDS, LoggedBalance::default());
                    let store = self.store.as_ref().expect("a cold chunk without a store");
                    store.read_balances((index * CHUNK_RECORDS) as u32, &mut buffer);
                    &buffer
                }
            };
            for logged in entries {
                f(logged.account, logged.balance(|| *wide.next().expect("a wide entry has its amounts")));
            }
        }
    }
}

/// Each account's positions in the log, by account position: an array, not a map (a map's
/// nodes cost about twice the 24 bytes of an entry, and each balance logged walked it at
/// millions of accounts), in chunks, so that growing it never copies it on the writer. It
/// grows to the highest account that logged a balance, so an account without the `history`
/// flag below that one costs an empty entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct BalanceIndex {
    by_account: Chunked<Positions>,
}

impl BalanceIndex {
    /// Account `account`'s positions in the log, oldest first.
    pub(crate) fn get(&self, account: u32) -> &[u32] {
        if (account as usize) < self.by_account.len() {
            self.by_account.get(account).as_slice()
        } else {
            &[]
        }
    }

    /// Appends `entry` to account `account`'s positions.
    pub(crate) fn push(&mut self, account: u32, entry: u32) {
        while self.by_account.len() <= account as usize {
            self.by_account.push(Positions::default());
        }
        self.by_account.get_mut(account).push(entry);
    }

    /// Removes account `account`'s newest position (the rollback of a failed chain).
    pub(crate) fn pop(&mut self, account: u32) {
        debug_assert!(!self.get(account).is_empty(), "the undo log and the balance index agree");
        self.by_account.get_mut(account).pop();
    }

    /// Bytes held by the array (not the vectors of accounts with more than three entries).
    pub(crate) fn bytes_allocated(&self) -> usize {
        self.by_account.bytes_allocated()
    }
}

/// One account's positions in the log, oldest first: up to three inline, more in a vector.
#[derive(Clone, Debug)]
pub(crate) enum Positions {
    Few(u8, [u32; 3]),
    Many(Vec<u32>),
}

impl Default for Positions {
    fn default() -> Self {
        Positions::Few(0, [0; 3])
    }
}

impl Positions {
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            Positions::Few(len, items) => &items[..*len as usize],
            Positions::Many(items) => items,
        }
    }

    pub(crate) fn push(&mut self, position: u32) {
        match self {
            Positions::Few(len, items) if (*len as usize) < items.len() => {
                items[*len as usize] = position;
                *len += 1;
            }
            Positions::Few(_, items) => {
                let mut many = Vec::with_capacity(8);
                many.extend_from_slice(items);
                many.push(position);
                *self = Positions::Many(many);
            }
            Positions::Many(items) => items.push(position),
        }
    }

    pub(crate) fn pop(&mut self) {
        match self {
            Positions::Few(len, _) => *len = len.saturating_sub(1),
            Positions::Many(items) => {
                items.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(timestamp: u64, amount: u128) -> AccountBalance {
        AccountBalance {
            timestamp,
            debits_pending: amount,
            debits_posted: amount + 1,
            credits_pending: amount + 2,
            credits_posted: amount + 3,
        }
    }

    /// Narrow and wide entries, mixed, read back the same from the log, its view and after
    /// pops; an entry is 48 bytes.
    #[test]
    fn balances_of_any_size_read_back_whole() {
        assert_eq!(std::mem::size_of::<LoggedBalance>(), 48);
        let mut log = BalanceLog::default();
        let amounts = [0, 5, u64::MAX as u128 - 3, u64::MAX as u128, u128::MAX - 3, 1 << 100, 7];
        for (i, &a) in amounts.iter().enumerate() {
            assert_eq!(log.push(i as u32, &b(i as u64, a)), i as u32);
        }
        for (i, &a) in amounts.iter().enumerate() {
            assert_eq!(log.get(i as u32), (i as u32, b(i as u64, a)));
        }
        let view = log.view();
        assert_eq!(log.pop(), Some(6));
        assert_eq!(log.pop(), Some(5));
        log.push(9, &b(99, u128::MAX - 3));
        assert_eq!(log.get(5), (9, b(99, u128::MAX - 3)));
        assert_eq!(log.get(4), (4, b(4, u128::MAX - 3)));
        let mut seen = Vec::new();
        view.for_each(|account, b| seen.push((account, b)));
        let expected: Vec<_> = amounts.iter().enumerate().map(|(i, &a)| (i as u32, b(i as u64, a))).collect();
        assert_eq!(seen, expected, "a view keeps what the log held");
        let mut count = 0;
        log.view().for_each(|_, _| count += 1);
        assert_eq!(count, 6);
    }

    /// The index by account position: accounts that never logged read empty, whether below or
    /// past the highest that did; pops take back exactly the pushes; growing past a chunk of
    /// accounts keeps what was there.
    #[test]
    fn the_index_by_account_reads_pushes_and_pops() {
        let mut index = BalanceIndex::default();
        assert_eq!(index.get(0), &[] as &[u32]);
        assert_eq!(index.get(u32::MAX - 1), &[] as &[u32]);
        index.push(7, 100);
        index.push(7, 101);
        index.push(2, 102);
        let far = CHUNK_RECORDS as u32 + 5;
        index.push(far, 103);
        for i in 0..5 {
            index.push(7, 200 + i);
        }
        assert_eq!(index.get(7), &[100, 101, 200, 201, 202, 203, 204]);
        assert_eq!(index.get(2), &[102]);
        assert_eq!(index.get(3), &[] as &[u32]);
        assert_eq!(index.get(far), &[103]);
        assert_eq!(index.get(far + 1), &[] as &[u32]);
        index.pop(far);
        index.pop(7);
        index.pop(7);
        assert_eq!(index.get(far), &[] as &[u32]);
        assert_eq!(index.get(7), &[100, 101, 200, 201, 202]);
        assert!(index.bytes_allocated() >= (far as usize + 1) * std::mem::size_of::<Positions>());
    }

    #[test]
    fn positions_spill_from_inline_to_a_vector() {
        let mut p = Positions::default();
        assert!(p.as_slice().is_empty());
        for i in 0..5 {
            p.push(i * 10);
            assert_eq!(p.as_slice(), (0..=i).map(|j| j * 10).collect::<Vec<_>>().as_slice());
        }
        assert_eq!(p.as_slice().last(), Some(&40));
        for _ in 0..5 {
            p.pop();
        }
        assert!(p.as_slice().is_empty());
        assert_eq!(std::mem::size_of::<Positions>(), 24, "no larger than the vector it replaces");
    }
}
