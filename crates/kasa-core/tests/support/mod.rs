//! Shared helpers for the state machine tests: short constructors and a harness that stamps
//! batches with increasing timestamps.

#![allow(dead_code)]

pub mod wallet;

use kasa_core::event::Event;
use kasa_core::ledger::Outcome as LedgerOutcome;
use kasa_core::{Account, AccountFlags, Batch, Command, Outcome, State, Transfer, TransferFlags};

pub const LEDGER: u32 = 1;
pub const SECOND: u64 = 1_000_000_000;

pub fn account(id: u128, ledger: u32, flags: u16) -> Account {
    Account { id, ledger, code: 1, flags: AccountFlags(flags), ..Default::default() }
}

pub fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: LEDGER,
        code: 1,
        ..Default::default()
    }
}

pub fn with_flags(mut t: Transfer, flags: u16) -> Transfer {
    t.flags = TransferFlags(t.flags.0 | flags);
    t
}

pub fn pending(id: u128, debit: u128, credit: u128, amount: u128, timeout: u32) -> Transfer {
    let mut t = with_flags(transfer(id, debit, credit, amount), TransferFlags::PENDING);
    t.timeout = timeout;
    t
}

pub fn post(id: u128, pending_id: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        pending_id,
        amount,
        flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER),
        ..Default::default()
    }
}

pub fn void(id: u128, pending_id: u128) -> Transfer {
    Transfer { id, pending_id, flags: TransferFlags(TransferFlags::VOID_PENDING_TRANSFER), ..Default::default() }
}

/// Applies batches one at a time with timestamps one second apart (or more, by `advance`).
pub struct Harness {
    pub state: State,
    pub now: u64,
    /// Every event the batches emitted, in order (taken from the state after each batch).
    pub events: Vec<Event>,
    /// The batches applied, when recording (see [`Harness::recording`]), to replay them.
    pub journal: Option<Vec<Batch>>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::starting_at(1_700_000_000 * SECOND)
    }
}

impl Harness {
    /// A harness whose state audits the per-user limits after every command.
    pub fn starting_at(now: u64) -> Self {
        let mut state = State::default();
        state.audit_limits(true);
        Harness { state, now, events: Vec::new(), journal: None }
    }

    /// A harness that keeps the batches it applies, for [`Harness::replay`].
    pub fn recording() -> Self {
        Harness { journal: Some(Vec::new()), ..Harness::default() }
    }

    pub fn advance(&mut self, nanos: u64) {
        self.now += nanos;
    }

    pub fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        self.now = self.now.max(self.state.last_timestamp() + 1);
        let batch = Batch { timestamp: self.now, commands };
        let outcomes = self.state.apply(&batch).expect("batch accepted");
        self.events.extend(self.state.take_events());
        if let Some(journal) = &mut self.journal {
            journal.push(batch);
        }
        self.now = self.state.last_timestamp() + 1;
        self.state.check_invariants().expect("invariants hold after every batch");
        assert_eq!(self.state.take_limit_violation(), None, "the per-user limits hold after every command");
        outcomes
    }

    /// Takes the events emitted since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A restart: the state is replaced by the decoding of its snapshot, which must have the
    /// same hash; the limit audit stays on.
    pub fn restart(&mut self) {
        let mut restored = State::decode_snapshot(&self.state.encode_snapshot()).expect("the snapshot decodes");
        assert_eq!(restored.hash(), self.state.hash(), "a snapshot round trip keeps the state");
        restored.audit_limits(true);
        self.state = restored;
    }

    /// Applies the recorded batches to an empty state: the state and every event emitted.
    pub fn replay(&self) -> (State, Vec<Event>) {
        let journal = self.journal.as_ref().expect("a recording harness");
        let mut state = State::default();
        let mut events = Vec::new();
        for batch in journal {
            state.apply(batch).expect("a recorded batch applies again");
            events.extend(state.take_events());
        }
        (state, events)
    }

    pub fn accounts(&mut self, accounts: Vec<Account>) -> Vec<&'static str> {
        match &self.apply(vec![Command::create_accounts(accounts)])[0] {
            Outcome::Ledger(LedgerOutcome::Accounts(r)) => r.iter().map(|o| o.result.name()).collect(),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    pub fn transfers(&mut self, transfers: Vec<Transfer>) -> Vec<&'static str> {
        match &self.apply(vec![Command::create_transfers(transfers)])[0] {
            Outcome::Ledger(LedgerOutcome::Transfers(r)) => r.iter().map(|o| o.result.name()).collect(),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    pub fn balance(&self, id: u128) -> (u128, u128, u128, u128) {
        let a = self.state.ledger().account(id).expect("account exists");
        (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
    }
}
