//! rustls over std sockets: a TLS server and 20 clients, all greenlets of one thread;
//! the server answers each line after 100 ms.

mod support;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    // ring builds without a C toolchain of its own; post-quantum key exchange (what the
    // deprecation is about) does not matter on loopback.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn twenty_concurrent_tls_sessions() {
    support::setup();
    let (server_cfg, client_cfg) = configs();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = 20;
    let server = support::serve_n(l, n, move |s| {
        let conn = rustls::ServerConnection::new(server_cfg.clone()).unwrap();
        let mut tls = BufReader::new(rustls::StreamOwned::new(conn, s));
        let mut line = String::new();
        tls.read_line(&mut line).unwrap();
        thread::sleep(Duration::from_millis(100)); // patched
        let tls = tls.get_mut();
        tls.write_all(format!("echo {line}").as_bytes()).unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
    });
    let (replies, took) = support::clients(n, move |i| {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(client_cfg.clone(), name).unwrap();
        let s = TcpStream::connect(addr).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, s);
        writeln!(tls, "{i}").unwrap();
        let mut reply = String::new();
        BufReader::new(tls).read_line(&mut reply).unwrap();
        reply
    });
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r, format!("echo {i}\n"));
    }
    server.join().unwrap();
    support::assert_concurrent("TLS sessions", took, n, Duration::from_millis(100));
}
