//! What a process pays to make its first HTTPS client: the roots loaded (built-in set,
//! system store or SSL_CERT_FILE/SSL_CERT_DIR), the rustls configuration, the connector
//! and a current-thread runtime (runner-guard's setup on its first call). Timed as a
//! whole process against an empty one (BENCHMARKS.md, issue 18); makes no request.

#![allow(clippy::expect_used)]

fn main() {
    let net = custody_http::net::Net::from_env(&[]).expect("network settings");
    let client = custody_http::client::Client::new(&net, custody_http::client::Config::default())
        .expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    drop((client, rt, net.roots().len()));
}
