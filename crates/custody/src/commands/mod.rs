//! One module per subcommand.

pub mod attest;
pub mod keygen;
pub mod query;
pub mod verify;
