//! The AWS SDK's HTTP client under Custody's network policy (feature `aws`): the S3
//! store and the AWS KMS signer's credential chain both get it, so a private CA or a
//! proxy set once works for every AWS call.

use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::net::Net;

/// The client could not be set up (its TLS context or proxy settings).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AwsHttpError(pub String);

/// The SDK's HTTP client with Custody's network policy: rustls with ring (the SDK's
/// default is aws-lc-rs, a large C build), every root the policy trusts (built-in,
/// system or `SSL_CERT_FILE`/`SSL_CERT_DIR`, `--ca-file`) and its proxy settings.
pub fn http_client(net: &Net) -> Result<SharedHttpClient, AwsHttpError> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(net.roots_pem());
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| AwsHttpError(format!("TLS setup for the AWS SDK: {e}")))?;
    let p = net.proxy();
    let proxy_err = |e: aws_smithy_http_client::proxy::ProxyError| {
        AwsHttpError(format!("proxy settings for the AWS SDK: {e}"))
    };
    let mut proxy = match (&p.https, &p.http, &p.all) {
        (None, None, None) => ProxyConfig::disabled(),
        (Some(https), Some(http), _) if https == http => {
            ProxyConfig::all(https).map_err(proxy_err)?
        }
        (Some(https), _, _) => ProxyConfig::https(https).map_err(proxy_err)?,
        (None, Some(http), _) => ProxyConfig::http(http).map_err(proxy_err)?,
        (None, None, Some(all)) => ProxyConfig::all(all).map_err(proxy_err)?,
    };
    if let Some(no) = &p.no_proxy {
        proxy = proxy.no_proxy(no);
    }
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut b =
                    aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
                if let Some(s) = settings {
                    b = b.connector_settings(s.clone());
                }
                if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
                    b = b.sleep_impl(sleep);
                }
                b.tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .tls_context(context.clone())
                .build()
            },
        ),
    )
}
