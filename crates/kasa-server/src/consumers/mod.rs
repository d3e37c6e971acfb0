//! Outbox consumers: the effects outside Kasa, each driven by the engine's event log from
//! committed state, with a durable cursor in the core. A consumer that restarts goes on from
//! its cursor and redoes what it may not have finished (at least once); the receiving end is
//! idempotent (a bank by the funding's reference), so a crash at any moment neither loses nor
//! repeats an effect. A slow consumer lags; it never slows the writer.
//!
//! The consumers: the bank rail (`bank.rs`: top-ups, withdrawals, payouts and partners'
//! settlements), webhook deliveries (`webhooks.rs`), partners' payment notifications
//! (`partner_notify.rs`) and the calls to partners for users' payments abroad
//! (`partner_calls.rs`), these two checking partners' answers with `partner_answer.rs`, and the
//! PostgreSQL read model's feed (`read_model.rs`), whose cursor lives in PostgreSQL with its
//! rows rather than in the core.

pub mod bank;
pub mod partner_answer;
pub mod partner_calls;
pub mod partner_notify;
pub mod read_model;
pub mod webhooks;
