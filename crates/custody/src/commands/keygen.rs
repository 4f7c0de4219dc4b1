//! `custody keygen`.

use anyhow::Context as _;
use custody_evidence::KeyIdScheme;
use custody_platform::keyfiles::write_new_keypair;

use crate::cli::{Format, KeygenArgs};
use crate::exit::Exit;

pub fn run(args: KeygenArgs) -> anyhow::Result<Exit> {
    let (key, public) = write_new_keypair(&args.out).context("keygen")?;
    let pubkey = key.public();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "privateKey": args.out,
                "publicKey": public,
                "keyids": KeyIdScheme::ALL.iter().map(|s| (s.as_str().to_owned(), serde_json::Value::from(pubkey.keyid(*s)))).collect::<serde_json::Map<_, _>>(),
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            out!(
                "private key  {} (mode 0600; keep it secret)",
                args.out.display()
            );
            out!("public key   {}", public.display());
            out!("keyid sslib  {}", pubkey.keyid(KeyIdScheme::Sslib));
        }
    }
    Ok(Exit::Ok)
}
