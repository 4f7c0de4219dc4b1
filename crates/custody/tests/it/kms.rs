//! `--key awskms://…` end to end against moto's KMS on loopback: the key is made and
//! read by boto3, Custody signs through KMS, and the records verify with the public key
//! `custody public-key` fetched, with custody and with securesystemslib.

use custody_test_support::moto::Moto;

use super::{Env, attest_args, python, said, sslib};

const SECRET: &str = "kms-e2e-secret-never-printed";

fn kms_env(e: &Env, moto: &Moto, args: &[&str]) -> std::process::Output {
    e.cmd(args)
        .env("AWS_ENDPOINT_URL_KMS", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("CUSTODY_SIGNING_KEY_PEM")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

#[test]
fn kms_signed_records_verify_with_the_fetched_public_key() {
    let Some(moto) = Moto::start("the custody AWS KMS test") else {
        return;
    };
    let e = Env::new();
    let id = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    let alias = "alias/custody-evidence";
    moto.kms(&format!(
        "kms.create_alias(AliasName='{alias}', TargetKeyId='{id}')"
    ));
    let uri = format!("awskms:///{alias}");

    let out = kms_env(
        &e,
        &moto,
        &["public-key", "--key", &uri, "--out", "kms.pub"],
    );
    assert!(out.status.success(), "{}", said(&out));
    let fetched = std::fs::read_to_string(e.path("kms.pub")).unwrap();
    assert_eq!(
        fetched,
        moto.kms_public_pem(&id),
        "custody fetched the key boto3 reads"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fetched.trim());

    let args = attest_args(&uri);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kms_env(&e, &moto, &args);
    assert!(out.status.success(), "{}", said(&out));
    assert!(!said(&out).contains(SECRET));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = v["record"].as_str().unwrap().to_owned();

    e.ok(&[
        "verify", "--record", &record, "--store", "store", "--key", "kms.pub",
    ]);
    // negative twin: a key of our own does not verify what KMS signed
    e.ok(&["keygen", "--out", "other.key"]);
    e.fails(
        1,
        &[
            "verify",
            "--record",
            &record,
            "--store",
            "store",
            "--key",
            "other.key.pub",
        ],
    );

    if let Some(py) = python() {
        let envelope = e.object(&record);
        // boto3's PEM, not ours, goes to the reference verifier
        std::fs::write(e.path("boto3.pub"), moto.kms_public_pem(&id)).unwrap();
        let pem = e.path("boto3.pub");
        let out = sslib(
            &py,
            &[
                "verify",
                envelope.to_str().unwrap(),
                pem.to_str().unwrap(),
                "",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let other = e.path("other.key.pub");
        let out = sslib(
            &py,
            &[
                "verify",
                envelope.to_str().unwrap(),
                other.to_str().unwrap(),
                "",
            ],
        );
        assert!(!out.status.success());
    }
}

#[test]
fn a_missing_or_disabled_kms_key_fails_with_2_and_stores_nothing() {
    let Some(moto) = Moto::start("the custody AWS KMS refusal test") else {
        return;
    };
    let e = Env::new();
    let id = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    moto.kms(&format!("kms.disable_key(KeyId='{id}')"));
    for (key, says) in [
        (format!("awskms:///{id}"), "disabled"),
        ("awskms:///alias/nobody".to_owned(), "does not exist"),
    ] {
        let args = attest_args(&key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kms_env(&e, &moto, &args);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(&key) && text.contains(says), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        let out = kms_env(&e, &moto, &["public-key", "--key", &key]);
        assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    }
    // nothing was stored: not a record, not a material
    let stored = std::fs::read_dir(e.path("store/objects/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "a refused key stores nothing");
}
