//! tungstenite (WebSocket over std sockets): a server and 20 clients, all greenlets of
//! one thread; the server answers each message after 100 ms.

mod common;

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

#[test]
fn twenty_concurrent_websocket_echoes() {
    common::setup();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = 20;
    let server = green::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            conns.push(green::spawn(move || {
                let mut ws = tungstenite::accept(s).unwrap();
                while let Ok(msg) = ws.read() {
                    if let Message::Text(t) = msg {
                        thread::sleep(Duration::from_millis(100)); // patched
                        ws.send(Message::text(format!("echo {t}"))).unwrap();
                    }
                }
            }));
        }
        for r in green::joinall(conns) {
            r.unwrap();
        }
    });
    let t = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            green::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), s).unwrap();
                ws.send(Message::text(format!("{i}"))).unwrap();
                let reply = ws.read().unwrap().into_text().unwrap().to_string();
                ws.close(None).unwrap();
                // Let the close handshake finish.
                while ws.read().is_ok() {}
                reply
            })
        })
        .collect();
    for (i, r) in green::joinall(clients).into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("echo {i}"));
    }
    let took = t.elapsed();
    server.join().unwrap();
    common::assert_concurrent("websocket echoes", took, n, Duration::from_millis(100));
}
