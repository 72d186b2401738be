//! A tiny test gateway: certificates (rcgen), a real mosquitto with TLS and required client
//! certificates, an HTTPS file server with Range support and fault modes, a gateway MQTT client
//! that publishes retained notices and collects status reports, and a vendor that signs releases.
//! Everything listens on 127.0.0.1 and is stopped on drop.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fwledger_device::host::{self, DeviceConfig, FileSlots};
use fwledger_device::{image_self_check, BootRecord, FaultPoint, Shutdown, Slots};
use fwledger_link::{topics, Bundle, DeviceStatus, TrustedVendor, UpdateState, BUNDLE_FORMAT};
use fwledger_proto::ed25519_dalek::SigningKey;
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::{Manifest, Notice};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;
type Files = Arc<Mutex<HashMap<String, Served>>>;
type Reports = Arc<(Mutex<Vec<(String, DeviceStatus)>>, Condvar)>;

pub const WAIT: Duration = Duration::from_secs(40);
pub const MODEL: &str = "lamp";
pub const HARDWARE: &str = "rev-b";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

// ---------------------------------------------------------------- certificates

pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "fwledger test gateway CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn issue(&self, cn: &str, server: bool) -> Issued {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = if server {
            vec!["127.0.0.1".into(), "localhost".into()]
        } else {
            vec![]
        };
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

// ---------------------------------------------------------------- mosquitto

pub struct Broker {
    child: Child,
    pub port: u16,
}

impl Broker {
    /// mosquitto with TLS and required client certificates (`tls`), or plain MQTT on loopback.
    pub fn start(pki: &Pki, dir: &Path, tls: bool) -> Broker {
        let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed (apt-get install -y mosquitto)");
        std::fs::create_dir_all(dir).expect("broker dir");
        let server = pki.issue("broker", true);
        std::fs::write(dir.join("ca.pem"), pki.ca_pem()).expect("write");
        std::fs::write(dir.join("server.pem"), &server.cert_pem).expect("write");
        std::fs::write(dir.join("server.key"), &server.key_pem).expect("write");
        std::fs::write(dir.join("acl"), topics::mosquitto_acl("gateway")).expect("write");
        for _ in 0..5 {
            let port = free_port();
            let security = if tls {
                format!(
                    "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
                     require_certificate true\nuse_identity_as_username true\n\
                     acl_file {d}/acl\n",
                    d = dir.display()
                )
            } else {
                "allow_anonymous true\n".to_string()
            };
            let conf = format!(
                "user root\npersistence false\nlog_dest stderr\nlog_type error\n\
                 listener {port} 127.0.0.1\n{security}"
            );
            std::fs::write(dir.join("mosquitto.conf"), conf).expect("write");
            let mut child = Command::new(mosquitto)
                .arg("-c")
                .arg(dir.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Broker { child, port };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("mosquitto did not start");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- HTTPS file server

/// How the file server misbehaves for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Serve it properly.
    Normal,
    /// The first response is cut after this many bytes; later ones are normal.
    CutOnce(usize),
    /// Send the headers and a few bytes, then nothing.
    Stall,
}

struct Served {
    bytes: Arc<Vec<u8>>,
    mode: Serve,
    requests: usize,
}

pub struct FileServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    files: Files,
    /// Every request: (path, Range header).
    pub log: RequestLog,
    thread: Option<JoinHandle<()>>,
}

fn server_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let issued = pki.issue("gateway-https", true);
    let chain = vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem")];
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    Arc::new(config)
}

impl FileServer {
    pub fn start(pki: &Pki) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let files: Files = Arc::default();
        let log: RequestLog = Arc::default();
        let config = server_config(pki);
        let thread = {
            let (stop, files, log) = (stop.clone(), files.clone(), log.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (stop, files, log, config) =
                        (stop.clone(), files.clone(), log.clone(), config.clone());
                    std::thread::spawn(move || {
                        let _ = handle(stream, config, &files, &log, &stop);
                    });
                }
            })
        };
        FileServer {
            port,
            stop,
            files,
            log,
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Serves `bytes` at `/fw/{name}`; returns the URL.
    pub fn put(&self, name: &str, bytes: Vec<u8>, mode: Serve) -> String {
        self.files.lock().expect("lock").insert(
            name.to_string(),
            Served {
                bytes: Arc::new(bytes),
                mode,
                requests: 0,
            },
        );
        format!("{}/fw/{name}", self.base_url())
    }

    pub fn ranges(&self) -> Vec<Option<String>> {
        self.log
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &Mutex<HashMap<String, Served>>,
    log: &Mutex<Vec<(String, Option<String>)>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    drop(reader);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    log.lock()
        .expect("lock")
        .push((path.clone(), range.clone()));
    let name = path.strip_prefix("/fw/").unwrap_or("");
    let found = {
        let mut files = files.lock().expect("lock");
        files.get_mut(name).map(|f| {
            f.requests += 1;
            (f.bytes.clone(), f.mode, f.requests)
        })
    };
    let Some((bytes, mode, nth)) = found else {
        tls.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        tls.flush()?;
        return Ok(());
    };
    let total = bytes.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let head = match start {
        Some(s) if s >= total => {
            tls.write_all(
                format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )?;
            tls.flush()?;
            return Ok(());
        }
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{total}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            total - 1,
            total - s
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"),
    };
    let start = start.unwrap_or(0);
    tls.write_all(head.as_bytes())?;
    let body = &bytes[start..];
    match mode {
        Serve::CutOnce(n) if nth == 1 => {
            tls.write_all(&body[..n.min(body.len())])?;
            tls.flush()?;
            // Cut the connection without a TLS close_notify, as a lost link would.
            let _ = tls.sock.shutdown(NetShutdown::Both);
            return Ok(());
        }
        Serve::Stall => {
            tls.write_all(&body[..16.min(body.len())])?;
            tls.flush()?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        _ => {
            for chunk in body.chunks(16 * 1024) {
                tls.write_all(chunk)?;
            }
        }
    }
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

// ---------------------------------------------------------------- gateway MQTT client

pub struct Gateway {
    client: rumqttc::Client,
    statuses: Reports,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn client_tls(pki: &Pki, cn: &str) -> Arc<rustls::ClientConfig> {
    let issued = pki.issue(cn, false);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("pem"))
        .expect("root");
    let chain = vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem")];
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client config"),
    )
}

impl Gateway {
    pub fn connect(pki: &Pki, port: u16, tls: bool) -> Gateway {
        let mut options = rumqttc::MqttOptions::new("gateway", "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        if tls {
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(client_tls(pki, "gateway")),
            ));
        }
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let statuses: Reports = Arc::default();
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (client, statuses, acks, stop, connected) = (
                client.clone(),
                statuses.clone(),
                acks.clone(),
                stop.clone(),
                connected.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match connection.recv_timeout(Duration::from_millis(200)) {
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => {
                            let _ =
                                client.try_subscribe(topics::ALL_STATUS, rumqttc::QoS::AtLeastOnce);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => {
                            *connected.0.lock().expect("lock") = true;
                            connected.1.notify_all();
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => {
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                            if let (Some((id, "status")), Ok(status)) =
                                (topics::parse(&p.topic), DeviceStatus::from_json(&p.payload))
                            {
                                statuses
                                    .0
                                    .lock()
                                    .expect("lock")
                                    .push((id.to_string(), status));
                                statuses.1.notify_all();
                            }
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(200)),
                        Err(rumqttc::RecvTimeoutError::Timeout) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        let guard = connected.0.lock().expect("lock");
        let (guard, _) = connected
            .1
            .wait_timeout_while(guard, Duration::from_secs(10), |c| !*c)
            .expect("wait");
        assert!(*guard, "test gateway did not connect to mosquitto");
        drop(guard);
        Gateway {
            client,
            statuses,
            acks,
            stop,
            thread: Some(thread),
        }
    }

    /// Publishes a retained notice and waits until the broker acknowledged it.
    pub fn notify(&self, device: &str, payload: &[u8]) {
        let before = self.acks.load(Ordering::SeqCst);
        self.client
            .publish(
                topics::notice(device),
                rumqttc::QoS::AtLeastOnce,
                true,
                payload.to_vec(),
            )
            .expect("publish");
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.acks.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "broker did not acknowledge the notice"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every status report of `device` so far.
    pub fn statuses(&self, device: &str) -> Vec<DeviceStatus> {
        self.statuses
            .0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(id, _)| id == device)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Waits for a report of `device` (after the first `skip` ones) that satisfies `pred`.
    pub fn wait_for(
        &self,
        device: &str,
        skip: usize,
        what: &str,
        pred: impl Fn(&DeviceStatus) -> bool,
    ) -> DeviceStatus {
        let deadline = Instant::now() + WAIT;
        let mut guard = self.statuses.0.lock().expect("lock");
        loop {
            if let Some(found) = guard
                .iter()
                .filter(|(id, _)| id == device)
                .skip(skip)
                .map(|(_, s)| s)
                .find(|s| pred(s))
            {
                return found.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<_> = guard.iter().filter(|(id, _)| id == device).collect();
                panic!("{device}: no {what} report within {WAIT:?}; saw {seen:#?}");
            }
            guard = self
                .statuses
                .1
                .wait_timeout(guard, deadline - now)
                .expect("wait")
                .0;
        }
    }

    pub fn wait_state(&self, device: &str, skip: usize, state: UpdateState) -> DeviceStatus {
        self.wait_for(device, skip, &format!("{state:?}"), |s| s.state == state)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- vendor and releases

pub struct Vendor {
    pub root: SigningKey,
    release: SigningKey,
    cert: Vec<u8>,
}

impl Vendor {
    pub fn new(seed: u8) -> Vendor {
        let root = SigningKey::from_bytes(&[seed; 32]);
        let release = SigningKey::from_bytes(&[seed.wrapping_add(100); 32]);
        let cert = KeyCertificate {
            role: Role::Release,
            public_key: release.verifying_key().to_bytes(),
            generation: 1,
            not_before: 0,
            not_after: u64::MAX,
            vendor: "acme".into(),
        }
        .issue(&root);
        Vendor {
            root,
            release,
            cert,
        }
    }

    pub fn key_hex(&self) -> String {
        hex::encode(self.root.verifying_key().to_bytes())
    }

    pub fn manifest(&self, image: &[u8], version: &str, security_version: u64) -> Manifest {
        Manifest {
            vendor: "acme".into(),
            vendor_key: self.root.verifying_key().to_bytes(),
            model: MODEL.into(),
            hardware: vec![HARDWARE.into()],
            version: version.parse().expect("version"),
            security_version,
            size: image.len() as u64,
            sha256: Sha256::digest(image).into(),
            cid: "bafkreitest".into(),
            issued: now() - 60,
            expires: None,
            prerequisite: None,
            notes: None,
        }
    }

    pub fn sign(&self, manifest: &Manifest) -> Vec<u8> {
        manifest.sign(&self.release, &self.cert)
    }
}

/// A deterministic image of `len` bytes, different for every `tag`.
pub fn image(tag: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block: [u8; 32] = Sha256::digest(tag.as_bytes()).into();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out.truncate(len);
    out
}

/// An image whose self-check fails.
pub fn bad_image(tag: &str, len: usize) -> Vec<u8> {
    let mut out = image(tag, len);
    let marker = fwledger_device::SELF_CHECK_FAIL_MARKER;
    let at = len / 2;
    out[at..at + marker.len()].copy_from_slice(marker);
    out
}

// ---------------------------------------------------------------- the world

pub struct World {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub files: FileServer,
    pub gateway: Gateway,
    pub vendor: Vendor,
    pub mqtt_tls: bool,
    // Dropped last: the broker outlives its clients.
    pub broker: Broker,
}

impl World {
    pub fn new() -> World {
        World::start(true)
    }

    /// MQTT without TLS on loopback (the zero-setup demo); downloads stay HTTPS.
    pub fn plain_mqtt() -> World {
        World::start(false)
    }

    fn start(mqtt_tls: bool) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new();
        let broker = Broker::start(&pki, &dir.path().join("broker"), mqtt_tls);
        let files = FileServer::start(&pki);
        let gateway = Gateway::connect(&pki, broker.port, mqtt_tls);
        World {
            dir,
            pki,
            files,
            gateway,
            vendor: Vendor::new(7),
            mqtt_tls,
            broker,
        }
    }

    pub fn bundle(&self, id: &str) -> Bundle {
        let issued = self.pki.issue(id, false);
        Bundle {
            format: BUNDLE_FORMAT,
            device_id: id.into(),
            mac: "02:00:00:00:00:01".into(),
            model: MODEL.into(),
            hardware: HARDWARE.into(),
            mqtt_url: format!(
                "{}://127.0.0.1:{}",
                if self.mqtt_tls { "mqtts" } else { "mqtt" },
                self.broker.port
            ),
            http_url: self.files.base_url(),
            sntp: None,
            ca_cert_pem: self.pki.ca_pem(),
            device_cert_pem: issued.cert_pem,
            device_key_pem: issued.key_pem,
            vendors: vec![TrustedVendor {
                name: "acme".into(),
                key: self.vendor.key_hex(),
            }],
            wifi_ssid: None,
            wifi_password: None,
        }
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("devices").join(id)
    }

    pub fn config(&self, id: &str) -> DeviceConfig {
        let mut config = DeviceConfig::new(self.bundle(id), self.state_dir(id));
        config.read_timeout = Duration::from_secs(5);
        config.settings.retry_after = Duration::from_secs(2);
        config
    }

    /// Serves `image` and returns the notice for a manifest signed by `signer`.
    pub fn notice_for(
        &self,
        manifest: &Manifest,
        signer: &Vendor,
        image: Vec<u8>,
        mode: Serve,
    ) -> Vec<u8> {
        let name = hex::encode(Sha256::digest(&image));
        let url = self.files.put(&name, image, mode);
        Notice {
            manifest: signer.sign(manifest),
            url,
            gateway_time: Some(now()),
        }
        .to_cbor()
    }

    /// A properly signed release of `image`.
    pub fn release(&self, image: &[u8], version: &str, security_version: u64) -> Vec<u8> {
        let manifest = self.vendor.manifest(image, version, security_version);
        self.notice_for(&manifest, &self.vendor, image.to_vec(), Serve::Normal)
    }

    pub fn spawn(&self, config: DeviceConfig) -> DeviceThread {
        let shutdown = Shutdown::new();
        let handle = host::spawn(config, shutdown.clone()).expect("spawn device");
        DeviceThread {
            shutdown,
            handle: Some(handle),
        }
    }

    /// Runs `fwledger-device` as a process (for power-loss tests).
    pub fn process(&self, id: &str, crash_at: Option<FaultPoint>) -> DeviceProcess {
        let bundle_path = self.dir.path().join(format!("{id}.bundle.json"));
        if !bundle_path.exists() {
            std::fs::write(&bundle_path, self.bundle(id).to_json()).expect("bundle");
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_fwledger-device"));
        command
            .arg("--bundle")
            .arg(&bundle_path)
            .arg("--state")
            .arg(self.state_dir(id))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match crash_at {
            Some(point) => command.env(host::CRASH_ENV, point.name()),
            None => command.env_remove(host::CRASH_ENV),
        };
        DeviceProcess(command.spawn().expect("start fwledger-device"))
    }

    /// The boot record of a device.
    pub fn record(&self, id: &str) -> BootRecord {
        let bytes = std::fs::read(self.state_dir(id).join(host::BOOT_RECORD)).expect("boot.json");
        serde_json::from_slice(&bytes).expect("boot record")
    }

    /// What the next boot would start (the pending slot, else the active one) is a complete,
    /// verified image.
    pub fn assert_bootable(&self, id: &str) -> String {
        let record = self.record(id);
        let slot = record.pending.unwrap_or(record.active);
        let info = record
            .slot(slot)
            .expect("the boot slot has an image record")
            .clone();
        let mut slots = FileSlots::open(&self.state_dir(id)).expect("slots");
        image_self_check(&mut slots, slot, &info, None)
            .unwrap_or_else(|e| panic!("{id}: the next boot would run an unverified image: {e}"));
        let _ = slots.len(slot);
        info.version
    }
}

pub struct DeviceThread {
    shutdown: Shutdown,
    handle: Option<JoinHandle<Result<(), host::DeviceError>>>,
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(h) = self.handle.take() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() && !std::thread::panicking() {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => panic!("device failed: {e}"),
                    Err(_) => panic!("device thread panicked"),
                }
            }
        }
    }
}

pub struct DeviceProcess(pub Child);

impl DeviceProcess {
    /// Waits for the process to end by itself (a simulated power loss); returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "device process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DeviceProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads a whole file (for slot comparisons).
pub fn read(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut out))
        .expect("read");
    out
}
