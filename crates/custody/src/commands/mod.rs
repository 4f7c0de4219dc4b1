//! One module per subcommand.

pub mod attest;
pub mod digest;
pub mod keygen;
pub mod push;
pub mod query;
pub mod runners;
pub mod verify;
