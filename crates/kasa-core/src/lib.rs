//! The deterministic core of Kasa: the double-entry ledger and the commands that change it.
//!
//! How the pieces fit: a client's request becomes a [`Command`]; the sequencer (in
//! `kasa-engine`) gathers commands into a [`Batch`], stamps it with a timestamp, writes its
//! encoding ([`encode_commands`]) to the journal, and then calls [`State::apply`], which
//! returns one [`Outcome`] per command. This crate does no I/O, reads no clock and uses no
//! randomness, so replaying the journal rebuilds the same state byte for byte
//! ([`State::hash`]).
//!
//! ```
//! use kasa_core::{Account, Batch, Command, Outcome, State, Transfer, AccountFlags};
//!
//! let mut state = State::default();
//! let wallet = Account { id: 1, ledger: 410, code: 1,
//!     flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), ..Default::default() };
//! let bank = Account { id: 2, ledger: 410, code: 2, ..Default::default() };
//! let top_up = Transfer { id: 10, debit_account_id: 2, credit_account_id: 1, amount: 5_000,
//!     ledger: 410, code: 1, ..Default::default() };
//! let batch = Batch { timestamp: 1_000, commands: vec![
//!     Command::CreateAccounts(vec![wallet, bank]),
//!     Command::CreateTransfers(vec![top_up]),
//! ]};
//! let outcomes = state.apply(&batch).unwrap();
//! let Outcome::CreateTransfers(results) = &outcomes[1] else { unreachable!() };
//! assert_eq!(results[0].result.name(), "ok");
//! assert_eq!(state.ledger().account(1).unwrap().credits_posted, 5_000);
//! state.check_invariants().unwrap();
//! ```

pub mod command;
pub mod idempotency;
pub mod ledger;
pub mod state;
pub mod wallet;

pub use command::{
    decode_commands, encode_commands, Batch, Command, DecodeError, KeyedOutcome, Outcome, ITEMS_PER_COMMAND_MAX,
};
pub use ledger::{
    Account, AccountBalance, AccountFlags, AccountOutcome, CreateAccountResult, CreateTransferResult, Ledger,
    LedgerTotals, PendingStatus, Transfer, TransferFlags, TransferOutcome, WideSum,
};
pub use state::{ApplyError, State};
