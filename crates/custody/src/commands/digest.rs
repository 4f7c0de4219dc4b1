//! `custody digest`: SHA-256 of files, streamed in constant memory.

use custody_evidence::sha256_reader;

use crate::cli::DigestArgs;
use crate::exit::{Exit, fail};

pub fn run(args: &DigestArgs) -> anyhow::Result<Exit> {
    for path in &args.files {
        let file = std::fs::File::open(path)
            .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?;
        let (digest, _) = sha256_reader(file)
            .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?;
        out!("{digest}  {}", path.display());
    }
    Ok(Exit::Ok)
}
