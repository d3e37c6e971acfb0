//! HTTP handlers, one file per area: `ledger` for the ledger API, `ops` for health and
//! metrics, `users` for wallet users and sessions. Handlers parse and validate the request, hand a command or a query to the
//! engine, and shape the answer; they hold no state of their own.

pub mod funding;
pub mod ledger;
pub mod ops;
pub mod remittance;
pub mod requests;
pub mod users;
