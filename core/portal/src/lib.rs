//! The fwledger vendor portal (`fwledger vendor serve`): a server-rendered web UI over
//! [`fwledger::Vendor`] to upload a firmware image with its metadata, preview the signed
//! manifest, approve and publish it, watch the channel and its heartbeat, issue subscription
//! tokens, rotate keys, revoke gateways and withdraw releases.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /login`, `POST /login`, `GET /static/style.css` | login (anyone) |
//! | `GET /` | channel history, heartbeat status, revoke buttons |
//! | `GET /upload`, `POST /upload` | upload form; the image streams to `HOME/vendor/uploads` |
//! | `GET /preview/{id}`, `POST /preview/{id}/approve`, `POST /preview/{id}/discard` | manifest preview, publish |
//! | `POST /heartbeat`, `POST /releases/revoke` | append a heartbeat, withdraw a release |
//! | `GET /gateways`, `POST /gateways/token` | readers, subscription tokens |
//! | `GET /keys`, `POST /keys/rotate` | new epoch, reader revocation, new release key |
//! | `POST /logout` | end the session |
//!
//! Every page but the login needs a session ([`fwledger_webauth`]); every `POST` carries the
//! session's CSRF token (for the upload, as the first multipart field, checked before a byte of
//! the image is written). The portal serves plain HTTP, for loopback use or behind a TLS proxy,
//! or HTTPS with rustls when given a certificate and key.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let home = std::path::Path::new("/var/lib/fwledger");
//! let backends = fwledger::Backends::open(home, "embedded", "embedded")?;
//! if let Some(password) = fwledger_portal::ensure_password(home)? {
//!     println!("admin password: {password}");
//! }
//! let router = fwledger_portal::router(home, backends, fwledger_portal::PortalOptions::default())?;
//! let listener = fwledger_portal::bind("127.0.0.1:8444".parse()?)?;
//! fwledger_portal::serve(listener, router, None, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod multipart;
mod pages;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use fwledger::{Backends, PreparedRelease, Vendor, VendorError};
use fwledger_webauth::{Auth, AuthError};

/// Default upload limit: 1 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 1 << 30;
/// A prepared (uploaded, signed, not yet announced) release is forgotten after this long.
pub const PREPARED_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Largest urlencoded form accepted.
const MAX_FORM: usize = 64 * 1024;

/// How the portal behaves.
#[derive(Debug, Clone)]
pub struct PortalOptions {
    /// Largest firmware image accepted, in bytes.
    pub max_upload: u64,
}

impl Default for PortalOptions {
    fn default() -> Self {
        PortalOptions {
            max_upload: DEFAULT_MAX_UPLOAD,
        }
    }
}

/// Why the portal could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortalError {
    /// The administrator password file.
    #[error("portal password: {0}")]
    Auth(#[from] AuthError),
    /// The certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// `HOME/vendor/portal.json`: the administrator's Argon2id password hash (0600).
pub fn password_file(home: &Path) -> PathBuf {
    home.join("vendor").join("portal.json")
}

/// `HOME/vendor/uploads`: images being uploaded.
pub fn uploads_dir(home: &Path) -> PathBuf {
    home.join("vendor").join("uploads")
}

/// Sets a new random administrator password and returns it, to be shown once; every session
/// ends (`fwledger vendor portal-password`).
pub fn reset_password(home: &Path) -> Result<String, AuthError> {
    fwledger_webauth::reset_password(&password_file(home))
}

/// Creates the administrator password if there is none yet (first `vendor serve`) and returns
/// it, to be shown once.
pub fn ensure_password(home: &Path) -> Result<Option<String>, AuthError> {
    if password_file(home).is_file() {
        return Ok(None);
    }
    reset_password(home).map(Some)
}

/// Parses a size such as `1GiB`, `500MiB`, `64k`, `1048576`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// A release signed and stored, waiting for approval.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub prepared: PreparedRelease,
    pub created: Instant,
    pub file_name: String,
    pub upload_ms: u128,
    pub add_ms: u128,
    pub sign_ms: u128,
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct Portal {
    home: PathBuf,
    backends: Backends,
    vendor: Arc<tokio::sync::Mutex<Vendor>>,
    pub auth: Arc<Auth>,
    pub pending: Arc<Mutex<HashMap<String, Pending>>>,
    pub uploads: PathBuf,
    pub max_upload: u64,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").finish_non_exhaustive()
    }
}

impl Portal {
    /// The vendor, reopened from disk under the lock: what `fwledger vendor …` commands changed
    /// meanwhile (tokens, rotations) is seen, and the portal never writes back stale state.
    pub async fn vendor(&self) -> Result<tokio::sync::MutexGuard<'_, Vendor>, VendorError> {
        let mut guard = self.vendor.lock().await;
        *guard = Vendor::open(&self.home, &self.backends)?;
        Ok(guard)
    }

    /// The prepared releases, without the expired ones.
    pub fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.created.elapsed() < PREPARED_LIFETIME);
        pending
    }
}

/// The portal's routes over the vendor in `home`.
pub fn router(
    home: &Path,
    backends: Backends,
    options: PortalOptions,
) -> Result<Router, VendorError> {
    let vendor = Vendor::open(home, &backends)?;
    let portal = Portal {
        home: home.to_path_buf(),
        backends,
        vendor: Arc::new(tokio::sync::Mutex::new(vendor)),
        auth: Auth::new(password_file(home), "fwledger_portal"),
        pending: Arc::new(Mutex::new(HashMap::new())),
        uploads: uploads_dir(home),
        max_upload: options.max_upload,
    };
    let protected = Router::new()
        .route("/", get(pages::history))
        .route("/upload", get(pages::upload_form).post(pages::upload))
        .route("/preview/{id}", get(pages::preview))
        .route("/preview/{id}/approve", post(pages::approve))
        .route("/preview/{id}/discard", post(pages::discard))
        .route("/heartbeat", post(pages::heartbeat))
        .route("/releases/revoke", post(pages::revoke))
        .route("/gateways", get(pages::gateways))
        .route("/gateways/token", post(pages::token))
        .route("/keys", get(pages::keys))
        .route("/keys/rotate", post(pages::rotate))
        .route("/logout", post(pages::logout))
        .route_layer(middleware::from_fn_with_state(
            portal.clone(),
            require_login,
        ));
    Ok(Router::new()
        .merge(protected)
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/style.css", get(pages::stylesheet))
        .layer(middleware::from_fn(fwledger_webauth::security_headers))
        .with_state(portal))
}

/// Lets a request through with a live session; checks the CSRF token of every urlencoded
/// `POST` before its handler runs. The upload (multipart, streamed) checks its own token, sent
/// as the first field.
async fn require_login(State(portal): State<Portal>, request: Request, next: Next) -> Response {
    let Some(session) = portal.auth.session_of(request.headers()) else {
        if request.method() == Method::GET || request.method() == Method::HEAD {
            return Redirect::to("/login").into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
    let mut request = request;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(multipart::boundary)
            .is_some();
        if !(multipart && request.uri().path() == "/upload") {
            let (parts, body) = request.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response()
                }
            };
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
            let token = fields
                .iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if !fwledger_webauth::secrets_equal(token, &session.csrf) {
                return pages::csrf_refused();
            }
            request = Request::from_parts(parts, Body::from(bytes));
        }
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Binds the portal's listening socket (port 0: any free port).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, PortalError> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Serves `router` on `listener` until `shutdown` completes: plain HTTP, or HTTPS with rustls
/// when `tls` is given.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PortalError> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        Some(files) => {
            let read = |p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| PortalError::Tls(format!("{}: {e}", p.display())))
            };
            let config =
                fwledger_gateway::tls::server_config(&read(&files.cert)?, &read(&files.key)?)
                    .map_err(|e| PortalError::Tls(e.to_string()))?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(Duration::from_secs(5)));
            });
            axum_server::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(config),
            )?
            .handle(handle)
            .serve(service)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_parsed() {
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("500 MiB"), Some(500 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("1 parsec"), None);
        assert_eq!(parse_size("GiB"), None);
    }
}
