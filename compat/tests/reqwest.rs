//! reqwest::blocking (tokio on a background thread; the caller waits in
//! `std::thread::park`): 100 GETs from greenlets of one thread at once, against a
//! server that answers each after 100 ms. All 100 greenlets park through the thread's
//! one park word at once.

mod support;

use std::time::{Duration, Instant};

#[test]
fn a_hundred_concurrent_blocking_gets() {
    support::setup();
    let addr = support::http_server(Duration::from_millis(100));
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(200)
        .build()
        .unwrap();
    let n = 100;
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            green::spawn(move || {
                client
                    .get(format!("http://{addr}/{i}"))
                    .send()
                    .unwrap()
                    .text()
                    .unwrap()
            })
        })
        .collect();
    for r in green::joinall(hs) {
        assert_eq!(r.unwrap(), "ok");
    }
    support::assert_concurrent("reqwest GETs", t.elapsed(), n, Duration::from_millis(100));
    drop(client); // joins its runtime thread: parks main
}
