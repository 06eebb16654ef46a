//! The seeds' upper-casing echo server and client, shared by the socket examples (and
//! usable by benchmarks through `#[path = "../examples/shared/echo.rs"] mod echo;`).
#![allow(dead_code)] // each example uses part of it

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

/// Serves one connection as the seeds' `talk(conn)` does: read up to 1024 bytes, send
/// them back upper-cased, until EOF; a reset by the peer ends the connection quietly
/// (printed when `verbose`). Returns the number of messages answered.
pub fn handle_connection(mut conn: TcpStream, verbose: bool) -> io::Result<u64> {
    let mut buf = [0u8; 1024];
    let mut messages = 0;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break, // if len(data) == 0: break
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                if verbose {
                    println!("{e}"); // except ConnectionResetError as e: print(e)
                }
                break;
            }
            Err(e) => return Err(e),
        };
        if verbose {
            println!("{}", String::from_utf8_lossy(&buf[..n]));
        }
        buf[..n].make_ascii_uppercase();
        conn.write_all(&buf[..n])?;
        messages += 1;
    }
    Ok(messages) // conn.close() is the drop
}

/// What a server saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServeStats {
    pub conns: u64,
    pub messages: u64,
    pub errors: u64,
}

/// The seeds' `server1()`: accepts connections and spawns [`handle_connection`] for
/// each, until `max_conns` connections were accepted or accepting fails (the listener
/// was closed). Then waits for the handlers and returns the totals.
pub fn serve(listener: &TcpListener, max_conns: Option<u64>, verbose: bool) -> ServeStats {
    let stats = Rc::new(Cell::new(ServeStats::default()));
    let mut handlers = Vec::new();
    while max_conns.is_none_or(|m| stats.get().conns < m) {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => break, // closed
            Err(e) => {
                eprintln!("accept: {e}");
                let mut s = stats.get();
                s.errors += 1;
                stats.set(s);
                continue;
            }
        };
        let mut s = stats.get();
        s.conns += 1;
        stats.set(s);
        let st = stats.clone();
        handlers.push(green::spawn(move || {
            let r = handle_connection(conn, verbose);
            let mut s = st.get();
            match r {
                Ok(m) => s.messages += m,
                Err(e) => {
                    eprintln!("connection: {e}");
                    s.errors += 1;
                }
            }
            st.set(s);
        }));
    }
    green::joinall(handlers);
    stats.get()
}

/// The seeds' `client()`: connects and sends "<name> <n>" for n = 0, 1, ..., reading
/// each reply, until `until` or `max_messages`. Checks every reply. Returns the number
/// of round trips.
pub fn client(
    addr: SocketAddr,
    name: &str,
    until: Instant,
    max_messages: Option<u64>,
    verbose: bool,
) -> io::Result<u64> {
    let mut conn = TcpStream::connect(addr)?;
    let mut reply = [0u8; 1024];
    let mut n = 0u64;
    while Instant::now() < until && max_messages.is_none_or(|m| n < m) {
        let data = format!("{name} {n}");
        conn.write_all(data.as_bytes())?;
        let got = &mut reply[..data.len()];
        conn.read_exact(got)?;
        if !got.eq_ignore_ascii_case(data.as_bytes()) || got.iter().any(u8::is_ascii_lowercase) {
            return Err(io::Error::new(ErrorKind::InvalidData, "wrong reply"));
        }
        if verbose {
            println!("{}", String::from_utf8_lossy(got));
        }
        n += 1;
    }
    Ok(n)
}

/// What a client load saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientStats {
    pub conns: u64,
    pub messages: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

/// Runs `conns` clients as greenlets of this thread (the seeds' 400 threads) for
/// `duration` or `max_messages` each, and waits for all of them.
pub fn run_clients(
    addr: SocketAddr,
    conns: u64,
    duration: Duration,
    max_messages: Option<u64>,
    prefix: &str,
    verbose: bool,
) -> ClientStats {
    let start = Instant::now();
    let until = start + duration;
    let handles: Vec<_> = (0..conns)
        .map(|i| {
            let name = format!("{prefix}Greenlet-{i}");
            green::spawn(move || client(addr, &name, until, max_messages, verbose))
        })
        .collect();
    let mut stats = ClientStats {
        conns,
        ..ClientStats::default()
    };
    for r in green::joinall(handles) {
        match r {
            Ok(Ok(n)) => stats.messages += n,
            Ok(Err(e)) => {
                eprintln!("client: {e}");
                stats.errors += 1;
            }
            Err(e) => {
                eprintln!("client greenlet: {e}");
                stats.errors += 1;
            }
        }
    }
    stats.elapsed = start.elapsed();
    stats
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; fails with a clear message if
/// that is still below `needed` file descriptors.
pub fn raise_fd_limit(needed: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", io::Error::last_os_error()));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the live struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    let have: u64 = lim.rlim_cur;
    if have < needed {
        return Err(format!(
            "need about {needed} file descriptors but RLIMIT_NOFILE is {have} \
             (hard limit {}); raise it with `ulimit -n {needed}` or use fewer connections",
            lim.rlim_max
        ));
    }
    Ok(have)
}

/// The number of OS threads in this process (entries of /proc/self/task).
pub fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The value after `--name` on the command line, if the option is there.
pub fn opt_arg<T: FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).map(|v| v.parse()) {
        Some(Ok(v)) => Some(v),
        _ => {
            eprintln!("{name} needs a valid value");
            std::process::exit(2);
        }
    }
}

/// The value after `--name` on the command line, or `default`.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    opt_arg(name).unwrap_or(default)
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
