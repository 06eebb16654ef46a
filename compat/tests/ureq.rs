//! ureq (a blocking HTTP client on std sockets): 100 GETs from greenlets of one thread
//! at once, against a server that answers each after 100 ms.

mod support;

use std::time::{Duration, Instant};

#[test]
fn a_hundred_concurrent_gets() {
    support::setup();
    let addr = support::http_server(Duration::from_millis(100));
    let agent = ureq::Agent::new_with_defaults();
    let n = 100;
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let agent = agent.clone();
            green::spawn(move || {
                let mut r = agent.get(&format!("http://{addr}/{i}")).call().unwrap();
                r.body_mut().read_to_string().unwrap()
            })
        })
        .collect();
    for r in green::joinall(hs) {
        assert_eq!(r.unwrap(), "ok");
    }
    support::assert_concurrent("ureq GETs", t.elapsed(), n, Duration::from_millis(100));
}
