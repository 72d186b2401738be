//! `ClusterStore`: a Kubo store whose pins go through IPFS Cluster, with a replication factor.
//!
//! Adds and reads are the Kubo node's ([`KuboStore`]: the CID is computed here and must match
//! Kubo's, and every block read is verified). Pinning is the cluster's: `POST /pins/{cid}` on
//! its REST API with `replication-min` / `replication-max`, then `GET /pins/{cid}` until enough
//! peers report `pinned`. The cluster peers' Kubo nodes fetch the blocks from the adding node
//! over their (private) swarm, so the CID stays the one `fwledger cid` prints.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{Client, Response, Url};
use serde_json::Value;

use crate::block::parse_cid;
use crate::kubo::{http_client, read_limited, ReadError};
use crate::{Added, ContentStore, ContentStream, KuboStore, Profile, StoreError};

/// Largest reply read from the cluster.
const MAX_REPLY_SIZE: usize = 4 * 1024 * 1024;
/// How often the pin status is asked while waiting for replication.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// The replication factor of a cluster pin: how many cluster peers must (`min`) and may
/// (`max`) pin it. `-1` is every peer; `0` leaves it to the cluster's configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replication {
    /// Peers that must pin the CID before [`ClusterStore::pin`] returns.
    pub min: i32,
    /// Peers that may pin it.
    pub max: i32,
}

impl Replication {
    /// Exactly `n` peers (`-1`: every peer).
    pub fn exactly(n: i32) -> Self {
        Replication { min: n, max: n }
    }

    /// `N`, `MIN-MAX` or `-1`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text == "-1" {
            return Some(Replication::exactly(-1));
        }
        let (min, max) = text.split_once('-').unwrap_or((text, text));
        let (min, max): (i32, i32) = (min.parse().ok()?, max.parse().ok()?);
        (1 <= min && min <= max).then_some(Replication { min, max })
    }
}

/// A [`KuboStore`] whose pins are made through an IPFS Cluster REST API
/// (`kubo+http://KUBO:5001?cluster=http://CLUSTER:9094&replication=2`).
#[derive(Debug, Clone)]
pub struct ClusterStore {
    kubo: KuboStore,
    client: Client,
    api: Url,
    replication: Replication,
}

impl ClusterStore {
    /// A store adding to and reading from `kubo`, pinning through the cluster REST API at
    /// `cluster_api` (`http://HOST:9094`) with `replication`. No request is made yet.
    pub fn new(
        kubo: KuboStore,
        cluster_api: &str,
        replication: Replication,
    ) -> Result<Self, StoreError> {
        let bad =
            |why: &str| StoreError::Unsupported(format!("cluster URL {cluster_api:?}: {why}"));
        let mut api = Url::parse(cluster_api.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(api.scheme(), "http" | "https") || api.host_str().is_none_or(str::is_empty) {
            return Err(bad("expected http(s)://HOST:PORT"));
        }
        if api.query().is_some() || api.fragment().is_some() || !api.username().is_empty() {
            return Err(bad("expected http(s)://HOST:PORT"));
        }
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        let client = http_client(
            &format!("cluster URL {cluster_api:?}"),
            kubo.timeouts().connect,
            None,
        )?;
        Ok(ClusterStore {
            kubo,
            client,
            api,
            replication,
        })
    }

    /// The Kubo store that adds and reads.
    pub fn kubo(&self) -> &KuboStore {
        &self.kubo
    }

    /// The replication factor of new pins.
    pub fn replication(&self) -> Replication {
        self.replication
    }

    /// The peers (cluster peer ids) that report `cid` pinned.
    pub async fn pinned_on(&self, cid: &str) -> Result<Vec<String>, StoreError> {
        let status = self.status(cid).await?;
        Ok(peers_with(&status, "pinned"))
    }

    fn endpoint(&self, path: &str) -> Result<Url, StoreError> {
        self.api
            .join(path)
            .map_err(|e| StoreError::Unsupported(format!("{}: {e}", self.api)))
    }

    fn unreachable(&self, e: &reqwest::Error) -> StoreError {
        let what = if e.is_connect() {
            "cannot connect"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "request failed"
        };
        StoreError::Unavailable(format!(
            "IPFS Cluster at {}: {what}: {e}",
            self.api.as_str().trim_end_matches('/')
        ))
    }

    /// The JSON reply of a successful request; the cluster's `{"message": …}` otherwise.
    async fn reply(&self, what: &str, response: Response) -> Result<Value, StoreError> {
        let status = response.status();
        let body = match read_limited(response, MAX_REPLY_SIZE).await {
            Ok(body) => body,
            Err(ReadError::TooLong) => {
                return Err(StoreError::Malformed(format!(
                    "IPFS Cluster {what}: reply longer than {MAX_REPLY_SIZE} bytes"
                )))
            }
            Err(ReadError::Http(e)) => return Err(self.unreachable(&e)),
        };
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let message = value
                .as_ref()
                .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(StoreError::Unavailable(format!(
                "IPFS Cluster {what} failed (HTTP {}): {message}",
                status.as_u16()
            )));
        }
        value
            .ok_or_else(|| StoreError::Malformed(format!("IPFS Cluster {what}: reply is not JSON")))
    }

    async fn status(&self, cid: &str) -> Result<Value, StoreError> {
        let url = self.endpoint(&format!("pins/{cid}"))?;
        let response = self
            .client
            .get(url)
            .timeout(self.kubo.timeouts().request)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.reply("pin status", response).await
    }
}

/// Peers of a `GlobalPinInfo` whose status is `status`.
fn peers_with(info: &Value, status: &str) -> Vec<String> {
    info.get("peer_map")
        .and_then(Value::as_object)
        .map(|peers| {
            peers
                .iter()
                .filter(|(_, p)| p.get("status").and_then(Value::as_str) == Some(status))
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// `peer: error` for each peer of a `GlobalPinInfo` that reports one.
fn peer_errors(info: &Value) -> Vec<String> {
    info.get("peer_map")
        .and_then(Value::as_object)
        .map(|peers| {
            peers
                .iter()
                .filter_map(|(id, p)| {
                    let error = p.get("error").and_then(Value::as_str)?;
                    (!error.is_empty()).then(|| format!("{id}: {error}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl ContentStore for ClusterStore {
    async fn add_file(
        &self,
        path: &Path,
        profile: Profile,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError> {
        self.kubo.add_file(path, profile, progress).await
    }

    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError> {
        self.kubo.get(cid, max_size).await
    }

    async fn has(&self, cid: &str) -> Result<bool, StoreError> {
        self.kubo.has(cid).await
    }

    async fn get_block(&self, cid: &str) -> Result<Vec<u8>, StoreError> {
        self.kubo.get_block(cid).await
    }

    /// Pins `cid` in the cluster with the store's replication factor and waits (up to
    /// [`KuboTimeouts::transfer`](crate::KuboTimeouts::transfer)) until enough peers have it.
    async fn pin(&self, cid: &str) -> Result<(), StoreError> {
        let cid = parse_cid(cid)?.to_string();
        let mut url = self.endpoint(&format!("pins/{cid}"))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("name", "fwledger");
            if self.replication != Replication::default() {
                query.append_pair("replication-min", &self.replication.min.to_string());
                query.append_pair("replication-max", &self.replication.max.to_string());
            }
        }
        let response = self
            .client
            .post(url)
            .timeout(self.kubo.timeouts().request)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let pin = self.reply("pin", response).await?;
        let allocations = pin
            .get("allocations")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        // `min` peers; for "every peer" or the cluster's default, every allocated peer (an
        // empty allocation list means every peer, as the status then lists them all)
        let limit = self.kubo.timeouts().transfer;
        let started = Instant::now();
        loop {
            let status = self.status(&cid).await?;
            let pinned = peers_with(&status, "pinned").len();
            let known = status
                .get("peer_map")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            let wanted = match self.replication.min {
                n if n > 0 => n as usize,
                _ if allocations > 0 => allocations,
                _ => known.max(1),
            };
            if pinned >= wanted {
                return Ok(());
            }
            if started.elapsed() >= limit {
                let errors = peer_errors(&status);
                return Err(StoreError::Unavailable(format!(
                    "IPFS Cluster: {cid} pinned on {pinned} of {wanted} peers after {limit:?}{}",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", errors.join("; "))
                    }
                )));
            }
            tokio::time::sleep(STATUS_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_factors() {
        assert_eq!(Replication::parse("2"), Some(Replication::exactly(2)));
        assert_eq!(
            Replication::parse("1-3"),
            Some(Replication { min: 1, max: 3 })
        );
        assert_eq!(Replication::parse("-1"), Some(Replication::exactly(-1)));
        for bad in ["0", "3-2", "-2", "x", "", "1-", "-1-2"] {
            assert_eq!(Replication::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn pin_status_is_read_per_peer() {
        let info: Value = serde_json::from_str(
            r#"{"cid":"bafk","peer_map":{
                "p1":{"status":"pinned","error":""},
                "p2":{"status":"pin_error","error":"context deadline exceeded"},
                "p3":{"status":"pinning","error":""}}}"#,
        )
        .unwrap();
        assert_eq!(peers_with(&info, "pinned"), ["p1"]);
        assert_eq!(peer_errors(&info), ["p2: context deadline exceeded"]);
        assert!(peers_with(&serde_json::json!({}), "pinned").is_empty());
    }

    #[test]
    fn cluster_urls_are_checked() {
        let kubo = KuboStore::new("http://127.0.0.1:5001").unwrap();
        assert!(ClusterStore::new(
            kubo.clone(),
            "http://127.0.0.1:9094",
            Replication::default()
        )
        .is_ok());
        for bad in [
            "ftp://h:1",
            "http://h:1/?x=1",
            "127.0.0.1:9094",
            "http://u:p@h:1",
        ] {
            assert!(
                ClusterStore::new(kubo.clone(), bad, Replication::default()).is_err(),
                "{bad}"
            );
        }
    }
}
