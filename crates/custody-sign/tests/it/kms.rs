use custody_evidence::{
    Digest, KeyIdScheme, PublicKey, ResourceDescriptor, Signer, SigningKey, Statement, TrustedKeys,
    sign_statement, verify_envelope,
};
use custody_sign::awskms::{AwsKmsSigner, KmsKeyRef, KmsOptions, MAX_RAW_MESSAGE};
use custody_sign::{KeyRef, SignerError};
use custody_test_support::moto::Moto;

const SECRET: &str = "kms-test-secret-do-not-print";

fn options(moto: &Moto) -> KmsOptions {
    KmsOptions {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        credentials: Some(aws_credential_types::Credentials::new(
            "AKIDTEST", SECRET, None, None, "test",
        )),
        ..KmsOptions::default()
    }
}

fn open(moto: &Moto, key: &str) -> Result<AwsKmsSigner, SignerError> {
    let KeyRef::AwsKms(k) = KeyRef::parse(&format!("awskms:///{key}")).unwrap() else {
        panic!("not a KMS key URI")
    };
    AwsKmsSigner::open(k, &options(moto))
}

fn statement(padding: usize) -> Statement {
    let subject = ResourceDescriptor::sha256("app.tar", &Digest::of(b"app"));
    let mut predicate = serde_json::Map::new();
    predicate.insert("note".into(), "x".repeat(padding).into());
    Statement::new(
        vec![subject],
        "https://custody.dev/test/v1",
        predicate,
        &custody_evidence::RecordInfo::for_tests(),
    )
    .unwrap()
}

#[test]
fn a_kms_key_signs_envelopes_its_fetched_public_key_verifies() {
    let Some(moto) = Moto::start("the AWS KMS signer test") else {
        return;
    };
    let id = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    let signer = open(&moto, &id).unwrap();
    // the public key is the one boto3 reads from KMS
    let theirs = PublicKey::from_pem(&moto.kms_public_pem(&id), "boto3").unwrap();
    assert_eq!(signer.public().pem(), theirs.pem());
    assert_eq!(signer.name(), format!("awskms:///{id}"));
    let trusted = TrustedKeys::new(vec![theirs]);
    // a small statement goes to KMS whole (RAW), a large one as its digest (DIGEST)
    for padding in [10, 3 * MAX_RAW_MESSAGE] {
        let st = statement(padding);
        let env = sign_statement(&st, &signer, KeyIdScheme::Empty).unwrap();
        let verified = verify_envelope(&env, &trusted).unwrap();
        assert_eq!(verified.statement, st);
        // negative twin: another key does not verify it
        let other = TrustedKeys::new(vec![SigningKey::generate().public().clone()]);
        assert!(verify_envelope(&env, &other).is_err());
    }
    assert!(
        serde_json::to_vec(&statement(3 * MAX_RAW_MESSAGE))
            .unwrap()
            .len()
            > MAX_RAW_MESSAGE
    );
}

#[test]
fn missing_disabled_and_wrong_keys_are_refused_by_name() {
    let Some(moto) = Moto::start("the AWS KMS signer refusal test") else {
        return;
    };
    let missing = open(&moto, "alias/nobody").unwrap_err().to_string();
    assert!(
        missing.contains("awskms:///alias/nobody") && missing.contains("does not exist"),
        "{missing}"
    );

    let id = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    moto.kms(&format!("kms.disable_key(KeyId='{id}')"));
    let disabled = open(&moto, &id).unwrap_err().to_string();
    assert!(disabled.contains("disabled"), "{disabled}");

    let rsa = moto.kms_key("RSA_2048", "SIGN_VERIFY");
    let e = open(&moto, &rsa).unwrap_err().to_string();
    assert!(e.contains("RSA_2048") && e.contains("ECC_NIST_P256"), "{e}");
    let p384 = moto.kms_key("ECC_NIST_P384", "SIGN_VERIFY");
    let e = open(&moto, &p384).unwrap_err().to_string();
    assert!(e.contains("ECC_NIST_P384"), "{e}");

    for e in [&missing, &disabled] {
        assert!(!e.contains(SECRET), "{e}");
    }
}

#[test]
fn an_unreachable_kms_is_named_and_nothing_is_signed() {
    let KeyRef::AwsKms(k) = KeyRef::parse("awskms:///alias/custody").unwrap() else {
        panic!()
    };
    let opts = KmsOptions {
        endpoint_url: Some(format!("http://{}", custody_test_support::closed_port())),
        region: Some("us-east-1".into()),
        credentials: Some(aws_credential_types::Credentials::new(
            "AKIDTEST", SECRET, None, None, "test",
        )),
        ..KmsOptions::default()
    };
    let e = AwsKmsSigner::open(k, &opts).unwrap_err().to_string();
    assert!(e.contains("could not be reached"), "{e}");
    assert!(!e.contains(SECRET), "{e}");
}

#[test]
fn key_references_are_files_kms_uris_or_refused() {
    assert_eq!(
        KeyRef::parse("keys/custody.key").unwrap(),
        KeyRef::File("keys/custody.key".into())
    );
    assert!(matches!(
        KeyRef::parse("awskms:///alias/a").unwrap(),
        KeyRef::AwsKms(KmsKeyRef { host: None, .. })
    ));
    for unknown in ["gcpkms://projects/p/key", "hashivault://transit/key"] {
        let e = KeyRef::parse(unknown).unwrap_err().to_string();
        assert!(e.contains("unknown key scheme"), "{e}");
    }
    assert!(matches!(
        KeyRef::parse("pkcs11:token=t;object=o").unwrap(),
        KeyRef::Pkcs11(_)
    ));
    let e = KeyRef::parse("pkcs11:token=t").unwrap_err().to_string();
    assert!(e.contains("object="), "{e}");
}

/// A KMS stand-in that answers every call with one fault, as AWS shapes it.
fn faulty_kms(kind: &str, message: &str) -> (custody_test_support::Server, KmsOptions) {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    let server = custody_test_support::Server::start(&[("/", 400, body)]);
    let opts = KmsOptions {
        endpoint_url: Some(server.url("/")),
        region: Some("eu-west-1".into()),
        credentials: Some(aws_credential_types::Credentials::new(
            "AKIDTEST", SECRET, None, None, "test",
        )),
        ..KmsOptions::default()
    };
    (server, opts)
}

fn kms_ref(key: &str) -> KmsKeyRef {
    KmsKeyRef::parse(&format!("/{key}")).unwrap()
}

#[test]
fn a_denied_key_is_named_and_the_request_was_sigv4_signed_without_leaking_the_secret() {
    let (server, opts) = faulty_kms(
        "AccessDeniedException",
        "User: arn:aws:sts::111122223333:assumed-role/ci is not authorized to perform: kms:GetPublicKey",
    );
    let e = AwsKmsSigner::open(kms_ref("alias/custody"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("awskms:///alias/custody")
            && e.contains("not allowed to use the key (AccessDeniedException)")
            && e.contains("kms:GetPublicKey"),
        "{e}"
    );
    assert!(!e.contains(SECRET), "{e}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "a refusal is not retried");
    let r = &requests[0];
    assert_eq!(
        r.headers.get("x-amz-target").map(String::as_str),
        Some("TrentService.GetPublicKey")
    );
    let auth = r.headers.get("authorization").cloned().unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/eu-west-1/kms/aws4_request"),
        "{auth}"
    );
    assert!(!auth.contains(SECRET));
}

#[test]
fn throttling_is_retried_then_reported() {
    let (server, opts) = faulty_kms("ThrottlingException", "Rate exceeded");
    let e = AwsKmsSigner::open(kms_ref("alias/custody"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("KMS throttled the request"), "{e}");
    assert_eq!(
        server.requests().len(),
        3,
        "three attempts, each signed afresh"
    );
}
