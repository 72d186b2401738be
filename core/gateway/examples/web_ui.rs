//! A running gateway with something to show, for the browser test (`tests/browser/run.sh`) or a
//! look at the web UI by hand:
//!
//! ```text
//! cargo run -p fwledger-gateway --example web_ui -- [HOME]
//! ```
//!
//! Creates (in HOME, default a temporary directory) a vendor `acme` and a gateway subscribed to
//! it, registers `lamp-00`, publishes `lamp 1.1.0` and a heartbeat, starts the gateway (mosquitto
//! on a free loopback port, HTTPS on a free loopback port) and prints one JSON line:
//! `{"url", "user", "password", "api_token", "home", "sntp"}`. Stops on SIGINT, SIGTERM or when
//! stdin closes.

use std::path::PathBuf;
use std::time::Duration;

use fwledger::{Backends, ReleaseSpec, Vendor};
use fwledger_gateway::registry::NewDevice;
use fwledger_gateway::{Gateway, InitOptions, RunOptions};

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn stop_signal() {
    // A plain thread: a blocking stdin read cannot be cancelled, and the process exits anyway.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    let stdin_closed = async {
        let _ = closed_rx.await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = stdin_closed => {}
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp;
    let home: PathBuf = match std::env::args_os().nth(1) {
        Some(home) => home.into(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let backends = Backends::open(&home, "embedded", "embedded")?;
    let mut vendor = Vendor::init(&home, "acme", &backends)?;
    let gateway = Gateway::init(
        &home,
        &InitOptions {
            mqtt_port: Some(free_port()?),
            https_port: Some(free_port()?),
            sntp_port: Some(free_port()?),
            ..InitOptions::default()
        },
    )?;
    let credentials = gateway.reset_admin_password()?;
    gateway.subscribe(&vendor.token(Some("home-hub"))?)?;
    gateway.add_device(&NewDevice {
        id: "lamp-00".into(),
        mac: "24:0a:c4:00:00:01".into(),
        model: "lamp".into(),
        hardware: "rev-b".into(),
    })?;
    let image: Vec<u8> = (0..256 * 1024u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect();
    let image_path = home.join("lamp-1.1.0.bin");
    std::fs::write(&image_path, &image)?;
    let mut spec = ReleaseSpec::new("lamp", &["rev-b"], "1.1.0");
    spec.security_version = 1;
    vendor.publish(&image_path, &spec, None).await?;
    vendor.heartbeat(Duration::from_secs(3600)).await?;

    let mut options = RunOptions::new(backends);
    options.http = Some("127.0.0.1:0".parse()?);
    let running = gateway.start(options).await?;
    let ready = serde_json::json!({
        "url": format!("https://{}", running.http_addr()),
        "user": credentials.user,
        "password": credentials.password,
        "api_token": credentials.api_token,
        "home": home,
        "sntp": running.sntp_addr().map(|a| a.to_string()),
    });
    println!("{ready}");
    stop_signal().await;
    running.stop().await;
    Ok(())
}
