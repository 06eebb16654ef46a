//! Pipes, FIFOs, eventfds and ttys under the monkey patch: a read or write from a
//! greenlet parks until the fd is ready, and the fd's `O_NONBLOCK` flag (shared with
//! whoever else holds the open file description) is never changed.

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The kernel's `O_NONBLOCK` of `fd`, read without any hook.
fn kernel_nonblocking(fd: i32) -> bool {
    // SAFETY: a raw fcntl(F_GETFL) system call on an open fd.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as i32;
    assert!(fl >= 0);
    fl & libc::O_NONBLOCK != 0
}

#[test]
fn a_pipe_read_parks_only_its_greenlet() {
    support::patch();
    let (mut r, mut w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        // The reader greenlet waits on `fd` now: the kernel's flag is as it was.
        let nonblocking = kernel_nonblocking(fd);
        w.write_all(b"hello").unwrap();
        nonblocking
    });
    let ticker = support::ticker();
    let reader = green::spawn(move || {
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    });
    assert_eq!(reader.join().unwrap(), "hello");
    ticker.assert_smooth("a pipe read waiting 200 ms");
    assert!(
        !writer.join().unwrap(),
        "the pipe stays blocking in the kernel"
    );
}

#[test]
fn large_writes_and_reads_of_one_pipe_in_one_thread() {
    support::patch();
    let (mut r, mut w) = std::io::pipe().unwrap();
    // If a write blocked the thread, the reader greenlet could never drain the pipe:
    // a watchdog drains it after a while, so that the test fails instead of hanging.
    let spare = r.try_clone().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let watchdog = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && !d.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut spare = spare;
        let mut sink = [0u8; 65536];
        if !d.load(std::sync::atomic::Ordering::SeqCst) {
            while spare.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
    });
    let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let expect = data.clone();
    let start = Instant::now();
    let writer = green::spawn(move || {
        w.write_all(&data).unwrap();
        // A vectored write larger than PIPE_BUF too.
        let parts = [
            std::io::IoSlice::new(&[1u8; 5000]),
            std::io::IoSlice::new(&[2u8; 7000]),
        ];
        let n = w.write_vectored(&parts).unwrap();
        assert_eq!(n, 12000);
    });
    let reader = green::spawn(move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        got
    });
    writer.join().unwrap();
    let got = reader.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the watchdog had to drain it"
    );
    assert_eq!(got.len(), expect.len() + 12000);
    assert!(got[..expect.len()] == expect[..]);
    assert!(
        got[expect.len()..expect.len() + 5000]
            .iter()
            .all(|&b| b == 1)
    );
    assert!(got[expect.len() + 5000..].iter().all(|&b| b == 2));
    watchdog.join().unwrap();
}

#[test]
fn a_nonblocking_pipe_still_says_would_block() {
    support::patch();
    let (r, _w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    // SAFETY: F_SETFL with O_NONBLOCK on an open fd.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let h = green::spawn(move || {
        let mut r = r;
        let start = Instant::now();
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        (e.kind(), start.elapsed())
    });
    let (kind, took) = h.join().unwrap();
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
    // Nothing writes: a read that parked would never end. The bound only catches a
    // slow path, with room for a loaded machine.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn set_nonblocking_after_a_greenlet_read_is_honoured() {
    support::patch();
    let (mut r, mut w) = std::io::pipe().unwrap();
    let h = green::spawn(move || {
        w.write_all(b"a").unwrap();
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap(); // the hooks now know the pipe, as blocking
        let fd = r.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on an open fd.
        unsafe {
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            )
        };
        let start = Instant::now();
        let e = r.read(&mut b).unwrap_err();
        (e.kind(), start.elapsed(), w)
    });
    let (kind, took, _w) = h.join().unwrap();
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
    // Nothing writes: a read that parked would never end. The bound only catches a
    // slow path, with room for a loaded machine.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_fifo_read_parks() {
    support::patch();
    let dir = std::env::temp_dir().join(format!("green-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let _ = std::fs::remove_file(&path);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Read and write ends opened without waiting for each other (O_RDWR never waits).
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let p = path.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        w.write_all(b"fifo").unwrap();
    });
    let ticker = support::ticker();
    let reader = green::spawn(move || {
        let mut b = [0u8; 4];
        fifo.read_exact(&mut b).unwrap();
        b
    });
    assert_eq!(&reader.join().unwrap(), b"fifo");
    ticker.assert_smooth("a FIFO read waiting 200 ms");
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_eventfd_read_parks() {
    support::patch();
    // SAFETY: plain eventfd creation; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a new fd owned here.
    let efd = unsafe { OwnedFd::from_raw_fd(fd) };
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let one = 5u64.to_ne_bytes();
        // SAFETY: an 8-byte write to an open eventfd.
        assert_eq!(unsafe { libc::write(fd, one.as_ptr().cast(), 8) }, 8);
    });
    let ticker = support::ticker();
    let reader = green::spawn(move || {
        let mut v = [0u8; 8];
        // SAFETY: an 8-byte read from an open eventfd.
        let n = unsafe { libc::read(efd.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
        (n, u64::from_ne_bytes(v))
    });
    assert_eq!(reader.join().unwrap(), (8, 5));
    ticker.assert_smooth("an eventfd read waiting 200 ms");
    writer.join().unwrap();
}

#[test]
fn a_tty_read_parks() {
    support::patch();
    // SAFETY: plain libc calls on the fds they return; every result is checked.
    let (master, slave) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0);
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    };
    let mut master = std::fs::File::from(master);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        master.write_all(b"line\n").unwrap();
        master
    });
    let ticker = support::ticker();
    let reader = green::spawn(move || {
        let mut tty = std::fs::File::from(slave);
        let mut b = [0u8; 16];
        let n = tty.read(&mut b).unwrap();
        b[..n].to_vec()
    });
    assert_eq!(reader.join().unwrap(), b"line\n");
    ticker.assert_smooth("a tty read waiting 200 ms");
    drop(writer.join().unwrap());
}
