//! Without `patch_all()` the hooks are glibc's functions: the same calls as the other
//! tests of this crate block the thread (the ticker stalls) and give the same results.
//! (This test binary never patches.)

mod support;

use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::time::Duration;

#[test]
fn unpatched_calls_block_the_thread_and_work() {
    assert!(!green::monkey::is_patched());
    let (mut r, mut w) = std::io::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        w.write_all(b"late").unwrap();
    });
    let ticker = support::ticker();
    let got = green::spawn(move || {
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        let addrs = ("localhost", 1).to_socket_addrs().unwrap().count();
        let out = std::process::Command::new("sh")
            .args(["-c", "echo ok"])
            .output()
            .unwrap();
        (s, addrs, out.stdout)
    })
    .join()
    .unwrap();
    let (gap, _) = ticker.finish();
    writer.join().unwrap();
    assert_eq!(got.0, "late");
    assert!(got.1 >= 1);
    assert_eq!(got.2, b"ok\n");
    assert!(
        gap >= Duration::from_millis(150),
        "the read blocked the thread: {gap:?}"
    );
    assert_eq!(
        green::monitor::stall_report(),
        None,
        "no report unless patched"
    );
}
