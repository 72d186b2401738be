//! `serve` on real loopback sockets: plain HTTP, and HTTPS with rustls.

use std::net::SocketAddr;
use std::sync::Arc;

use fwledger::{Backends, Vendor};
use fwledger_gateway::pki::GatewayCa;
use fwledger_portal::{PortalOptions, TlsFiles};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn portal(home: &std::path::Path) -> axum::Router {
    let backends = Backends::open(home, "embedded", "embedded").expect("backends");
    Vendor::init(home, "acme", &backends).expect("vendor");
    fwledger_portal::ensure_password(home).expect("password");
    fwledger_portal::router(home, backends, PortalOptions::default()).expect("router")
}

async fn get_login<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> String {
    stream
        .write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn start(
    router: axum::Router,
    tls: Option<TlsFiles>,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = fwledger_portal::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        fwledger_portal::serve(listener, router, tls, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    (addr, stop, task)
}

#[tokio::test]
async fn serves_plain_http_on_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, stop, task) = start(portal(dir.path()), None);
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let response = get_login(stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("__Host-fwledger_portal_login="));
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, ca_pem) = GatewayCa::generate("portal test CA").expect("ca");
    let server = ca
        .issue_server(&["127.0.0.1".to_string()])
        .expect("server cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &server.cert_pem).expect("write");
    std::fs::write(&key, &server.key_pem).expect("write");
    let home = dir.path().join("home");
    let (addr, stop, task) = start(portal(&home), Some(TlsFiles { cert, key }));

    let config = fwledger_gateway::tls::client_config(&ca_pem.cert_pem, None).expect("client");
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let response = get_login(tls).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-security-policy"), "{response}");

    // Plain HTTP to the HTTPS port gets no page.
    let plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), get_login(plain))
        .await
        .expect("answered or closed");
    assert!(!response.contains("HTTP/1.1 200"));
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(15), task)
        .await
        .expect("stops")
        .expect("task");
}
