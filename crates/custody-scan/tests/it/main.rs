//! custody-scan on the synthetic corpus of custody-test-support (`phi`: no real patient
//! data, no live secret): every planted item is found, each finding names the file,
//! line and rule and never holds the value; the real fixtures in ../shared/fixtures
//! raise nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod scan;
