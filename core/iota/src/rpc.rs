//! The few GraphQL operations the backend sends, over HTTP with bounded timeouts.
//!
//! Every operation is named (`FwlEvents`, `FwlGas`, …) and written against the IOTA GraphQL
//! schema bundled with `iota-sdk` (the simulator validates them against it).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64ct::Encoding;
use iota_sdk::types::{Address, ObjectDigest, ObjectId, ObjectReference, Transaction, Version};
use serde_json::{json, Value};

use crate::IotaError;

/// `events` by sender and type, with the carrying transaction of each.
pub const EVENTS_QUERY: &str =
    "query FwlEvents($filter: EventFilter!, $after: String, $first: Int) {
  events(filter: $filter, after: $after, first: $first) {
    pageInfo { hasNextPage endCursor }
    nodes { transactionBlock { digest bcsUnsigned } }
  }
}";

/// The reference gas price and an address's IOTA coins.
pub const GAS_QUERY: &str = "query FwlGas($owner: IotaAddress!) {
  epoch { referenceGasPrice }
  address(address: $owner) {
    coins(first: 50) { nodes { address version digest coinBalance } }
  }
}";

/// A dry run of a transaction: its cost, or why it would fail.
pub const DRY_RUN_QUERY: &str = "query FwlDryRun($txBytes: String!) {
  dryRunTransactionBlock(txBytes: $txBytes) {
    error
    transaction {
      effects {
        status
        gasEffects { gasSummary { computationCost storageCost storageRebate nonRefundableStorageFee } }
      }
    }
  }
}";

/// Executes a signed transaction.
pub const EXECUTE_MUTATION: &str =
    "mutation FwlExecute($txBytes: String!, $signatures: [String!]!) {
  executeTransactionBlock(txBytes: $txBytes, signatures: $signatures) {
    errors
    effects { status transactionBlock { digest } }
  }
}";

/// The chain identifier (a liveness probe).
pub const CHAIN_QUERY: &str = "query FwlChain { chainIdentifier }";

/// Every operation the backend sends, for schema checks.
pub const ALL_OPERATIONS: [&str; 5] = [
    EVENTS_QUERY,
    GAS_QUERY,
    DRY_RUN_QUERY,
    EXECUTE_MUTATION,
    CHAIN_QUERY,
];

/// Timeouts of GraphQL requests.
#[derive(Debug, Clone, Copy)]
pub struct RpcTimeouts {
    /// TCP/TLS connect.
    pub connect: Duration,
    /// A whole request, answer included (execution waits for finality, so this is generous).
    pub request: Duration,
}

impl Default for RpcTimeouts {
    fn default() -> Self {
        RpcTimeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
        }
    }
}

/// A page of carrying transactions.
#[derive(Debug)]
pub struct EventPage {
    /// `(digest, transaction)` in chain order.
    pub transactions: Vec<(String, Result<Transaction, String>)>,
    /// Cursor after the last node, if any.
    pub end_cursor: Option<String>,
    /// More pages follow.
    pub has_next_page: bool,
}

/// Gas costs of a transaction, in nanos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GasSummary {
    /// Computation.
    pub computation: u64,
    /// Storage of new objects.
    pub storage: u64,
    /// Refund for storage freed.
    pub rebate: u64,
    /// Storage fee that is not refunded.
    pub non_refundable: u64,
}

/// A GraphQL endpoint.
#[derive(Clone)]
pub struct Rpc {
    endpoint: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rpc({})", self.endpoint)
    }
}

/// rustls with ring (the workspace's one provider) and the platform's roots.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, IotaError> {
    let tls = |e: rustls::Error| IotaError::Config(format!("TLS setup: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider)).map_err(tls)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// An HTTP client with the workspace's TLS set-up and the given timeouts.
pub fn http_client(timeouts: RpcTimeouts) -> Result<reqwest::Client, IotaError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .no_proxy()
        .build()
        .map_err(|e| IotaError::Config(format!("HTTP client: {e}")))
}

fn big(value: &Value, what: &str) -> Result<u64, IotaError> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| IotaError::Rpc(format!("{what} is not an unsigned number: {value}")))
}

impl Rpc {
    /// A client for `endpoint`.
    pub fn new(endpoint: &str, timeouts: RpcTimeouts) -> Result<Self, IotaError> {
        Ok(Rpc {
            endpoint: endpoint.to_string(),
            client: http_client(timeouts)?,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one operation; returns its `data`.
    pub async fn run(&self, query: &str, variables: Value) -> Result<Value, IotaError> {
        let name = query
            .split(['(', '{', ' '])
            .nth(1)
            .unwrap_or("")
            .to_string();
        let body = json!({ "query": query, "operationName": name, "variables": variables });
        let response = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                IotaError::Unavailable(format!("IOTA node {} unreachable: {e}", self.endpoint))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            IotaError::Unavailable(format!(
                "IOTA node {}: reading the answer: {e}",
                self.endpoint
            ))
        })?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(IotaError::Unavailable(format!(
                "IOTA node {} answered HTTP {status}",
                self.endpoint
            )));
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
            IotaError::Rpc(format!(
                "IOTA node {} answered HTTP {status} with something that is not GraphQL JSON",
                self.endpoint
            ))
        })?;
        if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
            if !errors.is_empty() {
                let messages: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("(no message)")
                            .to_string()
                    })
                    .collect();
                return Err(IotaError::Rpc(format!("{name}: {}", messages.join("; "))));
            }
        }
        match answer.get("data") {
            Some(data) if !data.is_null() => Ok(data.clone()),
            _ => Err(IotaError::Rpc(format!("{name}: answer has no data"))),
        }
    }

    /// One page of events of `event_type` sent by `sender`, after `cursor`.
    pub async fn events(
        &self,
        sender: &Address,
        event_type: &str,
        after: Option<&str>,
        first: u32,
    ) -> Result<EventPage, IotaError> {
        let data = self
            .run(
                EVENTS_QUERY,
                json!({
                    "filter": { "sender": sender.to_string(), "eventType": event_type },
                    "after": after,
                    "first": first,
                }),
            )
            .await?;
        let events = &data["events"];
        let nodes = events["nodes"]
            .as_array()
            .ok_or_else(|| IotaError::Rpc("FwlEvents: no nodes".into()))?;
        let mut transactions = Vec::with_capacity(nodes.len());
        for node in nodes {
            let block = &node["transactionBlock"];
            let digest = block["digest"]
                .as_str()
                .unwrap_or("(no digest)")
                .to_string();
            let tx = block["bcsUnsigned"]
                .as_str()
                .ok_or_else(|| "no bcsUnsigned".to_string())
                .and_then(|b| {
                    base64ct::Base64::decode_vec(b).map_err(|e| format!("bad base64: {e}"))
                })
                .and_then(|bytes| {
                    bcs::from_bytes::<Transaction>(&bytes)
                        .map_err(|e| format!("not a transaction: {e}"))
                });
            transactions.push((digest, tx));
        }
        Ok(EventPage {
            transactions,
            end_cursor: events["pageInfo"]["endCursor"].as_str().map(str::to_string),
            has_next_page: events["pageInfo"]["hasNextPage"].as_bool().unwrap_or(false),
        })
    }

    /// The reference gas price and `owner`'s IOTA coins (`(reference, balance)`).
    pub async fn gas(
        &self,
        owner: &Address,
    ) -> Result<(u64, Vec<(ObjectReference, u64)>), IotaError> {
        let data = self
            .run(GAS_QUERY, json!({ "owner": owner.to_string() }))
            .await?;
        let price = big(&data["epoch"]["referenceGasPrice"], "referenceGasPrice")?;
        let mut coins = Vec::new();
        if let Some(nodes) = data["address"]["coins"]["nodes"].as_array() {
            for node in nodes {
                let bad = || IotaError::Rpc(format!("FwlGas: malformed coin {node}"));
                let object_id = node["address"]
                    .as_str()
                    .and_then(|s| ObjectId::from_str(s).ok())
                    .ok_or_else(bad)?;
                let version = node["version"].as_u64().ok_or_else(bad)?;
                let digest = node["digest"]
                    .as_str()
                    .and_then(|s| ObjectDigest::from_str(s).ok())
                    .ok_or_else(bad)?;
                let balance = big(&node["coinBalance"], "coinBalance")?;
                coins.push((
                    ObjectReference {
                        object_id,
                        version: Version::from_u64(version),
                        digest,
                    },
                    balance,
                ));
            }
        }
        Ok((price, coins))
    }

    /// Dry-runs a transaction: its gas costs, or the error it would fail with.
    pub async fn dry_run(&self, tx: &Transaction) -> Result<GasSummary, IotaError> {
        let data = self
            .run(DRY_RUN_QUERY, json!({ "txBytes": tx_base64(tx)? }))
            .await?;
        let result = &data["dryRunTransactionBlock"];
        if let Some(error) = result["error"].as_str() {
            return Err(IotaError::Execution(format!("dry run failed: {error}")));
        }
        let effects = &result["transaction"]["effects"];
        if effects["status"].as_str() != Some("SUCCESS") {
            return Err(IotaError::Execution(format!(
                "dry run failed with status {}",
                effects["status"]
            )));
        }
        let summary = &effects["gasEffects"]["gasSummary"];
        Ok(GasSummary {
            computation: big(&summary["computationCost"], "computationCost")?,
            storage: big(&summary["storageCost"], "storageCost")?,
            rebate: big(&summary["storageRebate"], "storageRebate")?,
            non_refundable: big(
                &summary["nonRefundableStorageFee"],
                "nonRefundableStorageFee",
            )
            .unwrap_or(0),
        })
    }

    /// Executes a signed transaction and waits for finality; returns its digest.
    pub async fn execute(
        &self,
        tx: &Transaction,
        signatures: &[iota_sdk::types::UserSignature],
    ) -> Result<String, IotaError> {
        let signatures: Vec<String> = signatures.iter().map(|s| s.to_base64()).collect();
        let data = self
            .run(
                EXECUTE_MUTATION,
                json!({ "txBytes": tx_base64(tx)?, "signatures": signatures }),
            )
            .await?;
        let result = &data["executeTransactionBlock"];
        if let Some(errors) = result["errors"].as_array() {
            if !errors.is_empty() {
                let errors: Vec<String> = errors
                    .iter()
                    .map(|e| e.as_str().unwrap_or("?").to_string())
                    .collect();
                return Err(IotaError::Execution(errors.join("; ")));
            }
        }
        let effects = &result["effects"];
        if effects["status"].as_str() != Some("SUCCESS") {
            return Err(IotaError::Execution(format!(
                "transaction failed with status {}",
                effects["status"]
            )));
        }
        effects["transactionBlock"]["digest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| IotaError::Rpc("FwlExecute: no digest in the effects".into()))
    }

    /// The chain identifier.
    pub async fn chain_identifier(&self) -> Result<String, IotaError> {
        let data = self.run(CHAIN_QUERY, json!({})).await?;
        data["chainIdentifier"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| IotaError::Rpc("FwlChain: no chainIdentifier".into()))
    }
}

/// A transaction as GraphQL `txBytes`: BCS, then base64.
pub fn tx_base64(tx: &Transaction) -> Result<String, IotaError> {
    let bytes = bcs::to_bytes(tx)
        .map_err(|e| IotaError::Rpc(format!("cannot encode the transaction: {e}")))?;
    Ok(base64ct::Base64::encode_string(&bytes))
}
