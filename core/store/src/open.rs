//! Choosing a content store from a URL-like setting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{ContentStore, StoreError};

/// The directory of the embedded store that `url` names, or `None` if it names another backend:
///
/// * `""` or `"embedded"` — `home/store`;
/// * `"embedded:PATH"` — `PATH` (a relative path is taken from the current directory, as for
///   `sqlite:PATH` ledgers).
pub fn embedded_dir(url: &str, home: &Path) -> Result<Option<PathBuf>, StoreError> {
    let url = url.trim();
    if url.is_empty() || url == "embedded" {
        return Ok(Some(home.join("store")));
    }
    match url.strip_prefix("embedded:") {
        Some("") => Err(StoreError::Unsupported(format!(
            "store URL {url:?} names no directory; expected embedded:PATH"
        ))),
        Some(path) => Ok(Some(std::env::current_dir()?.join(path))),
        None => Ok(None),
    }
}

/// Opens the content store that `url` names:
///
/// * the embedded store (see [`embedded_dir`]);
/// * `kubo+http://HOST:PORT` or `kubo+https://HOST[:PORT]` — a Kubo node's RPC API
///   (`KuboStore`, feature `kubo`); no request is made until the store is used. Options:
///   `?timeout=5s` (one block), `?cluster=http://HOST:9094&replication=N` (pin through IPFS
///   Cluster: `ClusterStore`);
/// * `https://HOST[:PORT][/PATH]` or `http://…` — an IPFS trustless HTTP gateway, read-only
///   (`TrustlessStore`, feature `trustless`); no request is made until the store is used.
///
/// Anything else fails with [`StoreError::Unsupported`].
pub fn open(url: &str, home: &Path) -> Result<Arc<dyn ContentStore>, StoreError> {
    if let Some(api) = kubo_api(url) {
        return open_kubo(api);
    }
    let trimmed = url.trim();
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return open_gateway(trimmed);
    }
    match embedded_dir(url, home)? {
        Some(dir) => open_embedded(&dir),
        None => Err(StoreError::Unsupported(format!(
            "store URL {url:?} is not supported by this build; \
             expected embedded, embedded:PATH, kubo+http://HOST:PORT or https://GATEWAY"
        ))),
    }
}

#[cfg(feature = "trustless")]
fn open_gateway(url: &str) -> Result<Arc<dyn ContentStore>, StoreError> {
    Ok(Arc::new(crate::TrustlessStore::new(url)?))
}

#[cfg(not(feature = "trustless"))]
fn open_gateway(url: &str) -> Result<Arc<dyn ContentStore>, StoreError> {
    Err(StoreError::Unsupported(format!(
        "{url} (built without the `trustless` feature)"
    )))
}

/// The RPC API URL of a `kubo+http(s)://…` store URL.
fn kubo_api(url: &str) -> Option<&str> {
    let api = url.trim().strip_prefix("kubo+")?;
    (api.starts_with("http://") || api.starts_with("https://")).then_some(api)
}

#[cfg(feature = "kubo")]
fn open_kubo(api: &str) -> Result<Arc<dyn ContentStore>, StoreError> {
    // options (`?timeout=`, `?cluster=&replication=`): see `kubo_url`
    crate::kubo_url::open(api)
}

#[cfg(not(feature = "kubo"))]
fn open_kubo(api: &str) -> Result<Arc<dyn ContentStore>, StoreError> {
    Err(StoreError::Unsupported(format!(
        "kubo+{api} (built without the `kubo` feature)"
    )))
}

#[cfg(feature = "embedded")]
fn open_embedded(dir: &Path) -> Result<Arc<dyn ContentStore>, StoreError> {
    Ok(Arc::new(crate::EmbeddedStore::open(dir)?))
}

#[cfg(not(feature = "embedded"))]
fn open_embedded(dir: &Path) -> Result<Arc<dyn ContentStore>, StoreError> {
    Err(StoreError::Unsupported(format!(
        "embedded:{} (built without the `embedded` feature)",
        dir.display()
    )))
}
