//! The fault proxy. One request per connection (`Connection: close` both ways), so each
//! request is seen whole and broken on its own; clients open a new connection for the
//! next one, as they do after any `Connection: close`.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How a request is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read the request head and half its body, then reset the connection (RST): the
    /// server never sees the request.
    ResetMidUpload,
    /// Answer this status (500, 503, ...) without forwarding: the server never sees it.
    Status(u16),
    /// Read the request, forward nothing and answer nothing for this long, then close.
    Stall(Duration),
    /// Forward the request and let the server perform it, then reset the connection
    /// instead of answering: the write happened, the client cannot know.
    AcceptThenDrop,
    /// Forward the request and let the server perform it, then answer this status.
    AcceptThenStatus(u16),
}

/// Which requests a rule breaks: every given part must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    method: Option<String>,
    path: Option<String>,
    header: Option<String>,
}

impl Matcher {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests with this method (`PUT`, `GET`, ...).
    pub fn method(method: &str) -> Self {
        Self::any().and_method(method)
    }

    pub fn and_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Requests whose target (path and query, as sent) contains `needle`.
    pub fn and_path(mut self, needle: &str) -> Self {
        self.path = Some(needle.to_owned());
        self
    }

    /// Requests that carry this header (any value).
    pub fn and_header(mut self, name: &str) -> Self {
        self.header = Some(name.to_ascii_lowercase());
        self
    }

    fn matches(&self, req: &Head) -> bool {
        self.method.as_ref().is_none_or(|m| *m == req.method)
            && self.path.as_ref().is_none_or(|p| req.target.contains(p))
            && self
                .header
                .as_ref()
                .is_none_or(|h| req.headers.iter().any(|(n, _)| n == h))
    }
}

/// A fault for the requests a matcher picks: after `skip` of them pass untouched, the
/// next `times` are broken.
#[derive(Debug, Clone)]
pub struct Rule {
    matcher: Matcher,
    fault: Fault,
    skip: usize,
    times: usize,
    matched: usize,
    fired: usize,
}

impl Rule {
    /// Breaks the first matching request.
    pub fn new(matcher: Matcher, fault: Fault) -> Self {
        Self {
            matcher,
            fault,
            skip: 0,
            times: 1,
            matched: 0,
            fired: 0,
        }
    }

    /// Lets the first `n` matching requests through.
    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Breaks `n` matching requests (`usize::MAX`: every one).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }
}

/// One request the proxy saw, and the fault it met (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// A loopback proxy in front of `upstream`, breaking what its rules pick.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub fn start(upstream: &str, rules: Vec<Rule>) -> io::Result<Self> {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            rules,
            seen: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let upstream = upstream.clone();
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, &state);
                });
            }
        });
        Ok(Self { port, state })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replaces the rules (an empty list: the network is healthy again).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.lock().rules = rules;
    }

    /// How many requests each rule broke, in rule order.
    pub fn fired(&self) -> Vec<usize> {
        self.lock().rules.iter().map(|r| r.fired).collect()
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request head as received.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    /// lower-case name, value
    headers: Vec<(String, String)>,
    /// The head as forwarded: without `Connection` and `Expect`.
    raw: Vec<u8>,
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut raw = first.clone().into_bytes();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let name = name.trim().to_ascii_lowercase();
        if name != "connection" && name != "expect" {
            raw.extend_from_slice(line.as_bytes());
        }
        headers.push((name, value.trim().to_owned()));
    }
    Ok(Some(Head {
        method,
        target,
        headers,
        raw,
    }))
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request body as sent (chunked bodies are kept chunked), reading at most `limit`
/// bytes of it when given.
fn read_body(reader: &mut impl BufRead, head: &Head, limit: Option<usize>) -> io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // trailers, then the empty line
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t == "\r\n" {
                        body.extend_from_slice(t.as_bytes());
                        return Ok(body);
                    }
                    body.extend_from_slice(t.as_bytes());
                }
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            if limit.is_some_and(|l| body.len() >= l) {
                return Ok(body);
            }
        }
    }
    let length: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let take = limit.map_or(length, |l| l.min(length));
    body.resize(take, 0);
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn reset(conn: &TcpStream) {
    let _ = socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO));
    // dropping the stream with a zero linger sends RST
}

fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let fault = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fault = None;
        for rule in &mut s.rules {
            if !rule.matcher.matches(&head) {
                continue;
            }
            rule.matched += 1;
            if rule.matched > rule.skip && rule.fired < rule.times {
                rule.fired += 1;
                fault = Some(rule.fault);
                break;
            }
        }
        s.seen.push(Seen {
            method: head.method.clone(),
            target: head.target.clone(),
            fault,
        });
        fault
    };
    let mut out = conn;
    let expects_continue = head
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if fault == Some(Fault::ResetMidUpload) {
        let length: usize = head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let _ = read_body(&mut reader, &head, Some(length / 2));
        reset(&out);
        return Ok(());
    }
    let body = read_body(&mut reader, &head, None)?;
    match fault {
        Some(Fault::Status(code)) => {
            return answer(&mut out, code);
        }
        Some(Fault::Stall(d)) => {
            std::thread::sleep(d);
            let _ = out.shutdown(Shutdown::Both);
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head.raw)?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    match fault {
        Some(Fault::AcceptThenDrop) => {
            // the server finishes the request; its answer goes nowhere
            io::copy(&mut up, &mut io::sink())?;
            reset(&out);
            Ok(())
        }
        Some(Fault::AcceptThenStatus(code)) => {
            io::copy(&mut up, &mut io::sink())?;
            answer(&mut out, code)
        }
        _ => {
            io::copy(&mut up, &mut out)?;
            Ok(())
        }
    }
}

fn answer(out: &mut TcpStream, code: u16) -> io::Result<()> {
    let reason = match code {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    // S3's error shape; GitLab clients read the status only
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>injected by the fault proxy</Message></Error>",
        if code == 503 {
            "SlowDown"
        } else {
            "InternalError"
        }
    );
    write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::io::Read;

    use super::*;

    /// An upstream that answers every request with 200 and the count of requests so far.
    fn upstream() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&got);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let head = read_head(&mut reader).unwrap().unwrap();
                let body = read_body(&mut reader, &head, None).unwrap();
                keep.lock().unwrap().push(body);
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
            }
        });
        (format!("http://127.0.0.1:{port}"), got)
    }

    fn put(port: u16, body: &[u8]) -> io::Result<String> {
        let mut c = TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            c,
            "PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        c.write_all(body)?;
        let mut text = String::new();
        c.read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn each_fault_does_what_it_says() {
        let (up, got) = upstream();
        let proxy = FaultProxy::start(
            &up,
            vec![
                Rule::new(Matcher::method("PUT"), Fault::Status(503)),
                Rule::new(Matcher::method("PUT"), Fault::ResetMidUpload),
                Rule::new(Matcher::method("PUT"), Fault::AcceptThenDrop),
                Rule::new(Matcher::method("PUT"), Fault::AcceptThenStatus(500)),
                Rule::new(Matcher::method("GET"), Fault::Status(500)),
            ],
        )
        .unwrap();
        let r = put(proxy.port(), b"one").unwrap();
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(put(proxy.port(), b"two-two").map_or(true, |t| t.is_empty()));
        assert!(put(proxy.port(), b"three").map_or(true, |t| t.is_empty()));
        let r = put(proxy.port(), b"four").unwrap();
        assert!(r.starts_with("HTTP/1.1 500"), "{r}");
        let r = put(proxy.port(), b"five").unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        // the server saw the accepted writes and the healthy one, not the broken ones
        assert_eq!(
            *got.lock().unwrap(),
            vec![b"three".to_vec(), b"four".to_vec(), b"five".to_vec()]
        );
        assert_eq!(proxy.fired(), vec![1, 1, 1, 1, 0]);
        assert_eq!(proxy.seen().len(), 5);
    }

    #[test]
    fn skip_and_times_pick_the_requests() {
        let (up, got) = upstream();
        let proxy = FaultProxy::start(
            &up,
            vec![
                Rule::new(Matcher::any().and_path("/key"), Fault::Status(500))
                    .skip(1)
                    .times(2),
            ],
        )
        .unwrap();
        let codes: Vec<String> = (0..4)
            .map(|_| put(proxy.port(), b"x").unwrap()[9..12].to_owned())
            .collect();
        assert_eq!(codes, ["200", "500", "500", "200"]);
        assert_eq!(got.lock().unwrap().len(), 2);
    }
}
