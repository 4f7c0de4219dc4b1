//! `custody keygen` and `custody public-key`.

use anyhow::Context as _;
use custody_evidence::{KeyIdScheme, PublicKey};
use custody_platform::context::ProcessEnv;
use custody_platform::keyfiles::write_new_keypair;
use custody_platform::step;

use crate::cli::{Format, KeygenArgs, PublicKeyArgs};
use crate::exit::{Exit, fail};

fn keyids(key: &PublicKey) -> serde_json::Map<String, serde_json::Value> {
    KeyIdScheme::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                serde_json::Value::from(key.keyid(*s)),
            )
        })
        .collect()
}

/// The signer's public key: read from the file, or fetched from the KMS (which also
/// proves the key exists, is enabled and signs for this identity).
pub fn public_key(args: &PublicKeyArgs) -> anyhow::Result<Exit> {
    let signer = step::signer(&ProcessEnv, Some(&args.key), &[], &args.tls.ca_file)
        .map_err(|e| fail(Exit::Usage, format!("the signing key: {e}")))?
        .ok_or_else(|| fail(Exit::Usage, "no signing key: pass --key FILE|URI"))?;
    let public = signer.public();
    if let Some(out) = &args.out {
        std::fs::write(out, public.pem())
            .with_context(|| format!("{}: cannot write the public key", out.display()))?;
    }
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "key": signer.name(),
                "publicKey": public.pem(),
                "keyids": keyids(public),
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => out!("{}", public.pem().trim_end()),
    }
    Ok(Exit::Ok)
}

pub fn run(args: KeygenArgs) -> anyhow::Result<Exit> {
    let (key, public) = write_new_keypair(&args.out).context("keygen")?;
    let pubkey = key.public();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "privateKey": args.out,
                "publicKey": public,
                "keyids": keyids(pubkey),
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
