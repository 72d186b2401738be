//! Choosing a content store from a URL-like setting.

use std::path::Path;
use std::sync::Arc;

use crate::{ContentStore, StoreError};

/// Opens the content store that `url` names:
///
/// * `""` or `"embedded"` — an [`EmbeddedStore`](crate::EmbeddedStore) in `home/store`;
/// * `"embedded:PATH"` — an embedded store in `PATH` (relative to `home`).
///
/// Remote backends (`kubo+http://…`, `https://…` gateways) are not built yet and fail with
/// [`StoreError::Unsupported`].
pub fn open(url: &str, home: &Path) -> Result<Arc<dyn ContentStore>, StoreError> {
    let url = url.trim();
    match url.split_once(':') {
        None if url.is_empty() || url == "embedded" => open_embedded(&home.join("store")),
        Some(("embedded", path)) if !path.is_empty() => open_embedded(&home.join(path)),
        _ => Err(StoreError::Unsupported(url.to_owned())),
    }
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
