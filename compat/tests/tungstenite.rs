//! tungstenite (WebSocket over std sockets): a server and 20 clients, all greenlets of
//! one thread; the server answers each message after 100 ms.

mod support;

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn twenty_concurrent_websocket_echoes() {
    support::setup();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = 20;
    let server = support::serve_n(l, n, |s| {
        let mut ws = tungstenite::accept(s).unwrap();
        while let Ok(msg) = ws.read() {
            if let Message::Text(t) = msg {
                thread::sleep(Duration::from_millis(100)); // patched
                ws.send(Message::text(format!("echo {t}"))).unwrap();
            }
        }
    });
    let (replies, took) = support::clients(n, move |i| {
        let s = TcpStream::connect(addr).unwrap();
        let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), s).unwrap();
        ws.send(Message::text(format!("{i}"))).unwrap();
        let reply = ws.read().unwrap().into_text().unwrap().to_string();
        ws.close(None).unwrap();
        // Let the close handshake finish.
        while ws.read().is_ok() {}
        reply
    });
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r, format!("echo {i}"));
    }
    server.join().unwrap();
    support::assert_concurrent("websocket echoes", took, n, Duration::from_millis(100));
}
