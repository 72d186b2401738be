//! `kubo+http://HOST:PORT[?OPTIONS]`: the Kubo store URL and its options.
//!
//! | option | meaning |
//! |---|---|
//! | `timeout=DUR` | how long one block may take ([`KuboTimeouts::request`]; `500ms`, `5s`, `2m`) |
//! | `cluster=URL` | also pin through this IPFS Cluster REST API ([`ClusterStore`]) |
//! | `replication=N` or `replication=MIN-MAX` | the cluster pin's replication factor (`-1`: every peer) |

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::cluster::{ClusterStore, Replication};
use crate::{ContentStore, KuboStore, KuboTimeouts, StoreError};

/// Opens `http(s)://HOST:PORT[?OPTIONS]` (a `kubo+` store URL without its prefix).
pub(crate) fn open(api: &str) -> Result<Arc<dyn ContentStore>, StoreError> {
    let (base, options) = parse(api)?;
    let kubo = KuboStore::with_timeouts(&base, options.timeouts)?;
    match options.cluster {
        Some(cluster) => Ok(Arc::new(ClusterStore::new(
            kubo,
            &cluster,
            options.replication,
        )?)),
        None => Ok(Arc::new(kubo)),
    }
}

#[derive(Debug, PartialEq)]
struct Options {
    timeouts: KuboTimeouts,
    cluster: Option<String>,
    replication: Replication,
}

/// Splits the RPC base URL from its options.
fn parse(api: &str) -> Result<(String, Options), StoreError> {
    let bad = |why: String| StoreError::Unsupported(format!("kubo+{api}: {why}"));
    let mut options = Options {
        timeouts: KuboTimeouts::default(),
        cluster: None,
        replication: Replication::default(),
    };
    let Some((base, query)) = api.trim().split_once('?') else {
        return Ok((api.trim().to_owned(), options));
    };
    // parsed on a dummy URL: the query's own rules, percent-decoding included
    let parsed = Url::parse(&format!("http://options.invalid/?{query}"))
        .map_err(|e| bad(format!("options: {e}")))?;
    let mut replication = None;
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "timeout" => {
                let timeout = parse_duration(&value).ok_or_else(|| {
                    bad(format!(
                        "timeout={value:?} is not a duration (500ms, 5s, 2m)"
                    ))
                })?;
                options.timeouts = options.timeouts.with_request(timeout);
            }
            "cluster" => options.cluster = Some(value.into_owned()),
            "replication" => {
                replication = Some(Replication::parse(&value).ok_or_else(|| {
                    bad(format!("replication={value:?}: expected N, MIN-MAX or -1"))
                })?)
            }
            other => {
                return Err(bad(format!(
                    "unknown option {other:?} (known: timeout, cluster, replication)"
                )))
            }
        }
    }
    if let Some(replication) = replication {
        if options.cluster.is_none() {
            return Err(bad("replication needs cluster=URL".into()));
        }
        options.replication = replication;
    }
    Ok((base.to_owned(), options))
}

/// `500ms`, `5s`, `2m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_have_default_options() {
        let (base, options) = parse("http://127.0.0.1:5001").unwrap();
        assert_eq!(base, "http://127.0.0.1:5001");
        assert_eq!(options.timeouts, KuboTimeouts::default());
        assert_eq!(options.cluster, None);
    }

    #[test]
    fn options_are_read() {
        let (base, options) =
            parse("http://127.0.0.1:5001?timeout=5s&cluster=http://127.0.0.1:9094&replication=2-3")
                .unwrap();
        assert_eq!(base, "http://127.0.0.1:5001");
        assert_eq!(options.timeouts.request, Duration::from_secs(5));
        assert_eq!(options.cluster.as_deref(), Some("http://127.0.0.1:9094"));
        assert_eq!(options.replication, Replication { min: 2, max: 3 });
        let (_, options) =
            parse("http://h:1?cluster=http%3A%2F%2Fc%3A9094&replication=-1").unwrap();
        assert_eq!(options.cluster.as_deref(), Some("http://c:9094"));
        assert_eq!(options.replication, Replication { min: -1, max: -1 });
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            "http://h:1?timeout=soon",
            "http://h:1?timeout=0s",
            "http://h:1?replication=2",
            "http://h:1?cluster=http://c:9094&replication=3-2",
            "http://h:1?cluster=http://c:9094&replication=0",
            "http://h:1?cluster=http://c:9094&replication=two",
            "http://h:1?pin=false",
        ] {
            assert!(
                matches!(parse(bad), Err(StoreError::Unsupported(_))),
                "{bad}"
            );
        }
    }
}
