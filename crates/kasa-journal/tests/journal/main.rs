//! The contract of the journal and the record log, tested through their public API on
//! `FaultStorage` (and on real files where threads or file modes are the point). One binary
//! with a module per concern keeps link time down.

mod common;

mod corruption;
mod crash;
mod disk_full;
mod file_modes;
mod file_storage;
mod record_log;
mod replay;
mod round_trip;
mod ship;
mod snapshot_stream;
mod sync_failure;
mod torn_tail;
mod verify;
