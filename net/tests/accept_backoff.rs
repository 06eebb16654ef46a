//! Accepting while the process is out of fds: the accepting greenlet backs off instead
//! of spinning, the hub keeps serving everything else, and accepting resumes once fds
//! are free again.
//!
//! Each test lowers the fd limit, so its body runs in a child process of its own (see
//! `common/child.rs`): a parent that sees it spin forever kills it and fails.

#[path = "common/child.rs"]
mod child;
#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

use std::cell::Cell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long the process stays out of fds while the tests watch it.
const STARVED: Duration = Duration::from_millis(500);
/// Connections that wait in the listener's queue while no fd is left for them.
const QUEUED: usize = 3;
/// How long a child may take before the parent gives up on it.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// What the test logger caught so far: (level, message).
fn logged() -> Vec<(log::Level, String)> {
    log_capture::lines()
        .into_iter()
        .map(|l| (l.level, l.text))
        .collect()
}

/// In the child: catches log records, and lowers the soft fd limit to what is open now
/// plus `spare`.
fn child_setup(spare: u64) {
    log_capture::install(log::LevelFilter::Info);
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = open + spare;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// Takes every fd left (duplicates of one `/dev/null`), until the kernel says `EMFILE`.
fn take_all_fds() -> Vec<File> {
    let null = File::open("/dev/null").unwrap();
    let mut held = Vec::new();
    loop {
        match null.try_clone() {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                held.push(null);
                return held;
            }
        }
    }
}

/// The CPU time this process has used so far (all its threads).
fn cpu_time() -> Duration {
    // SAFETY: clock_gettime only writes the timespec passed.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        assert_eq!(
            libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts),
            0
        );
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A greenlet that ticks every millisecond until `stop` is set, counting in `ticks`.
fn ticker(ticks: Rc<Cell<u32>>, stop: Rc<Cell<bool>>, sleep: fn(Duration)) -> Handle {
    green::spawn(move || {
        while !stop.get() {
            sleep(Duration::from_millis(1));
            ticks.set(ticks.get() + 1);
        }
    })
}

type Handle = green::JoinHandle<()>;

/// A greenlet that sends a message on `conn` every 5 ms and reads its echo, until
/// `stop` is set, counting the echoes in `echoes`.
fn echo_client<S: Read + Write + 'static>(
    mut conn: S,
    echoes: Rc<Cell<u32>>,
    stop: Rc<Cell<bool>>,
    sleep: fn(Duration),
) -> Handle {
    green::spawn(move || {
        let mut buf = [0u8; 4];
        while !stop.get() {
            conn.write_all(b"ping").unwrap();
            conn.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            echoes.set(echoes.get() + 1);
            sleep(Duration::from_millis(5));
        }
    })
}

/// Echoes what `conn` reads until the end of the stream.
fn echo_server<S: Read + Write + 'static>(mut conn: S) -> Handle {
    green::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => conn.write_all(&buf[..n]).unwrap(),
            }
        }
    })
}

/// The greenlets that must keep running while an acceptor is refused: a ticker and an
/// echo over an existing connection (`client`, whose server side is served by an echo
/// greenlet already), both sleeping with `sleep`.
struct Bystanders {
    stop: Rc<Cell<bool>>,
    ticks: Rc<Cell<u32>>,
    echoes: Rc<Cell<u32>>,
    handles: Vec<Handle>,
}

impl Bystanders {
    fn start<S: Read + Write + 'static>(client: S, sleep: fn(Duration)) -> Bystanders {
        let stop = Rc::new(Cell::new(false));
        let (ticks, echoes) = (Rc::default(), Rc::default());
        let handles = vec![
            ticker(Rc::clone(&ticks), stop.clone(), sleep),
            echo_client(client, Rc::clone(&echoes), stop.clone(), sleep),
        ];
        Bystanders {
            stop,
            ticks,
            echoes,
            handles,
        }
    }

    /// Watches the hub for [`STARVED`] while an acceptor is refused for want of fds
    /// (`held` holds them all); checks that the process mostly slept and that the
    /// bystanders kept going. Then frees the fds.
    fn watch_while_starved(&self, held: Vec<File>) {
        let (wall, cpu) = (Instant::now(), cpu_time());
        let (t0, e0) = (self.ticks.get(), self.echoes.get());
        green::sleep(STARVED);
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        let (ticked, echoed) = (self.ticks.get() - t0, self.echoes.get() - e0);
        eprintln!("out of fds for {wall:?}: {cpu:?} of CPU, {ticked} ticks, {echoed} echoes");
        // A spinning acceptor takes a whole CPU (and nothing else runs).
        assert!(cpu < wall / 4, "{cpu:?} of CPU in {wall:?}");
        // At most 500 ticks and 100 echoes fit: wide margins for a loaded machine.
        assert!(ticked >= 50, "the ticker ticked {ticked} times");
        assert!(
            echoed >= 10,
            "the existing connection echoed {echoed} times"
        );
        drop(held);
    }

    fn stop(self) {
        self.stop.set(true);
        for h in self.handles {
            h.join().unwrap();
        }
    }
}

/// The log lines of the back-off of the listener `fd`: one warning when it starts
/// (with the error and the listener's fd and address), then, if `ended`, one info line
/// when it ends, whatever the number of retries and of accepts in between.
fn check_logs(fd: i32, ended: bool) {
    let logged = logged();
    let ours: Vec<_> = logged
        .iter()
        .filter(|(_, m)| m.contains("accept on"))
        .collect();
    assert_eq!(ours.len(), 1 + usize::from(ended), "{logged:?}");
    let (level, start) = ours[0];
    assert_eq!(*level, log::Level::Warn);
    assert!(start.contains(&format!("fd {fd} (")), "{start}");
    assert!(start.contains("Too many open files"), "{start}");
    if ended {
        let (level, end) = ours[1];
        assert_eq!(*level, log::Level::Info);
        assert!(end.contains(&format!("fd {fd} (")), "{end}");
        assert!(end.contains("works again"), "{end}");
    }
}

/// Runs `body` in a child process of its own when called by the test harness (see
/// `common/child.rs`).
fn in_child(name: &str, body: impl FnOnce()) {
    if child::is_child(name) {
        body();
    } else {
        let out = child::run(name, CHILD_LIMIT);
        eprint!("{out}");
    }
}

/// How long to wait for an acceptor to recover once fds are free: the back-off waits
/// at most a second between tries.
const RECOVERY: Duration = Duration::from_secs(10);

/// Longer than the quiet time that ends a back-off episode (a second).
const QUIET: Duration = Duration::from_millis(1100);

#[test]
fn accept_backs_off_while_the_process_is_out_of_fds() {
    in_child("accept_backs_off_while_the_process_is_out_of_fds", || {
        child_setup(32);
        let listener = Rc::new(green::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let client = green::net::TcpStream::connect(addr).unwrap();
        let server = echo_server(listener.accept().unwrap().0);
        let queued: Vec<_> = (0..QUEUED)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let held = take_all_fds();

        // In std's non-blocking mode the error comes back at once.
        listener.set_nonblocking(true).unwrap();
        let e = listener.accept().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        listener.set_nonblocking(false).unwrap();

        let l = listener.clone();
        // A server's loop over `incoming` that goes on after an error: none comes out.
        let acceptor = green::spawn(move || {
            let (mut accepted, mut refused) = (Vec::new(), 0);
            for conn in l.incoming() {
                match conn {
                    Ok(conn) => accepted.push(conn),
                    Err(_) => refused += 1,
                }
                if accepted.len() == QUEUED {
                    break;
                }
            }
            refused
        });
        let bystanders = Bystanders::start(client, green::sleep);
        bystanders.watch_while_starved(held);
        // Fds are free again: the queued connections are accepted.
        assert_eq!(
            acceptor.join_timeout(RECOVERY).unwrap(),
            0,
            "errors came out"
        );
        bystanders.stop();
        drop(queued);
        server.join().unwrap();
        check_logs(std::os::fd::AsRawFd::as_raw_fd(&*listener), false);
        // The episode ends (and says so) at the first accept a second after its last
        // refusal.
        green::sleep(QUIET);
        let _late = std::net::TcpStream::connect(addr).unwrap();
        listener.accept().unwrap();
        check_logs(std::os::fd::AsRawFd::as_raw_fd(&*listener), true);
    });
}

#[cfg(feature = "monkey")]
#[test]
fn std_accept_under_the_monkey_patch_backs_off_while_the_process_is_out_of_fds() {
    const NAME: &str =
        "std_accept_under_the_monkey_patch_backs_off_while_the_process_is_out_of_fds";
    in_child(NAME, || {
        use std::net::{TcpListener, TcpStream};
        child_setup(32);
        green::monkey::patch_all();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let server = echo_server(listener.accept().unwrap().0);
        let queued: Vec<_> = (0..QUEUED)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let held = take_all_fds();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        // A plain std accept loop that retries at once on any error.
        let acceptor = green::spawn(move || {
            let (mut accepted, mut refused) = (Vec::new(), 0);
            while accepted.len() < QUEUED {
                match listener.accept() {
                    Ok((conn, _)) => accepted.push(conn),
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                        refused += 1;
                    }
                }
            }
            (refused, listener)
        });
        // A std sleep in a greenlet is the patched one.
        let bystanders = Bystanders::start(client, std::thread::sleep);
        bystanders.watch_while_starved(held);
        let (refused, listener) = acceptor.join_timeout(RECOVERY).unwrap();
        eprintln!("the std accept loop was refused {refused} times");
        // Refusals 10, 20, 40, ... ms apart: a handful in the half second (a spinning
        // loop would have had millions).
        assert!((1..=30).contains(&refused), "{refused}");
        bystanders.stop();
        drop(queued);
        server.join().unwrap();
        check_logs(fd, false);
        // The episode ends (and says so) at the first accept a second after its last
        // refusal.
        std::thread::sleep(QUIET);
        let _late = TcpStream::connect(addr).unwrap();
        green::spawn(move || listener.accept().map(drop))
            .join()
            .unwrap()
            .unwrap();
        check_logs(fd, true);
    });
}

#[test]
fn closing_a_listener_ends_its_back_off() {
    in_child("closing_a_listener_ends_its_back_off", || {
        child_setup(16);
        let path = std::env::temp_dir().join(format!("green-backoff-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = Rc::new(green::net::UnixListener::bind(&path).unwrap());
        let queued = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let held = take_all_fds();
        let l = listener.clone();
        let acceptor = green::spawn(move || {
            let e = l.accept().map(|_| ()).unwrap_err();
            (e, Instant::now())
        });
        // Refusals at 0, 10, 30, 70, 150, 310 and 630 ms: by 700 ms the acceptor
        // naps until about 1.27 s.
        green::sleep(Duration::from_millis(700));
        let closed = Instant::now();
        listener.close();
        let (e, woke) = acceptor.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::ConnectionAborted, "{e}");
        let late = woke - closed;
        assert!(
            late < Duration::from_millis(300),
            "woke {late:?} after the close"
        );
        drop((held, queued));
        check_logs(std::os::fd::AsRawFd::as_raw_fd(&*listener), false);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn a_stream_server_backs_off_while_the_process_is_out_of_fds() {
    in_child(
        "a_stream_server_backs_off_while_the_process_is_out_of_fds",
        || {
            use green::net::{StreamServer, TcpStream};
            child_setup(32);
            let server = StreamServer::new("127.0.0.1:0", |mut conn: TcpStream, _| {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            server.start().unwrap();
            let addr = server.local_addr().unwrap();
            let client = TcpStream::connect(addr).unwrap();
            while server.connections() == 0 {
                green::sleep(Duration::from_millis(1));
            }
            let mut queued: Vec<TcpStream> = (0..QUEUED)
                .map(|_| TcpStream::connect(addr).unwrap())
                .collect();
            // The server accepted the first connection and waits for fds to accept the
            // others: its loop neither spins nor stops.
            let held = take_all_fds();
            let bystanders = Bystanders::start(client, green::sleep);
            bystanders.watch_while_starved(held);
            for conn in &mut queued {
                conn.set_read_timeout(Some(RECOVERY)).unwrap();
                conn.write_all(b"late").unwrap();
                let mut buf = [0u8; 4];
                conn.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"late", "queued, then served");
            }
            bystanders.stop();
            assert!(server.started(), "still serving");
            let logged = logged();
            let warned = |what: &str| {
                logged
                    .iter()
                    .filter(|(l, m)| *l == log::Level::Warn && m.contains(what))
                    .count()
            };
            assert_eq!(
                warned("accept on"),
                1,
                "the listener's back-off: {logged:?}"
            );
            assert_eq!(
                warned("StreamServer"),
                0,
                "no error reached the server: {logged:?}"
            );
            server.stop(Duration::from_secs(1));
        },
    );
}
