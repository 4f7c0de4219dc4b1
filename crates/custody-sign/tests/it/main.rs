//! The AWS KMS signer against moto's KMS on loopback (`CUSTODY_MOTO`; `cargo xtask test`
//! starts nothing for it: each test starts its own server).

// Test helpers outside #[test] functions are not covered by clippy.toml's test
// exemptions; a failing unwrap here is a failing test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kms;
