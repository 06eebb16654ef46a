//! With the patch on but no hub (plain threads), std behaves exactly as unpatched.
#![cfg(feature = "monkey")]

use green_net::monkey;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The tests count fds and flip global state: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    monkey::patch_all();
    g
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn hooks_are_linked_into_test_binaries() {
    let _g = serial();
    // The executable's own definition shadows libc.so.6: dladdr names the test binary.
    let f = libc::clock_nanosleep as *const libc::c_void;
    // SAFETY: `Dl_info` is plain data (pointers and integers); all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable; `f` is a code address.
    assert_ne!(unsafe { libc::dladdr(f, &mut info) }, 0);
    // SAFETY: dladdr filled a NUL-terminated path.
    let obj = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    assert!(
        !obj.contains("libc.so"),
        "clock_nanosleep resolves to {obj}"
    );
}

#[test]
fn patch_state_is_idempotent() {
    let _g = serial();
    monkey::patch_all();
    assert!(monkey::is_patched() && monkey::is_sleep_patched() && monkey::is_net_patched());
    monkey::unpatch_all();
    assert!(!monkey::is_patched());
    monkey::patch_sleep();
    assert!(monkey::is_sleep_patched() && !monkey::is_net_patched());
    monkey::patch_net();
    assert!(monkey::is_patched() && monkey::is_net_patched());
}

#[test]
fn sleep_outside_greenlets_really_sleeps() {
    let _g = serial();
    let t = Instant::now();
    thread::sleep(Duration::from_millis(60));
    assert!(t.elapsed() >= Duration::from_millis(60));
    let h = thread::spawn(|| {
        let t = Instant::now();
        thread::sleep(Duration::from_millis(40));
        t.elapsed()
    });
    assert!(h.join().unwrap() >= Duration::from_millis(40));
}

#[test]
fn blocking_tcp_echo_on_plain_threads() {
    let _g = serial();
    let before = open_fds();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..4 {
            let (mut s, _) = l.accept().unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        n => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    let clients: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let msg = vec![i as u8; 100_000];
                let mut c2 = c.try_clone().unwrap();
                let w = thread::spawn(move || c2.write_all(&msg).unwrap());
                let mut got = vec![0u8; 100_000];
                c.read_exact(&mut got).unwrap();
                w.join().unwrap();
                assert!(got.iter().all(|&b| b == i as u8));
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    thread::sleep(Duration::from_millis(50)); // let the echo threads see EOF and drop
    assert_eq!(open_fds(), before);
}

#[test]
fn read_timeout_and_nonblocking_keep_std_error_kinds() {
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let mut c2 = c.try_clone().unwrap();
    c2.set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    // The kernel rounds to jiffies (e.g. 32 ms at HZ=250); only check it round-trips.
    assert!(c2.read_timeout().unwrap().unwrap() >= Duration::from_millis(30));
    let t = Instant::now();
    let e = c2.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(25));
    c2.set_nonblocking(true).unwrap();
    let e = c2.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
}
