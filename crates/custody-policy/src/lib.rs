//! Policy-as-code for Custody: Rego policies evaluated with regorus over facts that
//! Rust has already verified. Not built yet (issue #5); the crate exists so the
//! workspace has its final shape.
