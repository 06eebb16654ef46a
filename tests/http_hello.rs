//! `examples/http_hello.rs` over real sockets: keep-alive, pipelining (complete and
//! partial requests), `Connection: close`, HTTP/1.0, bodies, malformed and oversized
//! requests, the `--sleep-ms` handlers running side by side, `--duration`.
//!
//! Runs the example binary that `cargo test` builds next to this test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The example's HTTP code, for its date formatting.
#[allow(dead_code)]
#[path = "../examples/shared/http.rs"]
mod http;

/// The example running, listening on a port of its own; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let exe = std::env::current_exe().expect("the test's own path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test runs from target/<profile>/deps");
        let path: PathBuf = dir.join("examples").join("http_hello");
        let mut child = Command::new(&path)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut line = String::new();
        let stdout = child.stdout.as_mut().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `n` answers from `conn` (`head_only[i]`: the i-th answers a HEAD, no body).
fn read_answers(conn: &mut TcpStream, head_only: &[bool]) -> Vec<Answer> {
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    let mut chunk = [0u8; 4096];
    while answers.len() < head_only.len() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = resp.parse(&buf).unwrap() {
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_string(), value)
                })
                .collect();
            let status = resp.code.unwrap();
            let body_len: usize = if head_only[answers.len()] {
                0
            } else {
                headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap())
            };
            if buf.len() >= len + body_len {
                let body = buf[len..len + body_len].to_vec();
                buf.drain(..len + body_len);
                answers.push(Answer {
                    status,
                    headers,
                    body,
                });
                continue;
            }
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {} answers", answers.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.is_empty(), "more than asked for: {buf:?}");
    answers
}

/// Whether the server closed `conn` (EOF, or a reset).
fn closed(conn: &mut TcpStream) -> bool {
    matches!(conn.read(&mut [0u8; 64]), Ok(0) | Err(_))
}

const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn assert_hello(a: &Answer) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, b"Hello, World!");
    let date = a.header("date").expect("a Date header");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "{date:?}");
}

#[test]
fn keeps_alive_and_answers_pipelined_requests_in_order() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for _ in 0..3 {
        c.write_all(GET.as_bytes()).unwrap();
        assert_hello(&read_answers(&mut c, &[false])[0]);
    }
    // Three in one write, the middle one a HEAD (the same head, no body).
    let three = format!("{GET}HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n{GET}");
    c.write_all(three.as_bytes()).unwrap();
    let a = read_answers(&mut c, &[false, true, false]);
    assert_hello(&a[0]);
    assert_eq!(a[1].status, 200);
    assert_eq!(a[1].header("content-length"), Some("13"));
    assert!(a[1].body.is_empty());
    assert_hello(&a[2]);
    // A request split over writes: kept until complete, then answered with the next.
    c.write_all(b"GET / HT").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(format!("TP/1.1\r\nHost: x\r\n\r\n{GET}").as_bytes())
        .unwrap();
    let a = read_answers(&mut c, &[false, false]);
    a.iter().for_each(assert_hello);
    // A body with Content-Length is read and dropped.
    c.write_all(format!("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello{GET}").as_bytes())
        .unwrap();
    read_answers(&mut c, &[false, false])
        .iter()
        .for_each(assert_hello);
}

#[test]
fn honours_connection_close_and_http_1_0() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let a = read_answers(&mut c, &[false]);
    assert_hello(&a[0]);
    assert_eq!(a[0].header("connection"), Some("close"));
    assert!(closed(&mut c));
    // Requests pipelined after the close are not answered.
    let mut c = server.connect();
    c.write_all(format!("GET / HTTP/1.1\r\nConnection: close\r\n\r\n{GET}").as_bytes())
        .unwrap();
    read_answers(&mut c, &[false]);
    assert!(closed(&mut c));

    let mut c = server.connect();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    read_answers(&mut c, &[false]);
    assert!(closed(&mut c), "HTTP/1.0 closes by default");
    let mut c = server.connect();
    for _ in 0..2 {
        c.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        assert_hello(&read_answers(&mut c, &[false])[0]);
    }
}

#[test]
fn refuses_bad_requests_and_closes() {
    let server = Server::start(&[]);
    let many_headers: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "y".repeat(9000));
    let cases: [(String, u16); 4] = [
        ("NOT HTTP AT ALL\r\n\r\n".into(), 400),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            501,
        ),
        (format!("GET / HTTP/1.1\r\n{many_headers}\r\n"), 431),
        (huge, 431),
    ];
    for (request, status) in cases {
        let mut c = server.connect();
        // (The server may close before reading all of a huge request.)
        let _ = c.write_all(request.as_bytes());
        let a = read_answers(&mut c, &[false]);
        assert_eq!(a[0].status, status, "{request:.40}");
        assert!(closed(&mut c));
    }
    // The server goes on.
    let mut c = server.connect();
    c.write_all(GET.as_bytes()).unwrap();
    assert_hello(&read_answers(&mut c, &[false])[0]);
}

#[test]
fn sleeping_handlers_run_side_by_side() {
    const CLIENTS: usize = 20;
    let sleep = Duration::from_millis(200);
    let server = Server::start(&["--sleep-ms", "200"]);
    let mut conns: Vec<TcpStream> = (0..CLIENTS).map(|_| server.connect()).collect();
    let t = Instant::now();
    for c in &mut conns {
        c.write_all(GET.as_bytes()).unwrap();
    }
    for c in &mut conns {
        assert_hello(&read_answers(c, &[false])[0]);
    }
    let took = t.elapsed();
    assert!(took >= sleep, "{took:?}");
    // One after another would take CLIENTS * 200 ms = 4 s.
    assert!(took < sleep * CLIENTS as u32 / 2, "{took:?}");
}

#[test]
fn duration_stops_the_server_by_itself() {
    let mut server = Server::start(&["--duration", "0.3"]);
    let mut c = server.connect();
    c.write_all(GET.as_bytes()).unwrap();
    assert_hello(&read_answers(&mut c, &[false])[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let stdout = server.child.stdout.as_mut().unwrap();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.trim(), "stopped");
    assert!(c.read(&mut [0u8; 8]).is_ok_and(|n| n == 0) || closed(&mut c));
}

#[test]
fn dates_are_imf_fixdates() {
    assert_eq!(&http::imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        &http::imf_fixdate(784_111_777),
        b"Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        &http::imf_fixdate(951_782_400),
        b"Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(
        &http::imf_fixdate(4_102_444_799),
        b"Thu, 31 Dec 2099 23:59:59 GMT"
    );
    // The server's Date is today's.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.write_all(GET.as_bytes()).unwrap();
    let a = read_answers(&mut c, &[false]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = |secs: u64| String::from_utf8(http::imf_fixdate(secs)[..16].to_vec()).unwrap();
    let date = a[0].header("date").unwrap();
    // (The answer may be from just before midnight.)
    assert!(
        date.starts_with(&day(now)) || date.starts_with(&day(now - 60)),
        "{date}"
    );
}
