//! `KuboStore`: a Kubo node's RPC API as a content store.
//!
//! The node is trusted for storage and transport only. Files are read block by block with
//! `block/get` and every block goes through the verified walk ([`FileWalk`]), so a node that
//! returns wrong bytes is caught exactly like a tampered disk; `cat` is never used. `add` sends
//! the import profile's parameters explicitly and the CID Kubo answers with must equal the one
//! computed here ([`cid_of_file`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cid::Cid;
use futures::{stream, StreamExt};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response, Url};
use tokio::task::{spawn_blocking, JoinError};
use tokio_util::io::ReaderStream;

use crate::block::{parse_cid, MAX_BLOCK_SIZE};
use crate::walk::FileWalk;
use crate::{cid_of_file, Added, ContentStore, ContentStream, Profile, StoreError};

/// Largest non-block reply read from Kubo (JSON objects, error messages).
const MAX_REPLY_SIZE: usize = 1024 * 1024;

/// How long [`KuboStore`] waits for a Kubo node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KuboTimeouts {
    /// Establishing the TCP (and TLS) connection to the RPC API.
    pub connect: Duration,
    /// One short request: fetching or checking one block (a block the swarm does not have
    /// ends in [`StoreError::Unavailable`] after this long).
    pub request: Duration,
    /// A long request: adding a file, or pinning one (which may fetch the whole DAG).
    pub transfer: Duration,
}

impl Default for KuboTimeouts {
    fn default() -> Self {
        KuboTimeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
            transfer: Duration::from_secs(60 * 60),
        }
    }
}

impl KuboTimeouts {
    /// These timeouts with `request` (one block) replaced.
    pub fn with_request(mut self, request: Duration) -> Self {
        self.request = request;
        self
    }

    /// These timeouts with `connect` replaced.
    pub fn with_connect(mut self, connect: Duration) -> Self {
        self.connect = connect;
        self
    }

    /// These timeouts with `transfer` (add, pin) replaced.
    pub fn with_transfer(mut self, transfer: Duration) -> Self {
        self.transfer = transfer;
        self
    }
}

/// A content store backed by a Kubo node's RPC API (`http://HOST:PORT`, the node's
/// `Addresses.API`; `https://` for an API behind a TLS proxy).
///
/// Cloning is cheap; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct KuboStore {
    client: Client,
    api: Url,
    timeouts: KuboTimeouts,
}

impl KuboStore {
    /// A store talking to the Kubo RPC API at `base_url` (e.g. `http://127.0.0.1:5001`), with
    /// the default [`KuboTimeouts`]. No request is made yet.
    pub fn new(base_url: &str) -> Result<Self, StoreError> {
        Self::with_timeouts(base_url, KuboTimeouts::default())
    }

    /// Like [`new`](Self::new), with the given timeouts.
    pub fn with_timeouts(base_url: &str, timeouts: KuboTimeouts) -> Result<Self, StoreError> {
        let api = api_url(base_url)?;
        // No client-wide read timeout: Kubo answers `add` and `pin/add` only when done, so
        // each request carries its own total timeout instead.
        let client = http_client(
            &format!("Kubo client for {base_url}"),
            timeouts.connect,
            None,
        )?;
        Ok(KuboStore {
            client,
            api,
            timeouts,
        })
    }

    /// The RPC API's base URL.
    pub fn base_url(&self) -> &str {
        self.api.as_str().trim_end_matches('/')
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> KuboTimeouts {
        self.timeouts
    }

    /// The URL of RPC `command` with `args` as its query string.
    fn endpoint<K: AsRef<str>, V: AsRef<str>>(
        &self,
        command: &str,
        args: &[(K, V)],
    ) -> Result<Url, StoreError> {
        let mut url = self
            .api
            .join(&format!("api/v0/{command}"))
            .map_err(|e| StoreError::Unsupported(format!("{}: {e}", self.api)))?;
        if !args.is_empty() {
            let mut query = url.query_pairs_mut();
            for (k, v) in args {
                query.append_pair(k.as_ref(), v.as_ref());
            }
        }
        Ok(url)
    }

    /// POSTs a command with `args` and no body, returning the successful response.
    async fn call(
        &self,
        command: &str,
        args: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Response, StoreError> {
        let request = self
            .client
            .post(self.endpoint(command, args)?)
            .timeout(timeout);
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        self.check(command, response).await
    }

    /// Passes a 2xx response through; turns anything else into an error carrying Kubo's
    /// `{"Message": …}`.
    async fn check(&self, command: &str, response: Response) -> Result<Response, StoreError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_limited(response, MAX_REPLY_SIZE)
            .await
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("Message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        Err(KuboError {
            command: command.to_owned(),
            status: status.as_u16(),
            message,
        }
        .into())
    }

    fn unreachable(&self, e: &reqwest::Error) -> StoreError {
        let what = if e.is_connect() {
            "cannot connect"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "request failed"
        };
        StoreError::Unavailable(format!("Kubo at {}: {what}: {e}", self.base_url()))
    }

    /// One block, as Kubo sends it (unverified: the walk verifies it), at most
    /// [`MAX_BLOCK_SIZE`] bytes.
    async fn block(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        let arg = cid.to_string();
        let response = self
            .call("block/get", &[("arg", &arg)], self.timeouts.request)
            .await
            .map_err(|e| not_found_as(e, &arg))?;
        match read_limited(response, MAX_BLOCK_SIZE).await {
            Err(ReadError::TooLong) => Err(StoreError::BlockMismatch { cid: arg }),
            Err(ReadError::Http(e)) => Err(self.unreachable(&e)),
            Ok(bytes) => Ok(bytes),
        }
    }

    async fn json_reply(&self, response: Response) -> Result<Vec<u8>, StoreError> {
        match read_limited(response, MAX_REPLY_SIZE).await {
            Ok(bytes) => Ok(bytes),
            Err(ReadError::TooLong) => Err(StoreError::Malformed(format!(
                "Kubo at {}: reply longer than {MAX_REPLY_SIZE} bytes",
                self.base_url()
            ))),
            Err(ReadError::Http(e)) => Err(self.unreachable(&e)),
        }
    }
}

/// Kubo's `add` parameters that reproduce `profile` (Kubo 0.42 takes the profile from repo
/// config only, so each setting the profile fixes is sent explicitly).
pub(crate) fn add_params(profile: Profile) -> Vec<(&'static str, String)> {
    vec![
        ("cid-version", profile.cid_version().to_string()),
        ("raw-leaves", profile.raw_leaves().to_string()),
        ("chunker", format!("size-{}", profile.chunk_size())),
        ("hash", "sha2-256".to_owned()),
        ("max-file-links", profile.max_links().to_string()),
        // directory settings of both profiles (no directory is ever added: kept for fidelity)
        ("max-directory-links", "0".to_owned()),
        ("max-hamt-fanout", "256".to_owned()),
        ("trickle", "false".to_owned()),
        ("inline", "false".to_owned()),
        ("wrap-with-directory", "false".to_owned()),
        ("pin", "true".to_owned()),
        ("progress", "false".to_owned()),
    ]
}

#[async_trait]
impl ContentStore for KuboStore {
    async fn add_file(
        &self,
        path: &Path,
        profile: Profile,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError> {
        // our own CID, computed alongside the upload, is what Kubo's answer must equal
        let expected = {
            let path = path.to_owned();
            spawn_blocking(move || cid_of_file(&path, profile))
        };
        let file = tokio::fs::File::open(path).await?;
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        let tx = Arc::new(tx);
        let counter = Arc::clone(&tx);
        let mut sent = 0u64;
        let body = ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                counter.send_replace(sent);
            }
            chunk
        });
        let part = Part::stream(reqwest::Body::wrap_stream(body))
            .file_name("file")
            .mime_str("application/octet-stream")
            .map_err(|e| StoreError::Unsupported(format!("multipart: {e}")))?;
        let request = self
            .client
            .post(self.endpoint("add", &add_params(profile))?)
            .multipart(Form::new().part("file", part))
            .timeout(self.timeouts.transfer)
            .send();
        tokio::pin!(request);
        let mut reporting = progress.is_some();
        let response = loop {
            tokio::select! {
                response = &mut request => break response,
                changed = rx.changed(), if reporting => match (changed, progress) {
                    (Ok(()), Some(progress)) => progress(*rx.borrow_and_update()),
                    _ => reporting = false,
                },
            }
        };
        let response = response.map_err(|e| self.unreachable(&e))?;
        let response = self.check("add", response).await?;
        let reply = self.json_reply(response).await?;
        let size = *tx.borrow();
        if let Some(progress) = progress {
            progress(size);
        }
        let hash = added_hash(&reply)?;
        let expected = expected.await.map_err(task_failed)??;
        if !same_cid(&hash, &expected) {
            return Err(StoreError::Malformed(format!(
                "kubo computed another CID: {hash} for {profile}, expected {expected}"
            )));
        }
        Ok(Added {
            cid: expected,
            size,
        })
    }

    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError> {
        let root = parse_cid(cid)?;
        let block = self.block(&root).await?;
        let (walk, first) = spawn_blocking(move || FileWalk::start(&root, block, max_size))
            .await
            .map_err(task_failed)??;
        let state = Reading {
            store: self.clone(),
            walk: Some(walk),
            first: Some(first).filter(|b| !b.is_empty()),
        };
        Ok(Box::pin(stream::unfold(state, Reading::next)))
    }

    async fn has(&self, cid: &str) -> Result<bool, StoreError> {
        let parsed = parse_cid(cid)?.to_string();
        // offline: only this node's blockstore is asked, never the swarm
        let args = [("arg", parsed.as_str()), ("offline", "true")];
        match self
            .call("block/stat", &args, self.timeouts.request)
            .await
            .map_err(|e| not_found_as(e, &parsed))
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn pin(&self, cid: &str) -> Result<(), StoreError> {
        let parsed = parse_cid(cid)?.to_string();
        let args = [("arg", parsed.as_str()), ("recursive", "true")];
        let response = self
            .call("pin/add", &args, self.timeouts.transfer)
            .await
            .map_err(|e| not_found_as(e, cid))?;
        self.json_reply(response).await?;
        Ok(())
    }

    async fn get_block(&self, cid: &str) -> Result<Vec<u8>, StoreError> {
        let cid = parse_cid(cid)?;
        let bytes = self.block(&cid).await?;
        spawn_blocking(move || crate::block::verify(&cid, &bytes).map(|()| bytes))
            .await
            .map_err(task_failed)?
    }
}

/// State of a [`ContentStream`] from Kubo: one block is fetched per step, so nothing runs
/// ahead of the consumer.
struct Reading {
    store: KuboStore,
    walk: Option<FileWalk>,
    first: Option<Vec<u8>>,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<Vec<u8>, StoreError>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        // a finished or failed walk is gone: the stream ends after at most one error
        let mut walk = self.walk.take()?;
        loop {
            let cid = walk.next_cid()?;
            let block = match self.store.block(&cid).await {
                Ok(block) => block,
                Err(e) => return Some((Err(e), self)),
            };
            // the walker hashes the block against `cid` before using any of it
            let step = spawn_blocking(move || {
                let content = walk.feed(block);
                (walk, content)
            })
            .await;
            match step {
                Ok((back, Ok(content))) if content.is_empty() => walk = back,
                Ok((back, Ok(content))) => {
                    self.walk = Some(back);
                    return Some((Ok(content), self));
                }
                Ok((_, Err(e))) => return Some((Err(e), self)),
                Err(e) => return Some((Err(task_failed(e)), self)),
            }
        }
    }
}

/// An error reply from Kubo.
#[derive(Debug)]
struct KuboError {
    command: String,
    status: u16,
    message: String,
}

impl From<KuboError> for StoreError {
    fn from(e: KuboError) -> Self {
        StoreError::Unavailable(format!(
            "Kubo {} failed (HTTP {}): {}",
            e.command, e.status, e.message
        ))
    }
}

/// Re-reads a Kubo error: a "not found" message about `cid` becomes [`StoreError::NotFound`].
fn not_found_as(e: StoreError, cid: &str) -> StoreError {
    match e {
        StoreError::Unavailable(message)
            if message.contains("failed (HTTP")
                && (message.contains("not found") || message.contains("could not find")) =>
        {
            StoreError::NotFound {
                cid: cid.to_owned(),
            }
        }
        other => other,
    }
}

/// The `Hash` of the last object in Kubo's newline-delimited `add` reply (`Size` is a string
/// there, and not the file length, so it is not used).
fn added_hash(reply: &[u8]) -> Result<String, StoreError> {
    let mut hash = None;
    for line in reply.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let object: serde_json::Value = serde_json::from_slice(line)
            .map_err(|e| StoreError::Malformed(format!("Kubo add reply: {e}")))?;
        if let Some(message) = object.get("Message").and_then(|m| m.as_str()) {
            return Err(StoreError::Unavailable(format!(
                "Kubo add failed: {message}"
            )));
        }
        if let Some(h) = object.get("Hash").and_then(|h| h.as_str()) {
            hash = Some(h.to_owned());
        }
    }
    hash.ok_or_else(|| StoreError::Unavailable("Kubo add returned no CID".into()))
}

fn same_cid(a: &str, b: &str) -> bool {
    a == b || matches!((Cid::try_from(a), Cid::try_from(b)), (Ok(x), Ok(y)) if x == y)
}

pub(crate) enum ReadError {
    TooLong,
    Http(reqwest::Error),
}

/// Reads a response body, refusing more than `limit` bytes without buffering them.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLong);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLong);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The RPC base URL from `http(s)://HOST:PORT[/]`.
fn api_url(base_url: &str) -> Result<Url, StoreError> {
    let bad = |why: &str| StoreError::Unsupported(format!("Kubo API URL {base_url:?}: {why}"));
    let mut url = Url::parse(base_url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("expected http(s)://HOST:PORT"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// rustls with ring (the workspace's one provider) and the platform's roots, for `https://`.
/// The HTTP client every store of this crate talks through: rustls with the platform verifier,
/// HTTP/1 only, no proxy, `connect` bounded, and (when given) a read timeout between bytes.
/// `what` names the client in the error.
pub(crate) fn http_client(
    what: &str,
    connect: Duration,
    read: Option<Duration>,
) -> Result<Client, StoreError> {
    let builder = Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(connect)
        .no_proxy()
        .http1_only();
    let builder = match read {
        Some(read) => builder.read_timeout(read),
        None => builder,
    };
    builder
        .build()
        .map_err(|e| StoreError::Unsupported(format!("{what}: {e}")))
}

pub(crate) fn tls_config() -> Result<rustls::ClientConfig, StoreError> {
    let tls = |e: rustls::Error| StoreError::Unsupported(format!("TLS setup: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider)).map_err(tls)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A blocking task that did not finish: a panic while decoding hostile data is bad data.
pub(crate) fn task_failed(e: JoinError) -> StoreError {
    if e.is_panic() {
        StoreError::Malformed(format!("decoder failed: {e}"))
    } else {
        StoreError::Unavailable(format!("store task cancelled: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls() {
        let url = |s: &str| api_url(s).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:5001").unwrap(),
            "http://127.0.0.1:5001/"
        );
        assert_eq!(
            url("https://kubo.example/").unwrap(),
            "https://kubo.example/"
        );
        assert!(url("ftp://127.0.0.1:5001").is_err());
        assert!(url("http://127.0.0.1:5001/?x=1").is_err());
        assert!(url("127.0.0.1:5001").is_err());
    }

    #[test]
    fn add_reply_is_read_with_string_sizes() {
        let reply = br#"{"Name":"file","Hash":"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am","Size":"6"}
"#;
        assert_eq!(
            added_hash(reply).unwrap(),
            "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
        );
        assert!(matches!(added_hash(b""), Err(StoreError::Unavailable(_))));
        assert!(matches!(
            added_hash(br#"{"Message":"boom","Code":0,"Type":"error"}"#),
            Err(StoreError::Unavailable(m)) if m.contains("boom")
        ));
    }

    #[test]
    fn kubo_not_found_messages_become_not_found() {
        let e: StoreError = KuboError {
            command: "block/stat".into(),
            status: 500,
            message: "block was not found locally (offline): ipld: could not find bafk".into(),
        }
        .into();
        assert!(matches!(
            not_found_as(e, "bafk"),
            StoreError::NotFound { .. }
        ));
    }

    /// A node that answers with a block other than the one asked for is caught by the walk.
    #[test]
    fn wrong_block_from_node_is_block_mismatch() {
        let good = b"firmware".to_vec();
        let root: Cid = crate::cid_of_reader(&good[..], Profile::UnixfsV1_2025)
            .unwrap()
            .parse()
            .unwrap();
        let err = FileWalk::start(&root, b"malware!".to_vec(), 1024)
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");
        assert!(err.is_bad_data());
    }

    /// Mid-file: the node serves the right root but swaps one leaf for another.
    #[test]
    fn swapped_leaf_from_node_is_block_mismatch() {
        let profile = Profile::UnixfsV0_2015;
        let data: Vec<u8> = (0..profile.chunk_size() as u32 * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut blocks = std::collections::HashMap::new();
        let imported = crate::cid::import(
            &data[..],
            profile,
            |cid, block| {
                blocks.insert(cid, block);
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        let (mut walk, first) =
            FileWalk::start(&imported.root, blocks[&imported.root].clone(), 1 << 30).unwrap();
        assert!(first.is_empty());
        let first_leaf = walk.next_cid().unwrap();
        walk.feed(blocks[&first_leaf].clone()).unwrap();
        // the second leaf asked for, answered with the first leaf's (well-formed) block
        assert_ne!(walk.next_cid().unwrap(), first_leaf);
        let err = walk.feed(blocks[&first_leaf].clone()).unwrap_err();
        assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");
    }
}
