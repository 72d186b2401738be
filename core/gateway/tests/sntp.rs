//! The SNTP responder on 127.0.0.1, queried over UDP by hand and by a real NTP client (chrony's
//! `chronyd -Q`, which measures the offset and exits without touching the system clock).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwledger_gateway::sntp::{
    NtpTimestamp, Packet, SntpConfig, SntpServer, MODE_CLIENT, MODE_SERVER,
};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

async fn start() -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let server = SntpServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), SntpConfig::default())
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.run(stop.clone().cancelled_owned()));
    (addr, stop, task)
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("client socket")
}

fn request(transmit: NtpTimestamp) -> Packet {
    Packet {
        version: 4,
        mode: MODE_CLIENT,
        poll: 4,
        transmit,
        ..Packet::default()
    }
}

async fn reply_within(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn as_unix(t: NtpTimestamp) -> f64 {
    t.unix_seconds() as f64 + f64::from(t.subsec_nanos()) / 1e9
}

#[tokio::test]
async fn answers_a_client_request_with_the_system_time() {
    let (addr, stop, task) = start().await;
    let socket = client().await;
    let sent = NtpTimestamp::now();
    let before = unix_now();
    socket
        .send_to(&request(sent).encode(), addr)
        .await
        .expect("send");
    let reply = reply_within(&socket, Duration::from_secs(5))
        .await
        .expect("a reply");
    let after = unix_now();
    assert_eq!(reply.len(), 48);
    let reply = Packet::decode(&reply).expect("decode");
    assert_eq!(reply.mode, MODE_SERVER);
    assert_eq!(reply.version, 4);
    assert_eq!(reply.leap, 0);
    assert_eq!(reply.stratum, 1);
    assert_eq!(&reply.reference_id, b"LOCL");
    assert_eq!(
        reply.originate, sent,
        "originate is the client's transmit timestamp"
    );
    assert!(reply.receive <= reply.transmit);
    for t in [reply.receive, reply.transmit] {
        let t = as_unix(t);
        assert!(
            t >= before - 0.001 && t <= after + 0.001,
            "{before} <= {t} <= {after}"
        );
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn malformed_and_non_client_packets_get_no_answer() {
    let (addr, stop, _task) = start().await;
    let socket = client().await;
    let valid = request(NtpTimestamp::now());
    let mut server_mode = valid;
    server_mode.mode = MODE_SERVER;
    let mut version_zero = valid;
    version_zero.version = 0;
    let junk: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0x23; 10],
        valid.encode()[..47].to_vec(),
        server_mode.encode().to_vec(),
        version_zero.encode().to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n................................".to_vec(),
    ];
    for datagram in &junk {
        socket.send_to(datagram, addr).await.expect("send");
    }
    assert_eq!(
        reply_within(&socket, Duration::from_millis(300)).await,
        None,
        "no reply to any of them"
    );
    // Still serving.
    socket.send_to(&valid.encode(), addr).await.expect("send");
    let reply = reply_within(&socket, Duration::from_secs(5))
        .await
        .expect("a reply");
    assert_eq!(
        Packet::decode(&reply).expect("decode").originate,
        valid.transmit
    );
    stop.cancel();
}

#[tokio::test]
async fn serve_binds_and_stops() {
    let stop = CancellationToken::new();
    // Port 0 on loopback, stopped at once: `serve` returns Ok.
    let served = tokio::spawn(fwledger_gateway::sntp::serve(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        stop.clone().cancelled_owned(),
    ));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops")
        .expect("task")
        .expect("served");
}

fn chronyd() -> std::path::PathBuf {
    for candidate in ["/usr/sbin/chronyd", "/usr/bin/chronyd"] {
        if std::path::Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    panic!(
        "this test needs a real NTP client: apt-get install -y chrony (chronyd -Q only measures)"
    );
}

#[tokio::test]
async fn chrony_measures_a_tiny_offset_against_the_gateway() {
    let chronyd = chronyd();
    let (addr, stop, _task) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // -Q: measure once and print, never set the clock. Directives on the command line replace
    // the configuration file; no command port, pid file and state in a temporary directory.
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(chronyd)
            .arg("-Q")
            .args(["-t", "15", "-u", "root"])
            .arg(format!(
                "server 127.0.0.1 port {} iburst maxsamples 1",
                addr.port()
            ))
            .arg("cmdport 0")
            .arg(format!(
                "pidfile {}",
                dir.path().join("chronyd.pid").display()
            ))
            .arg(format!("driftfile {}", dir.path().join("drift").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chronyd finishes")
    .expect("chronyd runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "chronyd failed:\n{text}");
    // "System clock wrong by 0.000031 seconds (ignored)"
    let offset: f64 = text
        .split("wrong by ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in chronyd's output:\n{text}"));
    assert!(
        offset.abs() < 0.5,
        "offset {offset} s against our own clock:\n{text}"
    );
    stop.cancel();
}
