//! The gateway's HTTPS server: image downloads at `/fw/{sha256}` with Range requests, so devices
//! resume interrupted downloads. The web UI, JSON API and metrics add their routes to the same
//! [`router`].
//!
//! Images are immutable (named by their SHA-256, `ETag` = the SHA-256), so the server needs no
//! locking: a repository file exists only once it is complete and verified. Only images of
//! releases in state `verified` are served; a revoked release answers `410 Gone`.

use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::config::{GatewayConfig, GatewayPaths};
use crate::registry::{Registry, ReleaseState};

/// What the routes share.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The fwledger home (`Gateway::open(home)` for set-up actions such as adding a device).
    pub home: PathBuf,
    /// The registry.
    pub registry: Registry,
    /// The gateway's files.
    pub paths: GatewayPaths,
    /// `gateway.json`.
    pub config: Arc<GatewayConfig>,
    /// Counters for `/metrics` (downloads served; the service adds notices and MQTT state).
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
}

/// Every route the gateway serves.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/fw/{sha256}", get(download))
        // ---- merge point for the web UI, JSON API (`/api/`) and metrics (`/metrics`) ----
        .merge(crate::web::routes(state.clone()))
        .with_state(state)
}

/// A parsed `Range` header, resolved against the content size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) range: send everything with 200.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// The range lies beyond the content: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header (`bytes=N-`, `bytes=N-M`, `bytes=-SUFFIX`) against `size`. Other
/// units, several ranges and malformed values are ignored (the whole content is sent), as RFC
/// 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-S: the last S bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial {
                    start: size - suffix.min(size),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial {
                    start,
                    end: size - 1,
                }
            }
        }
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => ByteRange::Full,
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

async fn download(
    State(state): State<HttpState>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !is_sha256_hex(&sha256) {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    let registry = state.registry.clone();
    let lookup = sha256.clone();
    let releases =
        match tokio::task::spawn_blocking(move || registry.releases_by_sha256(&lookup)).await {
            Ok(Ok(releases)) => releases,
            _ => return plain(StatusCode::SERVICE_UNAVAILABLE, "registry unavailable\n"),
        };
    let Some(release) = releases.iter().find(|r| r.state == ReleaseState::Verified) else {
        return if releases.iter().any(|r| r.state == ReleaseState::Revoked) {
            plain(StatusCode::GONE, "release revoked by the vendor\n")
        } else {
            plain(StatusCode::NOT_FOUND, "not found\n")
        };
    };
    let path: PathBuf = state.paths.image(&sha256);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return plain(StatusCode::NOT_FOUND, "not in the repository\n"),
    };
    let size = match file.metadata().await {
        Ok(meta) if meta.len() == release.size => meta.len(),
        _ => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "repository file is damaged\n",
            )
        }
    };
    let etag = format!("\"{sha256}\"");
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if header_str(header::IF_NONE_MATCH).is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    // A Range is honoured only when If-Range (if any) names this content.
    let range_header = match header_str(header::IF_RANGE) {
        Some(tag) if tag.trim() != etag => None,
        _ => header_str(header::RANGE),
    };
    let (status, start, length) = match parse_range(range_header, size) {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [
                    (header::CONTENT_RANGE, format!("bytes */{size}")),
                    (header::ACCEPT_RANGES, "bytes".to_string()),
                ],
            )
                .into_response();
        }
    };
    if size > CACHED_IMAGE_MAX && start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository read failed\n",
        );
    }
    state.metrics.download_served(length);
    // Small images come from one shared in-memory copy: during a rollout thousands of devices
    // download the same image at once, and a file reader (plus its buffer and a blocking-pool
    // read per chunk) for each of them costs the gateway hundreds of MiB (bench/load.sh).
    let body = match cached_image(&sha256, &mut file, size).await {
        Ok(Some(bytes)) => {
            let start = start as usize;
            Body::from(bytes.slice(start..start + length as usize))
        }
        Ok(None) => Body::from_stream(ReaderStream::with_capacity(file.take(length), 64 * 1024)),
        Err(()) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "repository read failed\n",
            )
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, value(length.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, value(etag));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(format!("bytes {start}-{}/{size}", start + length - 1)),
        );
    }
    response
}

/// A running HTTPS server.
/// Images up to this size are served from memory (the most recently requested one).
const CACHED_IMAGE_MAX: u64 = 16 * 1024 * 1024;

/// The most recently served small image, by SHA-256. Repository files are immutable and named
/// by their SHA-256, so a cached copy never goes stale; the lock also makes concurrent first
/// requests read the file once.
fn image_cache() -> &'static tokio::sync::Mutex<Option<(String, Bytes)>> {
    static CACHE: std::sync::OnceLock<tokio::sync::Mutex<Option<(String, Bytes)>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| tokio::sync::Mutex::new(None))
}

/// The whole image from the cache (reading `file` into it on a miss); `Ok(None)` when it is too
/// large to cache; `Err` when it cannot be read in full.
async fn cached_image(
    sha256: &str,
    file: &mut tokio::fs::File,
    size: u64,
) -> Result<Option<Bytes>, ()> {
    if size > CACHED_IMAGE_MAX {
        return Ok(None);
    }
    let mut cache = image_cache().lock().await;
    if let Some((key, bytes)) = cache.as_ref() {
        if key == sha256 && bytes.len() as u64 == size {
            return Ok(Some(bytes.clone()));
        }
    }
    let mut data = Vec::with_capacity(size as usize);
    match file.take(size).read_to_end(&mut data).await {
        Ok(n) if n as u64 == size => {
            let bytes = Bytes::from(data);
            *cache = Some((sha256.to_string(), bytes.clone()));
            Ok(Some(bytes))
        }
        _ => Err(()),
    }
}

/// A running HTTPS server.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Binds `addr` (port 0: any free port) and serves `router` over TLS.
    pub fn start(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        router: Router,
    ) -> std::io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )?
        .handle(handle.clone())
        .first_request_timeout(Duration::from_secs(30));
        let task =
            tokio::spawn(server.serve(router.into_make_service_with_connect_info::<SocketAddr>()));
        Ok(HttpServer { addr, handle, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets running downloads finish for up to `grace`, then closes.
    pub async fn stop(mut self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), &mut self.task).await;
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // Dropped without `stop`: close at once rather than serve on unattended.
        self.handle.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(
            parse_range(Some("bytes=0-"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=4-"), 10),
            Partial { start: 4, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=4-6"), 10),
            Partial { start: 4, end: 6 }
        );
        assert_eq!(
            parse_range(Some("bytes=4-60"), 10),
            Partial { start: 4, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=10-12"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=6-4"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=x-"), 10), Full);
        assert_eq!(parse_range(Some("bytes=+1-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=-"), 10), Full);
    }

    #[test]
    fn sha256_names() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex("../etc/passwd"));
    }
}
