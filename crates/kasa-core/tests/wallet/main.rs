//! The wallet domain through `State::apply`, one file per area: users and sessions, phone
//! verification, funding, remittances, the PIN-free budget, balance privacy, money requests,
//! operators' adjustments, events, snapshots, and what operators can and cannot reach.
//!
//! Every command goes through the whole state machine, as the HTTP layer would send it (see
//! `support/wallet.rs`). After every batch the harness checks the state's invariants and the
//! per-user limit audit (`State::audit_limits`), so each test also shows that no command it
//! runs breaks a balance cap or an uncounted daily limit. Expected results are written out;
//! where many cases share one shape, they are a table. Regression tests name their bug in
//! their doc comment.
//!
//! Not here: the ledger API's result codes (`tests/results.rs`, `tests/tigerbeetle.rs`), the
//! decoders against random bytes (`tests/decode.rs`), and the HTTP mapping of outcomes.

#[path = "../support/mod.rs"]
mod support;

mod adjust;
mod events;
mod funding;
mod operators;
mod pin_free;
mod privacy;
mod remittance;
mod requests;
mod snapshot;
mod users;
mod verification;
