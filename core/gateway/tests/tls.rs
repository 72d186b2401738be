//! The gateway's TLS endpoints as a scanner sees them, probed with `openssl s_client` on
//! 127.0.0.1: the HTTPS server (downloads, web UI) and the mosquitto MQTT listener with the
//! generated configuration. TLS 1.0 and 1.1 are refused, 1.2 and 1.3 accepted; no RSA key
//! exchange and no CBC suites are offered; the certificate chain verifies against the gateway CA.
//! (`scripts/tls_scan.sh` runs sslscan against the same endpoints.)

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{require_mosquitto, World};
use fwledger_gateway::broker::Broker;
use fwledger_gateway::http::{router, HttpServer, HttpState};
use fwledger_gateway::metrics::GatewayMetrics;

/// One handshake; returns the negotiated protocol and cipher, or `None` if refused.
fn handshake(
    port: u16,
    ca: &Path,
    extra: &[&str],
    client: Option<(&Path, &Path)>,
) -> Option<(String, String)> {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_return_error", "-brief"])
        .args(extra);
    if let Some((cert, key)) = client {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs (install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let protocol = field("Protocol version:")?;
    let cipher = field("Ciphersuite:")?;
    assert!(
        text.contains("Verification: OK"),
        "handshake on {port} without a verified chain: {text}"
    );
    Some((protocol, cipher))
}

/// What every gateway TLS endpoint must show.
fn check_endpoint(what: &str, port: u16, ca: &Path, client: Option<(&Path, &Path)>) {
    // Old protocols, with the client's own floor lowered so that the server decides.
    for old in ["-tls1", "-tls1_1"] {
        let got = handshake(port, ca, &[old, "-cipher", "DEFAULT@SECLEVEL=0"], client);
        assert_eq!(got, None, "{what}: {old} accepted");
    }
    let (protocol, _) = handshake(port, ca, &["-tls1_2"], client)
        .unwrap_or_else(|| panic!("{what}: TLS 1.2 refused"));
    assert_eq!(protocol, "TLSv1.2");
    let (protocol, _) = handshake(port, ca, &["-tls1_3"], client)
        .unwrap_or_else(|| panic!("{what}: TLS 1.3 refused"));
    assert_eq!(protocol, "TLSv1.3");
    // Weak TLS 1.2 suites: static RSA key exchange, CBC (with SHA-1 or SHA-2 MACs), no forward
    // secrecy, 3DES/RC4: none may be negotiated.
    for weak in [
        "kRSA",
        "AES128-SHA:AES256-SHA:AES128-SHA256:AES256-SHA256",
        "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA",
        "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384",
        "3DES:RC4:aNULL:eNULL",
    ] {
        let suite = format!("{weak}@SECLEVEL=0");
        let got = handshake(port, ca, &["-tls1_2", "-cipher", &suite], client);
        assert_eq!(got, None, "{what}: weak suite accepted from {weak}");
    }
    // What a default client gets: an AEAD suite with forward secrecy.
    let (_, cipher) = handshake(port, ca, &["-tls1_2"], client).expect("TLS 1.2");
    assert!(
        cipher.starts_with("ECDHE-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")),
        "{what}: TLS 1.2 default suite {cipher}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_mqtt_accept_only_modern_tls() {
    let world = World::new();
    let gateway = world.gateway();
    let paths = gateway.paths().clone();
    let ca = paths.ca_cert();

    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).expect("pem");
    let tls =
        fwledger_gateway::tls::server_config(&read(paths.server_cert()), &read(paths.server_key()))
            .expect("server TLS");
    let state = HttpState {
        home: gateway.home().to_path_buf(),
        registry: gateway.registry().clone(),
        paths: paths.clone(),
        config: Arc::new(gateway.config().clone()),
        metrics: Arc::new(GatewayMetrics::default()),
    };
    let server = HttpServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), tls, router(state))
        .expect("start");
    let port = server.addr().port();
    let https = tokio::task::spawn_blocking({
        let ca = ca.clone();
        move || check_endpoint("HTTPS", port, &ca, None)
    })
    .await;
    server.stop(Duration::from_secs(1)).await;
    if let Err(e) = https {
        std::panic::resume_unwind(e.into_panic());
    }

    require_mosquitto();
    let mut broker = Broker::start(&paths, gateway.config(), None)
        .await
        .expect("mosquitto");
    assert!(broker.is_running());
    let mqtt_port = gateway.config().mqtt_port;
    let mqtt = tokio::task::spawn_blocking({
        let (cert, key) = (paths.client_cert(), paths.client_key());
        move || check_endpoint("MQTT", mqtt_port, &ca, Some((&cert, &key)))
    })
    .await;
    broker.stop().await;
    if let Err(e) = mqtt {
        std::panic::resume_unwind(e.into_panic());
    }
}
