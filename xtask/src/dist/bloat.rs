//! `cargo xtask bloat`: where the bytes of the release binaries go, per crate, with
//! cargo-bloat (installed into `.tools`). It measures the release profile for the host
//! target (x86_64 glibc here) with symbols kept, since cargo-bloat reads the symbol
//! table: the split between crates is what matters, not the last kilobyte, and the musl
//! build differs only in its libc.

use crate::util::{self, cargo};

use super::BINARIES;
use super::tools::{CARGO_BLOAT, cargo_tool};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Binaries to measure (default: all four).
    #[arg(long = "bin")]
    bins: Vec<String>,
    /// How many crates to list.
    #[arg(short = 'n', default_value_t = 15)]
    n: usize,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let bloat = cargo_tool(CARGO_BLOAT)?;
    let bins: Vec<String> = if args.bins.is_empty() {
        BINARIES.iter().map(|b| (*b).to_owned()).collect()
    } else {
        args.bins.clone()
    };
    for bin in bins {
        println!("## {bin}");
        let mut cmd = cargo();
        // cargo-bloat is a cargo subcommand: run it through cargo so it finds the toolchain
        cmd.arg("bloat")
            .env(
                "PATH",
                std::env::join_paths(
                    std::iter::once(bloat.parent().map(Into::into).unwrap_or_default()).chain(
                        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
                    ),
                )?,
            )
            .args([
                "--release",
                "--locked",
                "--crates",
                "-p",
                &bin,
                "--bin",
                &bin,
            ])
            .arg("-n")
            .arg(args.n.to_string())
            .env("CARGO_PROFILE_RELEASE_STRIP", "false");
        util::run(&mut cmd)?;
    }
    Ok(())
}
