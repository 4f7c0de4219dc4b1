//! A tiny HTTP/1.1 stand-in on loopback for third-party APIs (GitHub, GitLab, an OIDC
//! issuer's JWKS, a token endpoint, a metadata service): fixed routes, every request
//! recorded; and [`closed_port`], a loopback address where nothing listens.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lowercased; of a repeated header, the last value.
    pub headers: BTreeMap<String, String>,
    /// The request body (`Content-Length` bytes; empty when none was sent).
    pub body: Vec<u8>,
}

impl Recorded {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What a [`Server::handle`] handler answers: status, JSON body.
pub type Answer = (u16, String);

/// A loopback HTTP/1.1 server answering fixed routes (path without query -> status,
/// JSON body) and 404 `{"message":"Not Found"}` to any other path, whatever the
/// method. One request per connection (`Connection: close`); a request body, if any
/// (`Content-Length`), is read and dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// Starts a server on 127.0.0.1 answering `routes` as `(path, status, body)`.
    pub fn start<P: AsRef<str>>(routes: &[(P, u16, String)]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        assert!(addr.ip().is_loopback());
        let routes: BTreeMap<String, (u16, String)> = routes
            .iter()
            .map(|(p, s, b)| (p.as_ref().to_owned(), (*s, b.clone())))
            .collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(read_half) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read_half);
                let Some(head) = read_head(&mut reader) else {
                    continue;
                };
                let Some(head) = read_body(&mut reader, head) else {
                    continue;
                };
                let path = head.target.split('?').next().unwrap_or_default().to_owned();
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(head);
                let (status, body) = routes
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, r#"{"message":"Not Found"}"#.to_owned()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Server { addr, requests }
    }

    /// Starts a server on 127.0.0.1 whose answers come from `handler`, one thread per
    /// connection (so concurrent clients are served concurrently). Every request is
    /// recorded, body included, before the handler sees it.
    pub fn handle<F>(handler: F) -> Server
    where
        F: Fn(&Recorded) -> Answer + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    let Ok(read_half) = stream.try_clone() else {
                        return;
                    };
                    let mut reader = BufReader::new(read_half);
                    let Some(head) = read_head(&mut reader) else {
                        return;
                    };
                    let Some(req) = read_body(&mut reader, head) else {
                        return;
                    };
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(req.clone());
                    let (status, body) = handler(&req);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Server { addr, requests }
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The targets (path and query) of the requests received so far, in order.
    pub fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.target).collect()
    }
}

/// Reads an HTTP/1.1 request line and headers; `None` when the peer sent nothing (or
/// closed the connection). The body, if any, is left in `reader`.
pub fn read_head(reader: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    Some(Recorded {
        method,
        target,
        headers,
        body: Vec::new(),
    })
}

/// Reads the body `head` announces (`Content-Length`) into it; `None` when the peer
/// closed the connection before sending all of it.
pub fn read_body(reader: &mut impl BufRead, mut head: Recorded) -> Option<Recorded> {
    if let Some(n) = head
        .headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        reader.read_exact(&mut body).ok()?;
        head.body = body;
    }
    Some(head)
}

/// A loopback address nothing listens on. On 127.0.0.3, where no test server binds: a
/// port freed on 127.0.0.1 could be taken by another test's listener before the probe
/// (a test once saw its "reachable" endpoint answer another test's "closed" probe).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.3:0").expect("bind a port on 127.0.0.3");
    let addr = listener.local_addr().expect("the listener's address");
    drop(listener);
    addr
}
