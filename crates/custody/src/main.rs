//! `custody`: the command line for people — key generation, attestations,
//! verification and audit queries. Parsing and exit codes live here; the work is in
//! [`custody::run`](cli::run).

/// `println!` that never panics: a closed stdout (`| head`) is not an error worth
/// dying over, and the data has nowhere to go anyway.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    output::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code.into(),
        Err(err) => {
            let code = exit::classify(&err);
            eprintln!("error: {}", output::render_error(&err));
            code.into()
        }
    }
}
