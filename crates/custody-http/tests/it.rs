//! The client against loopback servers: a private CA behind a TLS front, a CONNECT
//! proxy, redirects that try to carry a token elsewhere, and transient answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use custody_http::client::{Auth, Client, Config, HttpError, Redirects};
use custody_http::net::{Net, ProxySettings};
use custody_test_support::{TestCa, TlsFront};
use http::{HeaderMap, Method};
use url::Url;

/// What the server saw: request line and headers of each request.
type Log = Arc<Mutex<Vec<String>>>;

/// A one-request-per-connection HTTP server; `answer(path)` gives status, headers, body.
fn server(
    answer: impl Fn(&str) -> (u16, Vec<(String, String)>, String) + Send + Sync + 'static,
) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = answer.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                seen.lock().unwrap().push(head);
                let (status, headers, body) = answer(&path);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                let _ = conn.write_all(out.as_bytes());
            });
        }
    });
    (addr, log)
}

fn ok(_: &str) -> (u16, Vec<(String, String)>, String) {
    (200, vec![], "hello".into())
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "custody-http-it-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

fn cfg() -> Config {
    Config {
        attempts: 3,
        initial_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

async fn get(
    client: &Client,
    url: &str,
    auth: Option<&Auth>,
) -> Result<http::Response<Bytes>, HttpError> {
    client
        .send(
            Method::GET,
            &Url::parse(url).unwrap(),
            &HeaderMap::new(),
            Bytes::new(),
            auth,
        )
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_private_ca_is_trusted_from_ca_file_and_refused_without_it() {
    let (backend, _) = server(ok);
    let ca = TestCa::new("Hospital inspection CA");
    let front = TlsFront::start(&ca, backend);
    let d = dir();
    let ca_file = ca.write_ca(&d, "hospital-ca");

    let trusting = Client::new(
        &Net::new(&[ca_file], ProxySettings::default()).unwrap(),
        cfg(),
    )
    .unwrap();
    let rsp = get(&trusting, &format!("{}/v2/", front.url()), None)
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(&rsp.body()[..], b"hello");
    // and by name, not only by address
    let by_name = format!("https://localhost:{}/x", front.addr().port());
    assert_eq!(get(&trusting, &by_name, None).await.unwrap().status(), 200);

    // without the CA: a clear TLS error, at once (not retried)
    let plain = Client::new(&Net::default(), cfg()).unwrap();
    let started = std::time::Instant::now();
    let e = get(&plain, &format!("{}/v2/", front.url()), None)
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Tls { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("not trusted") && text.contains("--ca-file"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a certificate error is not retried"
    );

    // another CA's file does not help
    let other = TestCa::new("Someone else's CA");
    let other_file = other.write_ca(&d, "other-ca");
    let wrong = Client::new(
        &Net::new(&[other_file], ProxySettings::default()).unwrap(),
        cfg(),
    )
    .unwrap();
    let e = get(&wrong, &format!("{}/v2/", front.url()), None)
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Tls { .. }), "{e:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn ssl_cert_file_style_bundles_and_several_ca_files_combine() {
    let (backend, _) = server(ok);
    let a = TestCa::new("CA A");
    let b = TestCa::new("CA B");
    let front_a = TlsFront::start(&a, backend);
    let front_b = TlsFront::start(&b, backend);
    let d = dir();
    // one bundle file with both CAs, as SSL_CERT_FILE bundles are
    let bundle = d.join("bundle.pem");
    std::fs::write(&bundle, format!("{}\n{}", a.ca_pem(), b.ca_pem())).unwrap();
    let client = Client::new(
        &Net::new(&[bundle], ProxySettings::default()).unwrap(),
        cfg(),
    )
    .unwrap();
    for f in [&front_a, &front_b] {
        assert_eq!(
            get(&client, &format!("{}/", f.url()), None)
                .await
                .unwrap()
                .status(),
            200
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A CONNECT proxy that counts tunnels and checks `Proxy-Authorization`.
fn connect_proxy(expect_auth: Option<&'static str>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                let mut authorized = expect_auth.is_none();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(want) = expect_auth
                        && line
                            .to_ascii_lowercase()
                            .starts_with("proxy-authorization:")
                        && line.trim_end().ends_with(want)
                    {
                        authorized = true;
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let target = first.split(' ').nth(1).unwrap_or("").to_owned();
                if !first.starts_with("CONNECT ") || !authorized {
                    let _ = client.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
                    );
                    return;
                }
                let Ok(upstream) = TcpStream::connect(&target) else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_read = upstream.try_clone().unwrap();
                let mut up_write = upstream;
                let mut down_write = client.try_clone().unwrap();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut up_write);
                    let _ = up_write.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut up_read, &mut down_write);
                let _ = down_write.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (addr, tunnels)
}

#[tokio::test(flavor = "current_thread")]
async fn https_goes_through_the_proxy_in_a_tunnel_unless_no_proxy_names_the_host() {
    let (backend, _) = server(ok);
    let ca = TestCa::new("Proxy test CA");
    let front = TlsFront::start(&ca, backend);
    let d = dir();
    let ca_file = ca.write_ca(&d, "ca");
    // user:pass in the URL become Proxy-Authorization: Basic dXNlcjpwYXNz
    let (proxy, tunnels) = connect_proxy(Some("Basic dXNlcjpwYXNz"));
    let settings = ProxySettings::from_lookup(|k| {
        (k == "HTTPS_PROXY").then(|| format!("http://user:pass@{proxy}"))
    });
    let client = Client::new(
        &Net::new(std::slice::from_ref(&ca_file), settings).unwrap(),
        cfg(),
    )
    .unwrap();
    let rsp = get(&client, &format!("{}/through", front.url()), None)
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "one CONNECT tunnel");

    let bypass = ProxySettings::from_lookup(|k| match k {
        "HTTPS_PROXY" => Some(format!("http://user:pass@{proxy}")),
        "NO_PROXY" => Some("127.0.0.1".into()),
        _ => None,
    });
    let client = Client::new(&Net::new(&[ca_file], bypass).unwrap(), cfg()).unwrap();
    assert_eq!(
        get(&client, &format!("{}/direct", front.url()), None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        1,
        "NO_PROXY bypassed the proxy"
    );

    // a proxy that refuses: the error says so, and never shows the credentials
    let (strict, _) = connect_proxy(Some("Basic bm9ib2R5"));
    let refused = ProxySettings::from_lookup(|k| {
        (k == "HTTPS_PROXY").then(|| format!("http://user:pass@{strict}"))
    });
    let client = Client::new(
        &Net::new(&[], refused).unwrap(),
        Config {
            attempts: 1,
            ..cfg()
        },
    )
    .unwrap();
    let e = get(&client, &format!("{}/x", front.url()), None)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("proxy"), "{text}");
    assert!(
        !text.contains("pass") && !text.contains("dXNlcjpwYXNz"),
        "{text}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_stay_with_their_origin_across_redirects() {
    let (elsewhere, elsewhere_log) = server(ok);
    let target = format!("http://{elsewhere}/blob");
    let (origin, origin_log) = server(move |path| {
        if path == "/download" {
            (
                302,
                vec![("location".into(), target.clone())],
                String::new(),
            )
        } else {
            ok(path)
        }
    });
    let client = Client::new(
        &Net::default(),
        Config {
            https_only: false,
            ..cfg()
        },
    )
    .unwrap();
    let base = Url::parse(&format!("http://{origin}/")).unwrap();
    let auth = Auth::bearer(&base, "tok-SECRET-1").unwrap();
    let rsp = get(&client, &format!("http://{origin}/download"), Some(&auth))
        .await
        .unwrap();
    assert_eq!(rsp.status(), 200, "the read followed the redirect");
    let at_origin = origin_log.lock().unwrap().join("");
    assert!(
        at_origin.contains("tok-SECRET-1"),
        "the origin got the token"
    );
    let at_other = elsewhere_log.lock().unwrap().join("");
    assert!(at_other.contains("GET /blob"), "{at_other}");
    assert!(
        !at_other.to_ascii_lowercase().contains("authorization"),
        "{at_other}"
    );

    // a refusing client names the redirect instead
    let refusing = Client::new(
        &Net::default(),
        Config {
            https_only: false,
            redirects: Redirects::Refuse,
            ..cfg()
        },
    )
    .unwrap();
    let e = get(&refusing, &format!("http://{origin}/download"), Some(&auth))
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Redirect { status: 302 }), "{e:?}");

    // https-only clients refuse plain URLs before sending anything
    let strict = Client::new(&Net::default(), cfg()).unwrap();
    let before = origin_log.lock().unwrap().len();
    let e = get(&strict, &format!("http://{origin}/x"), Some(&auth))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not https"), "{e}");
    assert_eq!(origin_log.lock().unwrap().len(), before);
}

#[tokio::test(flavor = "current_thread")]
async fn transient_answers_are_retried_for_reads_only_and_bodies_are_capped() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let (addr, log) = server(move |path| {
        if path == "/big" {
            return (200, vec![], "x".repeat(4096));
        }
        if n.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            (503, vec![], "busy".into())
        } else {
            ok(path)
        }
    });
    let client = Client::new(
        &Net::default(),
        Config {
            https_only: false,
            body_limit: 1024,
            ..cfg()
        },
    )
    .unwrap();
    assert_eq!(
        get(&client, &format!("http://{addr}/a"), None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(log.lock().unwrap().len(), 2, "503 then 200");

    let post = client
        .send(
            Method::POST,
            &Url::parse(&format!("http://{addr}/b")).unwrap(),
            &HeaderMap::new(),
            Bytes::from_static(b"{}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        503,
        "POST is sent once and its answer returned"
    );
    assert_eq!(log.lock().unwrap().len(), 3);

    let e = get(&client, &format!("http://{addr}/big"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::TooLarge { limit: 1024 }), "{e:?}");

    // nothing listens: a transport error after the attempts, naming no URL query
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = get(&client, &format!("http://{closed}/x?token=abc"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, HttpError::Transport { attempts: 3, .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains("token=abc"), "{e}");
}
