//! Shared test helpers: a vendor and gateway in a temporary home, MQTT clients with
//! certificates, and a minimal HTTPS client. Every socket is on 127.0.0.1.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fwledger::{Backends, Vendor};
use fwledger_gateway::mqtt::BrokerUrl;
use fwledger_gateway::registry::NewDevice;
use fwledger_gateway::{Gateway, InitOptions, Timing};
use fwledger_link::Bundle;
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long any single wait in a test may last.
pub const WAIT: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Fails the test early, with instructions, when mosquitto is not installed.
pub fn require_mosquitto() {
    if fwledger_gateway::broker::find_mosquitto(None).is_err() {
        panic!("these tests need mosquitto: apt-get install -y mosquitto");
    }
}

/// A vendor and an initialised gateway sharing the embedded ledger and store in one home.
pub struct World {
    pub dir: tempfile::TempDir,
    pub backends: Backends,
    pub vendor: Vendor,
}

impl World {
    /// A vendor `acme` and a gateway on free ports, subscribed to the vendor's channel.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = Backends::open(dir.path(), "embedded", "embedded").expect("backends");
        let mut vendor = Vendor::init(dir.path(), "acme", &backends).expect("vendor");
        let options = InitOptions {
            mqtt_port: Some(free_port()),
            https_port: Some(free_port()),
            sntp_port: Some(free_port()),
            ..InitOptions::default()
        };
        let gateway = Gateway::init(dir.path(), &options).expect("gateway init");
        gateway
            .subscribe(&vendor.token(Some("test-gateway")).expect("token"))
            .expect("subscribe");
        World {
            dir,
            backends,
            vendor,
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn gateway(&self) -> Gateway {
        Gateway::open(self.home()).expect("open gateway")
    }

    /// Registers a device; returns its bundle.
    pub fn add_device(&self, id: &str, model: &str, hardware: &str) -> Bundle {
        self.gateway()
            .add_device(&NewDevice {
                id: id.into(),
                mac: "02:00:00:00:00:01".into(),
                model: model.into(),
                hardware: hardware.into(),
            })
            .expect("add device")
    }

    /// Publishes an image of `size` pseudo-random bytes; returns it.
    pub async fn publish(&mut self, version: &str, hardware: &[&str], size: usize) -> Vec<u8> {
        let image: Vec<u8> = (0..size)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect();
        let path = self.home().join(format!("lamp-{version}.bin"));
        std::fs::write(&path, &image).expect("write image");
        let mut spec = fwledger::ReleaseSpec::new("lamp", hardware, version);
        spec.security_version = 1;
        self.vendor
            .publish(&path, &spec, None)
            .await
            .expect("publish");
        image
    }
}

/// Fast intervals for tests.
pub fn fast_timing() -> Timing {
    let mut timing = Timing::default();
    timing.reconcile = Duration::from_millis(500);
    timing.channel_poll = Duration::from_millis(300);
    timing.stall = Duration::from_secs(10);
    timing.max_backoff = Duration::from_secs(2);
    timing
}

/// An MQTT test client.
pub struct Client {
    pub client: AsyncClient,
    publishes: mpsc::UnboundedReceiver<Publish>,
    subacks: mpsc::UnboundedReceiver<Vec<rumqttc::SubscribeReasonCode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// TLS identity of a bundle.
pub fn bundle_tls(bundle: &Bundle) -> Arc<rustls::ClientConfig> {
    fwledger_gateway::tls::client_config(
        &bundle.ca_cert_pem,
        Some((&bundle.device_cert_pem, &bundle.device_key_pem)),
    )
    .expect("bundle TLS")
}

/// TLS identity of the gateway itself.
pub fn gateway_tls(home: &Path) -> Arc<rustls::ClientConfig> {
    let paths = fwledger_gateway::GatewayPaths::new(home);
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).expect("read pem");
    fwledger_gateway::tls::client_config(
        &read(paths.ca_cert()),
        Some((&read(paths.client_cert()), &read(paths.client_key()))),
    )
    .expect("gateway TLS")
}

impl Client {
    /// Connects; `Err` when the broker refuses the connection (or TLS fails).
    pub async fn connect(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        id: &str,
    ) -> Result<Client, String> {
        let url = BrokerUrl::parse(url).map_err(|e| e.to_string())?;
        let mut options = url.options(id, Some(tls)).map_err(|e| e.to_string())?;
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (connack_tx, mut connack_rx) = mpsc::unbounded_channel();
        let (pub_tx, publishes) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        let _ = connack_tx.send(Ok(ack.code));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = pub_tx.send(p);
                    }
                    Ok(Event::Incoming(Packet::SubAck(s))) => {
                        let _ = sub_tx.send(s.return_codes);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = connack_tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        let result = tokio::time::timeout(Duration::from_secs(10), connack_rx.recv()).await;
        match result {
            Ok(Some(Ok(rumqttc::ConnectReturnCode::Success))) => Ok(Client {
                client,
                publishes,
                subacks,
                task,
            }),
            Ok(Some(Ok(code))) => {
                task.abort();
                Err(format!("refused: {code:?}"))
            }
            Ok(Some(Err(e))) => {
                task.abort();
                Err(e)
            }
            Ok(None) | Err(_) => {
                task.abort();
                Err("no answer".into())
            }
        }
    }

    /// Subscribes (QoS 1) and waits for the broker's answer.
    pub async fn subscribe(&mut self, topic: &str) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        tokio::time::timeout(WAIT, self.subacks.recv())
            .await
            .expect("suback in time")
            .expect("suback")
    }

    /// Publishes (QoS 1).
    pub async fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .expect("publish");
    }

    /// The next message within `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Publish> {
        tokio::time::timeout(timeout, self.publishes.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message on `topic` within `timeout` (others are skipped).
    pub async fn recv_on(&mut self, topic: &str, timeout: Duration) -> Option<Publish> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
            let message = self.recv(left).await?;
            if message.topic == topic {
                return Some(message);
            }
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

/// `GET url` over HTTPS, trusting `ca_pem`, with extra request headers.
pub async fn https_get(url: &str, ca_pem: &str, headers: &[(&str, &str)]) -> Response {
    let rest = url.strip_prefix("https://").expect("https URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, _port) = authority.rsplit_once(':').expect("port");
    let tls = fwledger_gateway::tls::client_config(ca_pem, None).expect("tls");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(authority))
        .await
        .expect("connect in time")
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("server name");
    let mut stream = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            // Servers may close without close_notify after a complete response.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Ok(Err(e)) => panic!("read: {e}"),
            Err(_) => panic!("response not complete in time"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Polls `condition` until it holds or [`WAIT`] passes.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut condition: F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
