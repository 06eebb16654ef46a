//! A keep-alive HTTP/1.1 "Hello, World!" connection, parsed with `httparse`: what
//! `examples/http_hello.rs` runs in each connection's greenlet ([`serve`]), and what the
//! `http` benchmark (benches/benches/http.rs includes this file) measures. The parsing
//! and answering ([`Input`], [`Session`]) do no IO, so that the benchmark's hand-written
//! mio server answers with the very same code.
//!
//! - **Pipelining**: every complete request in the buffer is answered, in order, and
//!   the answers go out in one write; a partial request stays for the next read.
//! - **Keep-alive**: HTTP/1.1 keeps the connection unless the request says
//!   `Connection: close` (answered, then closed); HTTP/1.0 closes unless it says
//!   `Connection: keep-alive`.
//! - **Bodies**: a `Content-Length` body is read and dropped; a chunked one is refused
//!   (501, then close). A head over 8 KiB or with more than 32 headers gets 431, a
//!   malformed one 400, both then close.
//! - **Idle timeout**: a connection that sends nothing for that long is closed.
//! - **Sleep**: an optional wait before each answer, a stand-in for a database call:
//!   std's `thread::sleep`, which the monkey patch makes switch greenlets, or
//!   `green::sleep` in a build without the `monkey` feature.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use green::net::TcpStream;

/// The answer's body.
pub const BODY: &[u8] = b"Hello, World!";
/// The longest request head (request line and headers) accepted: the input buffer.
pub const BUF_LEN: usize = 8192;
/// The most headers a request may have.
const MAX_HEADERS: usize = 32;

/// How each connection is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// Waited before each answer.
    pub sleep: Option<Duration>,
    /// A connection silent this long is closed.
    pub idle_timeout: Option<Duration>,
}

/// What the answer to one request depends on.
struct Head {
    /// HEAD: the answer has no body.
    head_only: bool,
    keep_alive: bool,
    /// Bytes of body that follow the head.
    body_len: usize,
    chunked: bool,
}

impl Head {
    /// Reads what matters from a parsed request; `Err` is an answer that ends the
    /// connection.
    fn of(req: &httparse::Request<'_, '_>) -> Result<Head, &'static [u8]> {
        let http11 = req.version == Some(1);
        let mut head = Head {
            head_only: req.method == Some("HEAD"),
            keep_alive: http11,
            body_len: 0,
            chunked: false,
        };
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        head.keep_alive = true;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                head.body_len = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or(BAD_REQUEST)?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = true;
            }
        }
        if head.chunked {
            return Err(NOT_IMPLEMENTED);
        }
        Ok(head)
    }
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const NOT_IMPLEMENTED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The input of one connection: bytes read and not yet parsed, in a buffer of
/// [`BUF_LEN`] bytes.
pub struct Input {
    buf: Box<[u8]>,
    /// Unparsed input is `buf[start..end]`.
    start: usize,
    end: usize,
}

impl Default for Input {
    fn default() -> Input {
        Input {
            buf: vec![0u8; BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl Input {
    /// Where to read next: the free end of the buffer, after moving a partial request
    /// to its front. `None` when a partial request fills it all (a head too large).
    pub fn space(&mut self) -> Option<&mut [u8]> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return None;
            }
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        Some(&mut self.buf[self.end..])
    }

    /// `n` bytes were read into [`space`](Input::space).
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

/// The requests of one connection, answered as they arrive.
#[derive(Default)]
pub struct Session {
    /// Body bytes of the last request still to come (and be dropped).
    skip: usize,
}

impl Session {
    /// Answers every complete request in `input`, in order, appending the answers to
    /// `out` and calling `wait` before each; leaves a partial request in `input`.
    /// Returns true when the connection must close once `out` is written.
    pub fn answer(&mut self, input: &mut Input, out: &mut Vec<u8>, mut wait: impl FnMut()) -> bool {
        loop {
            let dropped = self.skip.min(input.end - input.start);
            input.start += dropped;
            self.skip -= dropped;
            if self.skip > 0 || input.start == input.end {
                return false;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let head = match req.parse(&input.buf[input.start..input.end]) {
                Ok(httparse::Status::Partial) => return false,
                Ok(httparse::Status::Complete(len)) => {
                    input.start += len;
                    Head::of(&req)
                }
                Err(httparse::Error::TooManyHeaders) => Err(TOO_LARGE),
                Err(_) => Err(BAD_REQUEST),
            };
            match head {
                Ok(head) => {
                    self.skip = head.body_len;
                    wait();
                    hello(out, &head);
                    if !head.keep_alive {
                        return true;
                    }
                }
                Err(answer) => {
                    out.extend_from_slice(answer);
                    return true;
                }
            }
        }
    }
}

/// The answer to a request head too large for the buffer; then close.
pub const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    Content-Length: 0\r\nConnection: close\r\n\r\n";

/// Serves one connection until the client closes it, asks to, errs, or idles out.
pub fn serve(mut conn: TcpStream, cfg: &Config) -> io::Result<()> {
    conn.set_nodelay(true)?;
    conn.set_read_timeout(cfg.idle_timeout)?;
    let (mut input, mut session) = (Input::default(), Session::default());
    let mut out = Vec::with_capacity(1024);
    loop {
        let Some(space) = input.space() else {
            return conn.write_all(TOO_LARGE);
        };
        match conn.read(space) {
            Ok(0) => return Ok(()),
            Ok(n) => input.filled(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
            Err(e) => return Err(e),
        }
        let close = session.answer(&mut input, &mut out, || {
            if let Some(d) = cfg.sleep {
                pause(d);
            }
        });
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
    }
}

/// The stand-in for a database call: std's sleep, which switches greenlets once the
/// monkey patch is on.
#[cfg(feature = "monkey")]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// The stand-in for a database call, without the monkey patch.
#[cfg(not(feature = "monkey"))]
fn pause(d: Duration) {
    green::sleep(d);
}

/// Appends the answer to a request.
fn hello(out: &mut Vec<u8>, head: &Head) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nServer: green\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n",
    );
    if !head.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"Date: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n\r\n");
    if !head.head_only {
        out.extend_from_slice(BODY);
    }
}

thread_local! {
    /// The `Date` header's value and the second it is for.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current `Date` value (IMF-fixdate), formatted once a second.
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (secs, mut date) = DATE.get();
    if secs != now {
        date = imf_fixdate(now);
        DATE.set((now, date));
    }
    f(&date);
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `secs` since the Unix epoch.
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8; 29], at: usize, v: u64| {
        out[at] = b'0' + (v / 10 % 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 5, day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out, 12, year / 100);
    two(&mut out, 14, year);
    two(&mut out, 17, h);
    two(&mut out, 20, m);
    two(&mut out, 23, s);
    out
}
