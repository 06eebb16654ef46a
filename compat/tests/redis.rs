//! The sync `redis` client under the monkey patch: it talks over std's `TcpStream`, so
//! its blocking commands park only their greenlet.
//!
//! Needs redis-server on 127.0.0.1:6379, which `.ci/run` starts; elsewhere the tests say
//! they skip when none answers.

mod support;

use std::time::{Duration, Instant};

fn connection() -> redis::Connection {
    redis::Client::open("redis://127.0.0.1:6379/")
        .unwrap()
        .get_connection()
        .unwrap()
}

/// A key no other run uses.
fn key(name: &str) -> String {
    format!("green-compat:{}:{name}", std::process::id())
}

#[test]
fn blocking_pops_run_concurrently() {
    if !support::server_answers("redis-server", 6379) {
        return;
    }
    support::patch();
    let ticker = support::ticker();
    let start = Instant::now();
    let pops: Vec<_> = (0..20)
        .map(|i| {
            green::spawn(move || {
                let mut con = connection();
                let got: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(key(&format!("empty-{i}")))
                    .arg(0.2)
                    .query(&mut con)
                    .unwrap();
                got
            })
        })
        .collect();
    for r in green::joinall(pops) {
        assert_eq!(r.unwrap(), None, "nothing was pushed: the pop timed out");
    }
    let took = start.elapsed();
    ticker.assert_smooth("20 BLPOP of 200 ms");
    // Serial: 4 s.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_push_from_one_greenlet_wakes_a_pop_in_another() {
    if !support::server_answers("redis-server", 6379) {
        return;
    }
    support::patch();
    let k = key("handoff");
    let k2 = k.clone();
    let start = Instant::now();
    let popper = green::spawn(move || {
        let mut con = connection();
        let got: Option<(String, String)> =
            redis::cmd("BLPOP").arg(&k).arg(5).query(&mut con).unwrap();
        got
    });
    let pusher = green::spawn(move || {
        let mut con = connection();
        green::sleep(Duration::from_millis(100));
        let n: i64 = redis::cmd("RPUSH")
            .arg(&k2)
            .arg("hello")
            .query(&mut con)
            .unwrap();
        n
    });
    assert_eq!(pusher.join().unwrap(), 1);
    let (_, v) = popper.join().unwrap().expect("the pop got the value");
    assert_eq!(v, "hello");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
