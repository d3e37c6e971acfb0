//! What a domain's apply gets besides its own tables: Kasa's books (the ledger its money
//! moves in), the shared limits and fees, the event timestamps of the command, and where its
//! events go. One struct, so that every domain reaches the shared services the same way and
//! none keeps a copy of them. It is generic over the domain's event type, so it depends on no
//! domain.

use crate::fees::Fees;
use crate::ledger::{Ledger, Transfer, TransferOutcome};
use crate::limits::Limits;

/// The context of one command of a domain whose events are `E`. See the module documentation.
pub struct Ctx<'a, E> {
    /// Kasa's own books.
    pub books: &'a mut Ledger,
    /// Tier limits, daily totals, PIN-free budgets.
    pub limits: &'a mut Limits,
    /// The fees in force.
    pub fees: &'a mut Fees,
    events: &'a mut Vec<E>,
    first: u64,
    used: u64,
    /// The seq of the last event numbered before this command (its own come after): where
    /// something made now starts to see events.
    pub last_event: u64,
}

impl<'a, E> Ctx<'a, E> {
    /// A context for a command whose first event timestamp is `first`.
    pub fn new(
        books: &'a mut Ledger,
        limits: &'a mut Limits,
        fees: &'a mut Fees,
        events: &'a mut Vec<E>,
        first: u64,
    ) -> Self {
        Ctx { books, limits, fees, events, first, used: 0, last_event: 0 }
    }

    /// The command's time: its first event timestamp.
    pub fn now(&self) -> u64 {
        self.first
    }

    /// The next unused event timestamp (every ledger object gets its own).
    pub fn stamp(&mut self) -> u64 {
        self.stamps(1)
    }

    /// Takes `n` consecutive timestamps and returns the first.
    pub fn stamps(&mut self, n: u64) -> u64 {
        let at = self.first + self.used;
        self.used += n;
        at
    }

    /// How many timestamps the command used: at least one, so that commands are ordered in
    /// time.
    pub fn used(&self) -> u64 {
        self.used.max(1)
    }

    /// How many timestamps the command used so far (none for a command that moved no money).
    pub fn stamps_used(&self) -> u64 {
        self.used
    }

    /// Creates one transfer in the books at the next timestamp.
    pub fn transfer(&mut self, transfer: &Transfer) -> TransferOutcome {
        let at = self.stamp();
        self.books.create_transfer(transfer, at)
    }

    /// Creates transfers (a linked chain, say) in the books at the next timestamps.
    pub fn transfers(&mut self, transfers: &[Transfer]) -> Vec<TransferOutcome> {
        let at = self.stamps(transfers.len() as u64);
        self.books.create_transfers(transfers, at)
    }

    /// Records an event of the command (only once it succeeded).
    pub fn emit(&mut self, event: E) {
        self.events.push(event);
    }
}
