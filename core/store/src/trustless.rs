//! `TrustlessStore`: any IPFS HTTP gateway that speaks the trustless gateway protocol
//! (<https://specs.ipfs.tech/http-gateways/trustless-gateway/>), as a read-only content store.
//!
//! The gateway is trusted for nothing. A file is read as one CAR stream
//! (`GET /ipfs/{cid}?format=car&dag-scope=entity`, `Accept: application/vnd.ipld.car;
//! version=1; order=dfs; dups=y`) whose blocks are fed one by one to the same verified,
//! size-bounded walk ([`FileWalk`]) the other stores use: each section must carry exactly the
//! block the walk needs next, is hashed against its CID before any of it is used, and links are
//! only ever taken from verified blocks. A gateway that does not answer with a depth-first CAR is
//! read block by block instead (`GET /ipfs/{cid}?format=raw`), as is a block a `dups=n` stream
//! already sent once.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use cid::Cid;
use futures::stream;
use reqwest::header::{HeaderMap, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Client, Response, StatusCode, Url};
use tokio::task::spawn_blocking;

use crate::block::{parse_cid, MAX_BLOCK_SIZE};
use crate::dagcbor::decode_header;
use crate::kubo::{http_client, read_limited, task_failed, ReadError};
use crate::walk::FileWalk;
use crate::{Added, ContentStore, ContentStream, Profile, StoreError};

/// Media type of a single raw block.
pub(crate) const RAW_MEDIA_TYPE: &str = "application/vnd.ipld.raw";
/// Media type of a CAR stream.
pub(crate) const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";
/// What the client asks for: CAR v1, depth-first, duplicates sent again, so blocks arrive in
/// exactly the order the walk needs them and none has to be kept.
const CAR_ACCEPT: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
/// Largest CAR header accepted.
const MAX_HEADER_SIZE: u64 = 1024 * 1024;
/// Largest CAR section accepted: one block plus its CID.
const MAX_SECTION_SIZE: u64 = MAX_BLOCK_SIZE as u64 + 128;
/// Longest error body quoted from a gateway.
const MAX_ERROR_BODY: usize = 4096;

/// How long [`TrustlessStore`] waits for a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayTimeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// Longest silence while a response is expected or streaming: a gateway that sends nothing
    /// for this long has stalled and the read fails with [`StoreError::Unavailable`].
    pub idle: Duration,
    /// The whole of one single-block request (`?format=raw`).
    pub block: Duration,
}

impl Default for GatewayTimeouts {
    fn default() -> Self {
        GatewayTimeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            block: Duration::from_secs(60),
        }
    }
}

impl GatewayTimeouts {
    /// These timeouts with `connect` replaced.
    pub fn with_connect(mut self, connect: Duration) -> Self {
        self.connect = connect;
        self
    }

    /// These timeouts with `idle` (stall detection) replaced.
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// These timeouts with `block` (one raw block request) replaced.
    pub fn with_block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }
}

/// A read-only content store reading from an IPFS trustless HTTP gateway
/// (`https://HOST[:PORT][/PATH]`, or `http://…` on a trusted network — the data is verified
/// either way, TLS only adds privacy).
///
/// Cloning is cheap; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct TrustlessStore {
    client: Client,
    base: Url,
    timeouts: GatewayTimeouts,
    car: bool,
}

impl TrustlessStore {
    /// A store reading from the gateway at `base_url` with the default [`GatewayTimeouts`].
    /// No request is made yet.
    pub fn new(base_url: &str) -> Result<Self, StoreError> {
        Self::with_timeouts(base_url, GatewayTimeouts::default())
    }

    /// Like [`new`](Self::new), with the given timeouts.
    pub fn with_timeouts(base_url: &str, timeouts: GatewayTimeouts) -> Result<Self, StoreError> {
        let base = gateway_url(base_url)?;
        let client = http_client(
            &format!("gateway client for {base_url}"),
            timeouts.connect,
            Some(timeouts.idle),
        )?;
        Ok(TrustlessStore {
            client,
            base,
            timeouts,
            car: true,
        })
    }

    /// This store reading files block by block (`?format=raw` only) when `blocks_only` is
    /// true, instead of one CAR stream per file. Slower (one request per block), but works with
    /// gateways that serve raw blocks only.
    pub fn blocks_only(mut self, blocks_only: bool) -> Self {
        self.car = !blocks_only;
        self
    }

    /// The gateway's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> GatewayTimeouts {
        self.timeouts
    }

    fn url(&self, cid: &Cid, format: &str, extra: &[(&str, &str)]) -> Result<Url, StoreError> {
        let mut url = self
            .base
            .join(&format!("ipfs/{cid}"))
            .map_err(|e| StoreError::Unsupported(format!("{}: {e}", self.base)))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("format", format);
            for (k, v) in extra {
                query.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn unreachable(&self, e: &reqwest::Error) -> StoreError {
        let what = if e.is_connect() {
            "cannot connect"
        } else if e.is_timeout() {
            "timed out (stalled)"
        } else {
            "request failed"
        };
        StoreError::Unavailable(format!("gateway {}: {what}: {e}", self.base_url()))
    }

    /// An unexpected HTTP status, with the start of the gateway's explanation.
    async fn bad_status(&self, what: &str, response: Response) -> StoreError {
        let status = response.status();
        let body = read_limited(response, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        StoreError::Unavailable(format!(
            "gateway {}: {what}: HTTP {status}: {}",
            self.base_url(),
            text.trim()
        ))
    }

    /// One block as the gateway sends it (`?format=raw`), not yet verified, at most
    /// [`MAX_BLOCK_SIZE`] bytes.
    async fn raw_block(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        let response = self
            .client
            .get(self.url(cid, "raw", &[])?)
            .header(ACCEPT, RAW_MEDIA_TYPE)
            .timeout(self.timeouts.block)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(StoreError::NotFound {
                    cid: cid.to_string(),
                })
            }
            _ => return Err(self.bad_status(&format!("block {cid}"), response).await),
        }
        let (media, _) = content_type(response.headers());
        if media != RAW_MEDIA_TYPE {
            return Err(StoreError::Unavailable(format!(
                "gateway {}: block {cid} came as {media:?}, not {RAW_MEDIA_TYPE} \
                 (not a trustless gateway?)",
                self.base_url()
            )));
        }
        match read_limited(response, MAX_BLOCK_SIZE).await {
            Ok(bytes) => Ok(bytes),
            Err(ReadError::TooLong) => Err(StoreError::BlockMismatch {
                cid: cid.to_string(),
            }),
            Err(ReadError::Http(e)) => Err(self.unreachable(&e)),
        }
    }

    /// Asks for the file under `root` as one CAR stream. `Ok(None)`: the gateway will not send
    /// a depth-first CAR v1 (the caller falls back to single blocks).
    async fn car_stream(&self, root: &Cid) -> Result<Option<CarStream>, StoreError> {
        let response = self
            .client
            .get(self.url(root, "car", &[("dag-scope", "entity")])?)
            .header(ACCEPT, CAR_ACCEPT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(StoreError::NotFound {
                    cid: root.to_string(),
                })
            }
            // 400, 406, 501, …: no CAR here; try single blocks
            _ => return Ok(None),
        }
        let (media, params) = content_type(response.headers());
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if media != CAR_MEDIA_TYPE
            || !matches!(param("version"), None | Some("1"))
            || param("order") != Some("dfs")
        {
            return Ok(None);
        }
        let dups = match param("dups") {
            Some("y") => Dups::Sent,
            Some("n") => Dups::NotSent,
            _ => Dups::Unknown,
        };
        let mut body = Body {
            response,
            buf: Vec::new(),
            pos: 0,
            gateway: self.base_url().to_owned(),
        };
        let len = body.varint().await?.ok_or_else(|| body.truncated())?;
        if len == 0 || len > MAX_HEADER_SIZE {
            return Err(StoreError::Malformed(format!(
                "CAR from gateway {}: header length {len} out of range",
                self.base_url()
            )));
        }
        let header = decode_header(&body.take(len as usize).await?)?;
        if header.version != 1 {
            return Err(StoreError::Malformed(format!(
                "CAR from gateway {}: version {} in a response labelled version=1",
                self.base_url(),
                header.version
            )));
        }
        // the roots field is not specified for gateways, so it is not used (the spec says so)
        Ok(Some(CarStream {
            body,
            dups,
            seen: HashSet::new(),
            peeked: None,
            skipped: 0,
        }))
    }
}

#[async_trait]
impl ContentStore for TrustlessStore {
    async fn add_file(
        &self,
        _path: &Path,
        _profile: Profile,
        _progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError> {
        Err(self.read_only())
    }

    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError> {
        let root = parse_cid(cid)?;
        let mut car = if self.car {
            self.car_stream(&root).await?
        } else {
            None
        };
        let block = match car.as_mut() {
            Some(car) => car.block_for(self, &root).await?,
            None => self.raw_block(&root).await?,
        };
        let (walk, first) = spawn_blocking(move || FileWalk::start(&root, block, max_size))
            .await
            .map_err(task_failed)??;
        let state = Reading {
            store: self.clone(),
            walk: Some(walk),
            first: Some(first).filter(|b| !b.is_empty()),
            car,
        };
        Ok(Box::pin(stream::unfold(state, Reading::next)))
    }

    async fn has(&self, cid: &str) -> Result<bool, StoreError> {
        let cid = parse_cid(cid)?;
        let response = self
            .client
            .head(self.url(&cid, "raw", &[])?)
            .header(ACCEPT, RAW_MEDIA_TYPE)
            // the gateway's own blocks only: no retrieval from elsewhere (412 when absent)
            .header(CACHE_CONTROL, "only-if-cached")
            .timeout(self.timeouts.block)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::PRECONDITION_FAILED => Ok(false),
            _ => Err(self.bad_status(&format!("HEAD {cid}"), response).await),
        }
    }

    async fn pin(&self, _cid: &str) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    async fn get_block(&self, cid: &str) -> Result<Vec<u8>, StoreError> {
        let cid = parse_cid(cid)?;
        let bytes = self.raw_block(&cid).await?;
        spawn_blocking(move || crate::block::verify(&cid, &bytes).map(|()| bytes))
            .await
            .map_err(task_failed)?
    }
}

impl TrustlessStore {
    fn read_only(&self) -> StoreError {
        StoreError::ReadOnly {
            store: self.base_url().to_owned(),
            hint: "an HTTP gateway is read-only; add and pin on the vendor's own store \
                   (embedded or kubo+http://) and serve it, e.g. with `fwledger ipfs serve`"
                .into(),
        }
    }
}

/// Whether a CAR response repeats blocks that occur more than once in the DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dups {
    /// `dups=y`: every occurrence is sent, in walk order.
    Sent,
    /// `dups=n`: each block once; later occurrences are fetched as single blocks.
    NotSent,
    /// No `dups` parameter: like `NotSent`, but repeated blocks are tolerated (skipped).
    Unknown,
}

/// A depth-first CAR response being read section by section.
struct CarStream {
    body: Body,
    dups: Dups,
    /// CIDs (as v1) already received, when duplicates are not sent.
    seen: HashSet<Cid>,
    /// A section read ahead that the walk does not need yet.
    peeked: Option<(Cid, Vec<u8>)>,
    /// Bytes of repeated blocks skipped (only with [`Dups::Unknown`]); bounded.
    skipped: u64,
}

impl CarStream {
    /// The bytes for `want` (unverified: the walk verifies them): the next section when it
    /// carries `want`, else — for a block the stream already sent once — a single-block request.
    /// Any other block in the stream is refused.
    async fn block_for(
        &mut self,
        store: &TrustlessStore,
        want: &Cid,
    ) -> Result<Vec<u8>, StoreError> {
        let key = v1(want);
        loop {
            let (cid, bytes) = match self.peeked.take() {
                Some(section) => section,
                None => self.section().await?.ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "gateway {} ended the CAR stream before the file was complete \
                         (truncated CAR; block {want} missing)",
                        store.base_url()
                    ))
                })?,
            };
            let got = v1(&cid);
            if got == key {
                if self.dups != Dups::Sent {
                    self.seen.insert(got);
                }
                return Ok(bytes);
            }
            if self.dups != Dups::Sent && self.seen.contains(&key) {
                // `want` occurs again in the DAG and a dups=n stream does not repeat it
                self.peeked = Some((cid, bytes));
                return store.raw_block(want).await;
            }
            if self.dups == Dups::Unknown && self.seen.contains(&got) {
                self.skipped += bytes.len() as u64;
                if self.skipped > MAX_SKIPPED {
                    return Err(StoreError::Malformed(format!(
                        "gateway {} repeats blocks without end",
                        store.base_url()
                    )));
                }
                continue;
            }
            return Err(StoreError::Malformed(format!(
                "gateway {} sent block {cid} where the file's next block is {want} \
                 (extra, foreign or misordered block in an order=dfs CAR)",
                store.base_url()
            )));
        }
    }

    /// Checks that nothing but (tolerated) repeats follows the file's last block.
    async fn finish(&mut self, store: &TrustlessStore) -> Result<(), StoreError> {
        loop {
            let section = match self.peeked.take() {
                Some(section) => Some(section),
                None => self.section().await?,
            };
            let Some((cid, bytes)) = section else {
                return Ok(());
            };
            if self.dups == Dups::Unknown && self.seen.contains(&v1(&cid)) {
                self.skipped += bytes.len() as u64;
                if self.skipped <= MAX_SKIPPED {
                    continue;
                }
            }
            return Err(StoreError::Malformed(format!(
                "gateway {} sent data after the file's last block (block {cid})",
                store.base_url()
            )));
        }
    }

    /// The next section's CID and bytes, `None` at the clean end of the stream.
    async fn section(&mut self) -> Result<Option<(Cid, Vec<u8>)>, StoreError> {
        let Some(len) = self.body.varint().await? else {
            return Ok(None);
        };
        if len == 0 || len > MAX_SECTION_SIZE {
            return Err(StoreError::Malformed(format!(
                "CAR from gateway {}: section length {len} out of range",
                self.body.gateway
            )));
        }
        let section = self.body.take(len as usize).await?;
        let mut rest: &[u8] = &section;
        let cid = Cid::read_bytes(&mut rest).map_err(|e| {
            StoreError::Malformed(format!(
                "CAR from gateway {}: section CID: {e}",
                self.body.gateway
            ))
        })?;
        let start = section.len() - rest.len();
        let mut bytes = section;
        bytes.drain(..start);
        Ok(Some((cid, bytes)))
    }
}

/// Repeated blocks tolerated from a gateway that does not say whether it repeats them.
const MAX_SKIPPED: u64 = 64 * 1024 * 1024;

fn v1(cid: &Cid) -> Cid {
    cid.into_v1().unwrap_or(*cid)
}

/// A response body read in pieces, with a small buffer.
struct Body {
    response: Response,
    buf: Vec<u8>,
    pos: usize,
    gateway: String,
}

impl Body {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads one more piece of the body; `false` at its end.
    async fn fill(&mut self) -> Result<bool, StoreError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        match self.response.chunk().await {
            Ok(Some(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                let what = if e.is_timeout() {
                    "stalled (no data within the idle timeout)"
                } else {
                    "broke off before its end (truncated CAR)"
                };
                Err(StoreError::Unavailable(format!(
                    "gateway {}: CAR stream {what}: {e}",
                    self.gateway
                )))
            }
        }
    }

    fn truncated(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "gateway {} ended the CAR stream in the middle of a section (truncated CAR)",
            self.gateway
        ))
    }

    /// One varint; `None` at the clean end of the body.
    async fn varint(&mut self) -> Result<Option<u64>, StoreError> {
        loop {
            let available = self.available();
            if let Some(end) = available.iter().take(9).position(|b| b & 0x80 == 0) {
                let mut bytes = &available[..=end];
                let value = crate::varint::read_uvarint(&mut bytes)?;
                self.pos += end + 1;
                return Ok(value);
            }
            if available.len() >= 9 {
                return Err(StoreError::Malformed(format!(
                    "CAR from gateway {}: varint longer than 9 bytes",
                    self.gateway
                )));
            }
            if !self.fill().await? {
                return if self.available().is_empty() {
                    Ok(None)
                } else {
                    Err(self.truncated())
                };
            }
        }
    }

    /// Exactly `n` (already bounded) bytes.
    async fn take(&mut self, n: usize) -> Result<Vec<u8>, StoreError> {
        while self.available().len() < n {
            if !self.fill().await? {
                return Err(self.truncated());
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }
}

/// State of a [`ContentStream`] from a gateway: one block per step, nothing read ahead of the
/// consumer beyond one network buffer.
struct Reading {
    store: TrustlessStore,
    walk: Option<FileWalk>,
    first: Option<Vec<u8>>,
    car: Option<CarStream>,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<Vec<u8>, StoreError>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        // a finished or failed walk is gone: the stream ends after at most one error
        let mut walk = self.walk.take()?;
        loop {
            let Some(cid) = walk.next_cid() else {
                // complete: a CAR must hold nothing more
                let car = self.car.take();
                if let Some(mut car) = car {
                    if let Err(e) = car.finish(&self.store).await {
                        return Some((Err(e), self));
                    }
                }
                return None;
            };
            let block = match self.car.as_mut() {
                Some(car) => car.block_for(&self.store, &cid).await,
                None => self.store.raw_block(&cid).await,
            };
            let block = match block {
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

/// The media type (lower case) and parameters (names lower case, values unquoted) of a
/// response's `Content-Type`.
pub(crate) fn content_type(headers: &HeaderMap) -> (String, Vec<(String, String)>) {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    parse_media_type(value)
}

/// `type/subtype; k=v; …` → (`type/subtype`, [(k, v)]), lower-casing names.
pub(crate) fn parse_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    (media, params)
}

/// The gateway base URL from `http(s)://HOST[:PORT][/PATH]`, ending in `/`.
fn gateway_url(base_url: &str) -> Result<Url, StoreError> {
    let bad = |why: &str| StoreError::Unsupported(format!("gateway URL {base_url:?}: {why}"));
    let mut url = Url::parse(base_url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("expected http(s)://HOST[:PORT][/PATH]"));
    }
    if url.path().split('/').any(|s| s == "ipfs") {
        return Err(bad("give the gateway's base URL, without /ipfs/…"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        let url = |s: &str| gateway_url(s).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            url("https://gw.example/base").unwrap(),
            "https://gw.example/base/"
        );
        assert!(url("ftp://gw.example").is_err());
        assert!(url("https://gw.example/?x=1").is_err());
        assert!(url("https://gw.example/ipfs/").is_err());
        assert!(url("gw.example").is_err());
    }

    #[test]
    fn media_types() {
        let (media, params) =
            parse_media_type("Application/vnd.ipld.car; version=1;order=dfs; dups=\"y\"");
        assert_eq!(media, CAR_MEDIA_TYPE);
        assert_eq!(
            params,
            vec![
                ("version".into(), "1".into()),
                ("order".into(), "dfs".into()),
                ("dups".into(), "y".into())
            ]
        );
        assert_eq!(parse_media_type("").0, "");
    }
}
