//! The deterministic core of Kasa: the double-entry ledgers and the domains built on them.
//!
//! How the pieces fit: a client's request becomes a [`Command`], a thin sum of the domains'
//! own commands (`ledger`, `wallet`, and the ones to come), each in a folder of its own with
//! its commands, outcomes, events, tables and snapshot section. The sequencer (in
//! `kasa-engine`) gathers commands into a [`Batch`], stamps it with a timestamp, writes its
//! encoding ([`encode_commands`]) to the journal, and then calls [`State::apply`], which
//! returns one [`Outcome`] per command and emits [`event::Event`]s for the outbox. Money moves
//! in Kasa's own books ([`State::books`], laid out by [`chart`]); the operators' ledger API
//! has a ledger of its own ([`State::ledger`]). Limits, fees, money and time are shared
//! services, one module each. This crate does no I/O, reads no clock and uses no randomness,
//! so replaying the journal rebuilds the same state byte for byte ([`State::hash`]).
//!
//! ```
//! use kasa_core::ledger::{Account, AccountFlags, Command as LedgerCommand, Outcome as LedgerOutcome, Records, Transfer};
//! use kasa_core::{Batch, Command, Outcome, State};
//!
//! let mut state = State::default();
//! let wallet = Account { id: 1, ledger: 410, code: 1,
//!     flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), ..Default::default() };
//! let bank = Account { id: 2, ledger: 410, code: 2, ..Default::default() };
//! let top_up = Transfer { id: 10, debit_account_id: 2, credit_account_id: 1, amount: 5_000,
//!     ledger: 410, code: 1, ..Default::default() };
//! let batch = Batch { timestamp: 1_000, commands: vec![
//!     Command::Ledger(LedgerCommand::CreateAccounts(Records::new(vec![wallet, bank]).unwrap())),
//!     Command::Ledger(LedgerCommand::CreateTransfers(Records::new(vec![top_up]).unwrap())),
//! ]};
//! let outcomes = state.apply(&batch).unwrap();
//! let Outcome::Ledger(LedgerOutcome::Transfers(results)) = &outcomes[1] else { unreachable!() };
//! assert_eq!(results[0].result.name(), "ok");
//! assert_eq!(state.ledger().account(1).unwrap().credits_posted, 5_000);
//! state.check_invariants().unwrap();
//! ```

pub mod chart;
pub mod codec;
pub mod command;
pub mod context;
pub mod domain;
pub mod event;
pub mod fees;
pub mod fx;
pub mod idempotency;
pub mod ledger;
pub mod limits;
pub mod merchant;
pub mod money;
pub mod outbox;
pub mod partner;
pub mod qr;
pub mod state;
pub mod table;
pub mod text;
pub mod time;
pub mod wallet;

pub use codec::DecodeError;
pub use command::{
    decode_commands, encode_commands, Batch, Command, Inner, InnerOutcome, Keyed, KeyedOutcome, Outcome, SessionCommand,
};
pub use ledger::{
    Account, AccountBalance, AccountFlags, AccountOutcome, CreateAccountResult, CreateTransferResult, Ledger,
    LedgerTotals, PendingStatus, Transfer, TransferFlags, TransferOutcome, WideSum, ITEMS_PER_COMMAND_MAX,
};
pub use money::{Amount, Currency, Money};
pub use state::{ApplyError, State};
