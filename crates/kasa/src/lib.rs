//! The library half of the `kasa` package: what the binary and its end-to-end tests share.
//! Today that is the minimal HTTP client that the benchmark and the tests use to talk to a
//! real `kasa serve`.

pub mod client;
