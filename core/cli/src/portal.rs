//! `fwledger vendor serve` and `fwledger vendor portal-password`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fwledger::Backends;
use fwledger_portal::{PortalOptions, TlsFiles};

use crate::util::Failure;

fn message(e: impl std::fmt::Display) -> Failure {
    Failure::Message(e.to_string())
}

/// Serves the vendor portal until Ctrl-C or SIGTERM.
pub async fn serve(
    home: &Path,
    backends: &Backends,
    addr: SocketAddr,
    max_upload: &str,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<(), Failure> {
    let max_upload = fwledger_portal::parse_size(max_upload).ok_or_else(|| {
        message(format!(
            "--max-upload {max_upload:?} is not a size (e.g. 1GiB)"
        ))
    })?;
    if let Some(password) = fwledger_portal::ensure_password(home).map_err(message)? {
        println!("portal administrator: user admin, password {password}");
        println!("(shown only now; `fwledger vendor portal-password` sets a new one)");
    }
    let router = fwledger_portal::router(home, backends.clone(), PortalOptions { max_upload })?;
    let listener = fwledger_portal::bind(addr).map_err(message)?;
    let bound = listener.local_addr().map_err(message)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if tls.is_none() && !bound.ip().is_loopback() {
        eprintln!("warning: serving plain HTTP on {bound}: put a TLS proxy in front or pass --tls-cert/--tls-key");
    }
    println!("vendor portal on {scheme}://{bound}/");
    let tls = tls.map(|(cert, key)| TlsFiles { cert, key });
    fwledger_portal::serve(listener, router, tls, shutdown_signal())
        .await
        .map_err(message)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints a new portal password.
pub fn reset_password(home: &Path) -> Result<(), Failure> {
    let password = fwledger_portal::reset_password(home).map_err(message)?;
    println!("portal administrator: user admin, password {password}");
    println!("(shown only now; every portal session has ended)");
    Ok(())
}
