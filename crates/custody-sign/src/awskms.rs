//! AWS KMS: an `ECC_NIST_P256` / `SIGN_VERIFY` key signs with `ECDSA_SHA_256`.
//!
//! Two calls of the KMS JSON API (`TrentService.GetPublicKey`, `TrentService.Sign`),
//! signed with SigV4 by `aws-sigv4` (the SDK's own signer), with credentials from the
//! SDK's default chain (`aws-config`: environment, web identity/OIDC, profiles, ECS,
//! IMDS), the same chain the S3 store uses, and sent by custody-http under the one
//! network policy. aws-sdk-kms would do the same for 203 KB more per binary
//! (BENCHMARKS.md).
//!
//! A message of up to 4,096 bytes (KMS's limit) is sent whole (`RAW`: KMS hashes it);
//! a longer one as its SHA-256 (`DIGEST`). Both give a signature over SHA-256 of the
//! message, as a DSSE verifier expects.
//!
//! Opening the signer fetches the public key, checks the key's type and usage, and
//! signs a probe message: a key that is missing, disabled, of the wrong type or denied
//! to this identity fails before a step stores anything. The probe is
//! `custody signer probe v1`, which can be neither a DSSE PAE (they begin `DSSEv1 `)
//! nor JSON. Every signature is checked against the fetched key before it is used.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use custody_evidence::{Digest, PublicKey, SignError, Signer};
use custody_http::client::{Client, Config, HttpError, Redirects};
use custody_http::net::Net;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::SignerError;

/// The largest message KMS signs whole (`MessageType: RAW`).
pub const MAX_RAW_MESSAGE: usize = 4096;

/// Signed by [`AwsKmsSigner::open`] to prove the key signs for this identity.
const PROBE: &[u8] = b"custody signer probe v1";

/// Tries per KMS call, for throttling, 5xx answers and broken connections.
const ATTEMPTS: u32 = 3;

/// `awskms://[HOST[:PORT]]/KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyRef {
    /// `HOST[:PORT]` of the KMS endpoint (https), when the URI names one.
    pub host: Option<String>,
    /// A key id, `alias/NAME`, or a key or alias ARN.
    pub key_id: String,
}

impl KmsKeyRef {
    /// Parses what follows `awskms://`.
    pub fn parse(rest: &str) -> Result<Self, SignerError> {
        let malformed = |reason: &str| SignerError::Malformed {
            key: format!("awskms://{rest}"),
            reason: reason.into(),
        };
        let Some((host, key_id)) = rest.split_once('/') else {
            return Err(malformed(
                "expected awskms:///KEY or awskms://HOST/KEY (a key id, alias/NAME or an ARN)",
            ));
        };
        if key_id.is_empty() {
            return Err(malformed("the key id is empty"));
        }
        if key_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed(
                "the key id contains a space or a control character",
            ));
        }
        if host.contains('@') {
            // never take credentials from a key URI: they would reach logs and records
            return Err(malformed(
                "credentials in the URI are refused: use the AWS credential chain",
            ));
        }
        if !host.is_empty() && Url::parse(&format!("https://{host}/")).is_err() {
            return Err(malformed("the endpoint is not HOST or HOST:PORT"));
        }
        Ok(Self {
            host: (!host.is_empty()).then(|| host.to_owned()),
            key_id: key_id.to_owned(),
        })
    }

    /// The region of an ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
    fn arn_region(&self) -> Option<&str> {
        let mut parts = self.key_id.strip_prefix("arn:")?.split(':');
        let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
        (service == "kms" && !region.is_empty()).then_some(region)
    }
}

impl fmt::Display for KmsKeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "awskms://{}/{}",
            self.host.as_deref().unwrap_or(""),
            self.key_id
        )
    }
}

/// Where the KMS is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct KmsOptions {
    pub net: Net,
    /// `AWS_ENDPOINT_URL_KMS`, else `AWS_ENDPOINT_URL`: a whole URL (`http://` allowed,
    /// for a local KMS). A host in the key URI wins over it.
    pub endpoint_url: Option<String>,
    /// Overrides the region of the AWS configuration; an ARN's region wins over both.
    pub region: Option<String>,
    /// Credentials instead of the default chain (a caller that has its own).
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// An AWS KMS key as a [`Signer`].
pub struct AwsKmsSigner {
    key: KmsKeyRef,
    public: PublicKey,
    client: Arc<KmsClient>,
    rt: OwnRuntime,
}

/// The signer's own runtime, shut down in the background when dropped: the signer may
/// be opened or dropped inside another runtime's async context, where dropping a
/// runtime the usual way panics.
pub(crate) struct OwnRuntime(pub(crate) Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for AwsKmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsSigner")
            .field("key", &self.key.to_string())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl AwsKmsSigner {
    /// Connects, fetches and checks the public key, and signs the probe.
    pub fn open(key: KmsKeyRef, opts: &KmsOptions) -> Result<Self, SignerError> {
        let name = key.to_string();
        let fail = |reason: String| SignError {
            key: name.clone(),
            reason,
        };
        let rt = OwnRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(format!("starting the KMS client's runtime: {e}")))?,
        ));
        let opened = run_on(&rt, async {
            let client = Arc::new(KmsClient::connect(&key, opts, &name).await?);
            let public = client.public_key().await?;
            Ok::<_, SignError>((client, public))
        })
        .map_err(|e| fail(e.to_string()))??;
        let (client, public) = opened;
        let signer = Self {
            key,
            public,
            client,
            rt,
        };
        signer.sign(PROBE)?;
        Ok(signer)
    }

    pub fn key(&self) -> &KmsKeyRef {
        &self.key
    }
}

impl Signer for AwsKmsSigner {
    fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |reason: String| SignError {
            key: self.key.to_string(),
            reason,
        };
        let client = Arc::clone(&self.client);
        let sig = run_on(&self.rt, async move { client.sign(msg).await }).map_err(fail)??;
        if !self.public.verify(msg, &sig) {
            return Err(fail(
                "KMS answered with a signature its public key does not verify".into(),
            ));
        }
        Ok(sig)
    }

    fn name(&self) -> String {
        self.key.to_string()
    }
}

/// Runs `fut` on `rt` from a scoped thread of its own: the caller may be inside another
/// runtime (a step's), where blocking on a second one in place would panic.
pub(crate) fn run_on<F>(rt: &OwnRuntime, fut: F) -> Result<F::Output, String>
where
    F: Future + Send,
    F::Output: Send,
{
    let Some(rt) = rt.0.as_ref() else {
        return Err("the client is closed".into());
    };
    std::thread::scope(|s| {
        s.spawn(|| rt.block_on(fut))
            .join()
            .map_err(|_| "the client stopped".to_owned())
    })
}

struct KmsClient {
    http: Client,
    url: Url,
    region: String,
    credentials: SharedCredentialsProvider,
    key_id: String,
    name: String,
}

/// A KMS error answer: `{"__type": "…#NotFoundException", "message": "…"}`.
#[derive(Deserialize)]
struct KmsFault {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(alias = "Message", default)]
    message: String,
}

impl KmsClient {
    async fn connect(key: &KmsKeyRef, opts: &KmsOptions, name: &str) -> Result<Self, SignError> {
        let fail = |reason: String| SignError {
            key: name.to_owned(),
            reason,
        };
        let sdk_http = custody_http::aws::http_client(&opts.net).map_err(|e| fail(e.0))?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(sdk_http)
            .load()
            .await;
        let region = key
            .arn_region()
            .map(str::to_owned)
            .or_else(|| opts.region.clone())
            .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
            .ok_or_else(|| {
                fail("no AWS region: set AWS_REGION, or name the key by its ARN".into())
            })?;
        let credentials = match &opts.credentials {
            Some(c) => Some(SharedCredentialsProvider::new(c.clone())),
            None => sdk.credentials_provider(),
        };
        let credentials = credentials.ok_or_else(|| {
            fail("no AWS credential provider is configured (set AWS_ACCESS_KEY_ID or a profile, or run with a role)".into())
        })?;
        let endpoint = match (&key.host, &opts.endpoint_url) {
            (Some(host), _) => format!("https://{host}/"),
            (None, Some(url)) => url.clone(),
            (None, None) => {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://kms.{region}.{suffix}/")
            }
        };
        let url = Url::parse(&endpoint)
            .map_err(|e| fail(format!("the KMS endpoint is not a URL ({e})")))?;
        let http = Client::new(
            &opts.net,
            Config {
                timeout: Duration::from_secs(30),
                // one attempt per send: the calls are POSTs, retried here with a fresh
                // signature each time
                attempts: 1,
                redirects: Redirects::Refuse,
                // an explicit http:// endpoint is a local KMS (a test, LocalStack)
                https_only: url.scheme() == "https",
                body_limit: 1 << 20,
                ..Config::default()
            },
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            http,
            url,
            region,
            credentials,
            key_id: key.key_id.clone(),
            name: name.to_owned(),
        })
    }

    fn fail(&self, reason: impl Into<String>) -> SignError {
        SignError {
            key: self.name.clone(),
            reason: reason.into(),
        }
    }

    async fn public_key(&self) -> Result<PublicKey, SignError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "PublicKey")]
            public_key: String,
            #[serde(rename = "KeySpec", default)]
            key_spec: String,
            /// The deprecated name AWS still sends (and moto sends alone).
            #[serde(rename = "CustomerMasterKeySpec", default)]
            legacy_spec: String,
            #[serde(rename = "KeyUsage", default)]
            key_usage: String,
        }
        let a: Answer = self
            .call("GetPublicKey", json!({ "KeyId": self.key_id }))
            .await?;
        let spec = if a.key_spec.is_empty() {
            &a.legacy_spec
        } else {
            &a.key_spec
        };
        if spec != "ECC_NIST_P256" || a.key_usage != "SIGN_VERIFY" {
            return Err(self.fail(format!(
                "the key is {} for {}; Custody signs with an ECC_NIST_P256 key for SIGN_VERIFY",
                or_unknown(spec),
                or_unknown(&a.key_usage)
            )));
        }
        let der = STANDARD
            .decode(a.public_key.trim())
            .map_err(|e| self.fail(format!("KMS sent a public key that is not base64 ({e})")))?;
        PublicKey::from_spki_der(&der, self.name.clone())
            .map_err(|e| self.fail(format!("KMS sent an unusable public key: {e}")))
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Signature")]
            signature: String,
        }
        let (message, kind) = if msg.len() <= MAX_RAW_MESSAGE {
            (STANDARD.encode(msg), "RAW")
        } else {
            (STANDARD.encode(Digest::of(msg).as_bytes()), "DIGEST")
        };
        let a: Answer = self
            .call(
                "Sign",
                json!({
                    "KeyId": self.key_id,
                    "Message": message,
                    "MessageType": kind,
                    "SigningAlgorithm": "ECDSA_SHA_256",
                }),
            )
            .await?;
        STANDARD
            .decode(a.signature.trim())
            .map_err(|e| self.fail(format!("KMS sent a signature that is not base64 ({e})")))
    }

    /// One KMS operation, retried with a fresh signature on throttling, 5xx answers and
    /// broken connections.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        request: serde_json::Value,
    ) -> Result<T, SignError> {
        let body = Bytes::from(request.to_string());
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self.call_once(operation, &body).await {
                Ok(bytes) => {
                    return serde_json::from_slice(&bytes).map_err(|e| {
                        self.fail(format!(
                            "KMS answered {operation} with unreadable JSON ({e})"
                        ))
                    });
                }
                Err((error, transient)) if !transient || attempt >= ATTEMPTS => {
                    return Err(error);
                }
                Err((error, _)) => {
                    tracing::debug!(%error, attempt, "KMS {operation} failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// One attempt: the answer's body, or the error and whether it is worth retrying.
    async fn call_once(&self, operation: &str, body: &Bytes) -> Result<Bytes, (SignError, bool)> {
        let sure = |e: SignError| (e, false);
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| sure(self.fail(format!("no AWS credentials: {e}"))))?;
        let identity = Identity::from(creds);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        let target = HeaderValue::from_str(&format!("TrentService.{operation}"))
            .map_err(|e| sure(self.fail(e.to_string())))?;
        headers.insert(HeaderName::from_static("x-amz-target"), target);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| sure(self.fail(format!("signing the request: {e}"))))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| sure(self.fail(format!("signing the request: {e}"))))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| sure(self.fail(format!("signing the request: {e}"))))?
            .into_parts();
        let (signed_headers, _) = instructions.into_parts();
        for h in signed_headers {
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|e| sure(self.fail(format!("signing the request: {e}"))))?;
            value.set_sensitive(h.sensitive() || h.name() == "authorization");
            headers.insert(HeaderName::from_static(h.name()), value);
        }
        let rsp = self
            .http
            .send(Method::POST, &self.url, &headers, body.clone(), None)
            .await
            .map_err(|e| {
                let transient = e.is_transient();
                (self.fail(http_reason(&e, &self.url)), transient)
            })?;
        let status = rsp.status();
        if status.is_success() {
            return Ok(rsp.into_body());
        }
        let fault: KmsFault = serde_json::from_slice(rsp.body()).unwrap_or(KmsFault {
            kind: String::new(),
            message: String::new(),
        });
        let kind = fault.kind.rsplit('#').next().unwrap_or_default().to_owned();
        let transient = status.is_server_error()
            || matches!(
                kind.as_str(),
                "ThrottlingException"
                    | "KMSInternalException"
                    | "DependencyTimeoutException"
                    | "KeyUnavailableException"
            );
        Err((
            self.fail(fault_reason(
                operation,
                status.as_u16(),
                &kind,
                &fault.message,
            )),
            transient,
        ))
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "of an unknown type"
    } else {
        s
    }
}

fn http_reason(e: &HttpError, url: &Url) -> String {
    format!(
        "KMS at {} could not be reached: {e}",
        url.origin().ascii_serialization()
    )
}

/// What a KMS error means for the user, with KMS's own words after it. KMS messages
/// name the key and the action, never a credential.
fn fault_reason(operation: &str, status: u16, kind: &str, message: &str) -> String {
    let meaning = match kind {
        "NotFoundException" => "the key does not exist (check the key id, alias or region)",
        "DisabledException" => "the key is disabled",
        "KMSInvalidStateException" => "the key cannot be used in its current state",
        "AccessDeniedException" => "this identity is not allowed to use the key",
        "InvalidKeyUsageException" => "the key is not a signing key",
        "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignature" => {
            "AWS refused the credentials"
        }
        "ThrottlingException" => "KMS throttled the request",
        _ => "",
    };
    let kind = if kind.is_empty() {
        format!("HTTP {status}")
    } else {
        kind.to_owned()
    };
    let mut out = format!("{operation}: ");
    if !meaning.is_empty() {
        out.push_str(meaning);
        out.push_str(" (");
        out.push_str(&kind);
        out.push(')');
    } else {
        out.push_str(&kind);
    }
    let message = message.trim();
    if !message.is_empty() {
        out.push_str(": ");
        out.extend(message.chars().take(300).filter(|c| !c.is_control()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_uris_parse_as_cosign_and_witness_write_them() {
        let k = KmsKeyRef::parse("/alias/custody").unwrap();
        assert_eq!(k.host, None);
        assert_eq!(k.key_id, "alias/custody");
        assert_eq!(k.to_string(), "awskms:///alias/custody");
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let k = KmsKeyRef::parse(&format!("/{arn}")).unwrap();
        assert_eq!(k.arn_region(), Some("eu-west-1"));
        let k = KmsKeyRef::parse("localhost:4566/1234abcd").unwrap();
        assert_eq!(k.host.as_deref(), Some("localhost:4566"));
        assert_eq!(k.arn_region(), None);
    }

    #[test]
    fn malformed_key_uris_are_refused_without_echoing_credentials() {
        for bad in ["", "alias", "/", "/a b", "host:x:y/key"] {
            assert!(KmsKeyRef::parse(bad).is_err(), "{bad:?}");
        }
        let e = KmsKeyRef::parse("AKIDEXAMPLE:hunter2@kms.example/alias/x").unwrap_err();
        assert!(e.to_string().contains("credentials in the URI"), "{e}");
    }

    #[test]
    fn kms_faults_read_as_what_to_fix() {
        let r = fault_reason("Sign", 400, "DisabledException", "arn:… is disabled.");
        assert_eq!(
            r,
            "Sign: the key is disabled (DisabledException): arn:… is disabled."
        );
        assert_eq!(fault_reason("Sign", 502, "", ""), "Sign: HTTP 502");
    }
}
