//! The model's own shape of ledger batches: the ledger's two commands over plain vectors, so
//! that the workload can build and the shrinker can cut them freely, and the conversion to
//! the core's commands and back at the one place the real state is called.

use kasa_core::ledger::Outcome as LedgerOutcome;
use kasa_core::{Account, AccountOutcome, State, Transfer, TransferOutcome};

/// A ledger command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    CreateAccounts(Vec<Account>),
    CreateTransfers(Vec<Transfer>),
}

impl Command {
    pub(crate) fn events(&self) -> usize {
        match self {
            Command::CreateAccounts(a) => a.len(),
            Command::CreateTransfers(t) => t.len(),
        }
    }

    fn core(&self) -> kasa_core::Command {
        match self {
            Command::CreateAccounts(a) => kasa_core::Command::create_accounts(a.clone()),
            Command::CreateTransfers(t) => kasa_core::Command::create_transfers(t.clone()),
        }
    }
}

/// A ledger outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    CreateAccounts(Vec<AccountOutcome>),
    CreateTransfers(Vec<TransferOutcome>),
}

/// Ledger commands with one timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) timestamp: u64,
    pub(crate) commands: Vec<Command>,
}

/// Applies `batch` to the real state.
pub(crate) fn apply(state: &mut State, batch: &Batch) -> Result<Vec<Outcome>, kasa_core::ApplyError> {
    let core =
        kasa_core::Batch { timestamp: batch.timestamp, commands: batch.commands.iter().map(Command::core).collect() };
    Ok(state
        .apply(&core)?
        .into_iter()
        .map(|o| match o {
            kasa_core::Outcome::Ledger(LedgerOutcome::Accounts(a)) => Outcome::CreateAccounts(a),
            kasa_core::Outcome::Ledger(LedgerOutcome::Transfers(t)) => Outcome::CreateTransfers(t),
            other => panic!("a ledger command answered {other:?}"),
        })
        .collect())
}
