//! One module per subcommand.

pub mod attest;
pub mod digest;
pub mod export;
pub mod keygen;
pub mod log;
pub mod policy;
pub mod push;
pub mod query;
pub mod retention;
pub mod runners;
pub mod scan;
pub mod verify;
pub mod verify_bundle;
