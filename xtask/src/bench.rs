//! `cargo xtask bench`: whole-process comparisons, side by side in one run.
//! Prints Markdown tables; BENCHMARKS.md records them with the machine they ran on.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
