//! **SIMULATOR — not an IOTA node.** A loopback GraphQL server (plus an IOTA gas station and
//! faucet) for offline tests of the IOTA backend.
//!
//! No IOTA node can run on a build machine, so the tests talk to this instead. It binds
//! `127.0.0.1:0` only, answers the operations the backend sends (`FwlEvents`, `FwlGas`,
//! `FwlDryRun`, `FwlExecute`, `FwlChain`) in the shapes of the IOTA GraphQL schema bundled with
//! `iota-sdk`, and behaves like a chain where it matters to a ledger: it decodes each executed
//! transaction (BCS), checks its signatures against the sender and the gas owner, checks that
//! the gas coins exist at the versions given and cover the budget, accepts only the three
//! Notarization Move calls, charges gas, bumps coin versions, and serves
//! `LockedNotarizationCreated` events in execution order with opaque cursors.
//!
//! What it does *not* do: run Move, checkpoints, epochs, consensus, real gas metering (costs
//! follow a fixed formula). Behaviour of the real network is covered only by the opt-in live
//! test (`FWLEDGER_IOTA_URL`).
//!
//! It also serves the GraphQL `events` **subscription** on `ws://127.0.0.1:PORT/graphql`
//! (`graphql-transport-ws`), validated against the same schema: events are pushed as
//! transactions execute, `startAfter` (a transaction digest) replays what followed it, and
//! `emittingModule` filters. How a real node serves subscriptions (path, lag behaviour) is
//! not verified here.
//!
//! Knobs for fault tests: [`Simulator::fail_next`] answers the next requests with HTTP 503 (a
//! dropped node), [`Simulator::stop`] closes the port, [`Simulator::drop_subscriptions`] cuts
//! every open subscription, [`Simulator::refuse_subscriptions`] answers upgrades with 503,
//! [`Simulator::set_subscriptions`] turns the subscription off (404, as a node without it),
//! [`Simulator::lag_next`] replaces the next pushed events by one `Lagged` notice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64ct::Encoding;
use iota_sdk::crypto::IotaVerifier;
use iota_sdk::types::{
    Address, Command, ObjectDigest, ObjectId, SimpleSignature, Transaction, TransactionKind,
    UserSignature,
};
use serde_json::{json, Value};

use crate::codec;
use crate::keys::IotaKey;

/// Reference gas price the simulator quotes (nanos per gas unit).
pub const GAS_PRICE: u64 = 1000;
/// Chain identifier the simulator reports.
pub const CHAIN_ID: &str = "f1ed5e11";
/// What one faucet request gives: 10 IOTA.
pub const FAUCET_AMOUNT: u64 = 10_000_000_000;
/// Largest page the simulator serves (as the real service: 50).
pub const MAX_PAGE: usize = 50;

/// Computation cost of one carrying transaction, in nanos.
pub fn computation_cost() -> u64 {
    GAS_PRICE * 1000
}

/// Storage cost of a Notarization carrying `message_len` bytes, in nanos.
pub fn storage_cost(message_len: usize) -> u64 {
    (message_len as u64 + 250) * 7600
}

#[derive(Clone)]
struct Coin {
    owner: Address,
    balance: u64,
    version: u64,
    digest: ObjectDigest,
}

struct EventRecord {
    sender: Address,
    event_type: String,
    digest: String,
    tx_base64: String,
}

struct Chain {
    package: ObjectId,
    coins: HashMap<ObjectId, Coin>,
    events: Vec<EventRecord>,
    next_object: u64,
    fail_next: usize,
    requests: Vec<String>,
    station_key: IotaKey,
    reservations: HashMap<u64, Vec<ObjectId>>,
    next_reservation: u64,
    schema: Option<crate::schema::Schema>,
    subs: Subs,
}

/// Subscription state and knobs.
struct Subs {
    offered: bool,
    refuse: bool,
    lag_next: usize,
    pings: usize,
    pushed: usize,
    lagged: usize,
    start_afters: Vec<Option<String>>,
    /// Bumped when an event is recorded.
    tick: tokio::sync::watch::Sender<u64>,
    /// Bumped to cut every open subscription.
    cut: tokio::sync::watch::Sender<u64>,
}

impl Chain {
    fn new_object_id(&mut self) -> ObjectId {
        self.next_object += 1;
        let mut bytes = [0u8; 32];
        bytes[0] = 0xc0;
        bytes[24..].copy_from_slice(&self.next_object.to_be_bytes());
        ObjectId::new(bytes)
    }

    fn new_digest(&mut self) -> ObjectDigest {
        self.next_object += 1;
        let mut bytes = [0u8; 32];
        bytes[0] = 0xd1;
        bytes[24..].copy_from_slice(&self.next_object.to_be_bytes());
        ObjectDigest::new(bytes)
    }

    fn fund(&mut self, owner: Address, balance: u64) -> ObjectId {
        let id = self.new_object_id();
        let digest = self.new_digest();
        self.coins.insert(
            id,
            Coin {
                owner,
                balance,
                version: 1,
                digest,
            },
        );
        id
    }

    /// Checks a transaction as validators and the Move VM would (for this package); returns
    /// (computation, storage) costs.
    fn check(&self, tx: &Transaction, dry_run: bool) -> Result<(u64, u64), String> {
        let Transaction::V1(v1) = tx else {
            return Err("unsupported transaction version".into());
        };
        let TransactionKind::Programmable(ptb) = &v1.kind else {
            return Err("only programmable transactions are accepted".into());
        };
        for command in &ptb.commands {
            let Command::MoveCall(call) = command else {
                return Err("simulator: only Move calls are supported".into());
            };
            if call.package != self.package {
                return Err(format!(
                    "LINKER_ERROR: package {} does not exist (the simulator only has the \
                     Notarization package {})",
                    call.package, self.package
                ));
            }
            let known = matches!(
                (call.module.as_str(), call.function.as_str()),
                ("notarization", "new_state_from_bytes")
                    | ("timelock", "none")
                    | ("locked_notarization", "create")
            );
            if !known {
                return Err(format!(
                    "FUNCTION_NOT_FOUND: {}::{}::{} (not simulated)",
                    call.package, call.module, call.function
                ));
            }
        }
        let carried = codec::parse_transaction(tx, &self.package)
            .map_err(|e| format!("MoveAbort: not a well-formed notarization: {e}"))?;
        let computation = computation_cost();
        let storage = storage_cost(carried.message.len());
        if v1.gas_payment.price < GAS_PRICE {
            return Err(format!(
                "GasPriceUnderRGP: gas price {} is below the reference gas price {GAS_PRICE}",
                v1.gas_payment.price
            ));
        }
        if dry_run && v1.gas_payment.objects.is_empty() {
            return Ok((computation, storage));
        }
        let mut total = 0u64;
        for reference in &v1.gas_payment.objects {
            let coin = self.coins.get(&reference.object_id).ok_or_else(|| {
                format!(
                    "ObjectNotFound: gas coin {} does not exist",
                    reference.object_id
                )
            })?;
            if coin.version != reference.version.as_u64() || coin.digest != reference.digest {
                return Err(format!(
                    "ObjectVersionUnavailableForConsumption: gas coin {} is at version {}, \
                     the transaction names version {}",
                    reference.object_id,
                    coin.version,
                    reference.version.as_u64()
                ));
            }
            if coin.owner != v1.gas_payment.owner {
                return Err(format!(
                    "IncorrectUserSignature: gas coin {} is not owned by {}",
                    reference.object_id, v1.gas_payment.owner
                ));
            }
            total = total.saturating_add(coin.balance);
        }
        if v1.gas_payment.objects.is_empty() {
            return Err("MissingGasPayment: no gas coins".into());
        }
        if total < v1.gas_payment.budget {
            return Err(format!(
                "GasBalanceTooLow: gas coins hold {total}, the budget is {}",
                v1.gas_payment.budget
            ));
        }
        if !dry_run && v1.gas_payment.budget < computation + storage {
            return Err(format!(
                "InsufficientGas: budget {} is below the cost {}",
                v1.gas_payment.budget,
                computation + storage
            ));
        }
        Ok((computation, storage))
    }

    fn execute(
        &mut self,
        tx: &Transaction,
        signatures: &[UserSignature],
    ) -> Result<String, String> {
        let Transaction::V1(v1) = tx else {
            return Err("unsupported transaction version".into());
        };
        // Every required signer (sender, and the gas owner when sponsored) must have signed.
        let mut signers = Vec::new();
        for signature in signatures {
            iota_sdk::crypto::UserSignatureVerifier::new()
                .verify_transaction(tx, signature)
                .map_err(|e| format!("IncorrectUserSignature: {e}"))?;
            match signature {
                UserSignature::Simple(SimpleSignature::Ed25519 { public_key, .. }) => {
                    signers.push(public_key.derive_address())
                }
                _ => return Err("simulator: only Ed25519 signatures are supported".into()),
            }
        }
        for required in [v1.sender, v1.gas_payment.owner] {
            if !signers.contains(&required) {
                return Err(format!("SignerSignatureAbsent: no signature of {required}"));
            }
        }
        let (computation, storage) = self.check(tx, false)?;
        // Gas coins are smashed into the first one, which pays.
        let mut objects = v1.gas_payment.objects.iter();
        let first = objects.next().map(|r| r.object_id);
        let mut total = 0;
        for reference in objects {
            if let Some(coin) = self.coins.remove(&reference.object_id) {
                total += coin.balance;
            }
        }
        if let Some(first) = first {
            let digest = self.new_digest();
            if let Some(coin) = self.coins.get_mut(&first) {
                coin.balance = coin.balance + total - (computation + storage);
                coin.version += 1;
                coin.digest = digest;
            }
        }
        let digest = tx.digest().to_string();
        let bytes = bcs::to_bytes(tx).map_err(|e| e.to_string())?;
        self.events.push(EventRecord {
            sender: v1.sender,
            event_type: codec::event_type(&self.package),
            digest: digest.clone(),
            tx_base64: base64ct::Base64::encode_string(&bytes),
        });
        self.subs.tick.send_modify(|n| *n += 1);
        Ok(digest)
    }
}

type Shared = Arc<Mutex<Chain>>;

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

fn gql_error(message: impl Into<String>) -> Response {
    Json(json!({ "data": null, "errors": [{ "message": message.into() }] })).into_response()
}

fn decode_tx(value: &Value) -> Result<Transaction, String> {
    let text = value.as_str().ok_or("txBytes is not a string")?;
    let bytes = base64ct::Base64::decode_vec(text).map_err(|e| format!("txBytes: {e}"))?;
    bcs::from_bytes(&bytes).map_err(|e| format!("txBytes is not a Transaction: {e}"))
}

async fn graphql(State(chain): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut chain = lock(&chain);
    let query = body["query"].as_str().unwrap_or("").to_string();
    let name = body["operationName"].as_str().unwrap_or("").to_string();
    chain.requests.push(name.clone());
    if chain.fail_next > 0 {
        chain.fail_next -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
    }
    if let Some(schema) = &chain.schema {
        if let Err(e) = schema.validate(&query) {
            return gql_error(format!("query does not match the IOTA schema: {e}"));
        }
    }
    let vars = &body["variables"];
    let op_of = |q: &str| q.split(['(', '{', ' ']).nth(1).unwrap_or("").to_string();
    match op_of(&query).as_str() {
        "FwlChain" => Json(json!({ "data": { "chainIdentifier": CHAIN_ID } })).into_response(),
        "FwlEvents" => {
            let sender = vars["filter"]["sender"]
                .as_str()
                .and_then(|s| Address::from_str(s).ok());
            let event_type = vars["filter"]["eventType"].as_str().map(str::to_string);
            let start = match vars["after"].as_str() {
                None => 0,
                Some(c) => match c.strip_prefix("ev").and_then(|n| usize::from_str(n).ok()) {
                    Some(n) => n + 1,
                    None => return gql_error(format!("Invalid cursor {c:?}")),
                },
            };
            let first = vars["first"].as_u64().unwrap_or(MAX_PAGE as u64) as usize;
            if first > MAX_PAGE {
                return gql_error(format!("Page size {first} exceeds max {MAX_PAGE}"));
            }
            let matching: Vec<(usize, &EventRecord)> = chain
                .events
                .iter()
                .enumerate()
                .skip(start)
                .filter(|(_, e)| sender.is_none_or(|s| s == e.sender))
                .filter(|(_, e)| event_type.as_deref().is_none_or(|t| t == e.event_type))
                .collect();
            let page: Vec<&(usize, &EventRecord)> = matching.iter().take(first).collect();
            let nodes: Vec<Value> = page
                .iter()
                .map(|(_, e)| {
                    json!({ "transactionBlock": { "digest": e.digest, "bcsUnsigned": e.tx_base64 } })
                })
                .collect();
            let end = page.last().map(|(i, _)| format!("ev{i}"));
            Json(json!({ "data": { "events": {
                "pageInfo": { "hasNextPage": matching.len() > page.len(), "endCursor": end },
                "nodes": nodes,
            } } }))
            .into_response()
        }
        "FwlGas" => {
            let Some(owner) = vars["owner"]
                .as_str()
                .and_then(|s| Address::from_str(s).ok())
            else {
                return gql_error("owner is not an IotaAddress");
            };
            let mut coins: Vec<(&ObjectId, &Coin)> = chain
                .coins
                .iter()
                .filter(|(_, c)| c.owner == owner)
                .collect();
            coins.sort_by_key(|(id, _)| **id);
            let nodes: Vec<Value> = coins
                .iter()
                .map(|(id, c)| {
                    json!({ "address": id.to_string(), "version": c.version,
                            "digest": c.digest.to_string(), "coinBalance": c.balance.to_string() })
                })
                .collect();
            Json(json!({ "data": {
                "epoch": { "referenceGasPrice": GAS_PRICE.to_string() },
                "address": { "coins": { "nodes": nodes } },
            } }))
            .into_response()
        }
        "FwlDryRun" => {
            let tx = match decode_tx(&vars["txBytes"]) {
                Ok(tx) => tx,
                Err(e) => return gql_error(e),
            };
            match chain.check(&tx, true) {
                Ok((computation, storage)) => Json(json!({ "data": { "dryRunTransactionBlock": {
                    "error": null,
                    "transaction": { "effects": {
                        "status": "SUCCESS",
                        "gasEffects": { "gasSummary": {
                            "computationCost": computation.to_string(),
                            "storageCost": storage.to_string(),
                            "storageRebate": "0",
                            "nonRefundableStorageFee": "0",
                        } },
                    } },
                } } }))
                .into_response(),
                Err(e) => Json(json!({ "data": { "dryRunTransactionBlock": {
                    "error": e, "transaction": null,
                } } }))
                .into_response(),
            }
        }
        "FwlExecute" => {
            let tx = match decode_tx(&vars["txBytes"]) {
                Ok(tx) => tx,
                Err(e) => return gql_error(e),
            };
            let mut signatures = Vec::new();
            for s in vars["signatures"].as_array().into_iter().flatten() {
                match s.as_str().map(UserSignature::from_base64) {
                    Some(Ok(sig)) => signatures.push(sig),
                    _ => return gql_error("signatures: not a base64 user signature"),
                }
            }
            match chain.execute(&tx, &signatures) {
                Ok(digest) => Json(json!({ "data": { "executeTransactionBlock": {
                    "errors": null,
                    "effects": { "status": "SUCCESS", "transactionBlock": { "digest": digest } },
                } } }))
                .into_response(),
                Err(e) => gql_error(e),
            }
        }
        other => gql_error(format!("simulator: operation {other:?} is not simulated")),
    }
}

async fn subscribe(State(chain): State<Shared>, ws: WebSocketUpgrade) -> Response {
    {
        let chain = lock(&chain);
        if !chain.subs.offered {
            return (StatusCode::NOT_FOUND, "no subscriptions here").into_response();
        }
        if chain.subs.refuse {
            return (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
        }
    }
    ws.protocols(["graphql-transport-ws"])
        .on_upgrade(move |socket| stream_session(socket, chain))
}

async fn ws_send(socket: &mut WebSocket, value: Value) -> bool {
    socket
        .send(WsMessage::Text(value.to_string().into()))
        .await
        .is_ok()
}

/// Reads client frames until a JSON message (answering pings); `None` when the socket ends.
async fn ws_recv(socket: &mut WebSocket) -> Option<Value> {
    loop {
        match socket.recv().await? {
            Ok(WsMessage::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(WsMessage::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// One `graphql-transport-ws` connection.
async fn stream_session(mut socket: WebSocket, chain: Shared) {
    let (mut tick, mut cut) = {
        let chain = lock(&chain);
        (chain.subs.tick.subscribe(), chain.subs.cut.subscribe())
    };
    cut.mark_unchanged();
    let timeout = std::time::Duration::from_secs(10);
    match tokio::time::timeout(timeout, ws_recv(&mut socket)).await {
        Ok(Some(m)) if m["type"] == "connection_init" => {}
        _ => return,
    }
    if !ws_send(&mut socket, json!({ "type": "connection_ack" })).await {
        return;
    }
    let subscribe = loop {
        match tokio::time::timeout(timeout, ws_recv(&mut socket)).await {
            Ok(Some(m)) if m["type"] == "subscribe" => break m,
            Ok(Some(m)) if m["type"] == "ping" => {
                if !ws_send(&mut socket, json!({ "type": "pong" })).await {
                    return;
                }
            }
            _ => return,
        }
    };
    let id = subscribe["id"].clone();
    let payload = &subscribe["payload"];
    let query = payload["query"].as_str().unwrap_or("");
    let module = payload["variables"]["filter"]["emittingModule"]
        .as_str()
        .map(str::to_string);
    let start_after = payload["variables"]["startAfter"]
        .as_str()
        .map(str::to_string);
    let mut next = {
        let mut chain = lock(&chain);
        chain.requests.push("ws:subscribe".into());
        chain.subs.start_afters.push(start_after.clone());
        let check = match &chain.schema {
            Some(schema) => schema
                .validate(query)
                .map_err(|e| format!("subscription does not match the IOTA schema: {e}")),
            None => Ok(()),
        };
        let start = match (&check, &start_after) {
            (Err(_), _) => None,
            (Ok(()), None) => Some(chain.events.len()),
            (Ok(()), Some(digest)) => chain
                .events
                .iter()
                .position(|e| e.digest == *digest)
                .map(|i| i + 1),
        };
        match (check, start) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(format!(
                "startAfter {start_after:?} is not a known transaction"
            )),
            (Ok(()), Some(start)) => Ok(start),
        }
    };
    if let Err(e) = &next {
        let _ = ws_send(
            &mut socket,
            json!({ "id": id, "type": "error", "payload": [{ "message": e }] }),
        )
        .await;
        return;
    }
    loop {
        // Push what is new (or one Lagged notice in its place).
        let out: Vec<Value> = {
            let mut chain = lock(&chain);
            let Ok(from) = next.as_mut() else { return };
            let mut out = Vec::new();
            let mut lagged = false;
            while *from < chain.events.len() {
                let e = &chain.events[*from];
                *from += 1;
                if !module
                    .as_deref()
                    .is_none_or(|m| e.event_type.starts_with(&format!("{m}::")))
                {
                    continue;
                }
                if chain.subs.lag_next > 0 {
                    chain.subs.lag_next -= 1;
                    lagged = true;
                    continue;
                }
                let event =
                    json!({ "__typename": "Event", "sender": { "address": e.sender.to_string() } });
                out.push(event);
            }
            if lagged {
                chain.subs.lagged += 1;
                out.push(json!({ "__typename": "Lagged", "nonRefundableBalance": "1" }));
            }
            chain.subs.pushed += out.len();
            out
        };
        for event in out {
            let message =
                json!({ "id": id, "type": "next", "payload": { "data": { "events": event } } });
            if !ws_send(&mut socket, message).await {
                return;
            }
        }
        tokio::select! {
            changed = tick.changed() => if changed.is_err() { return },
            _ = cut.changed() => return, // dropped without a close frame
            m = socket.recv() => match m {
                Some(Ok(WsMessage::Text(text))) => {
                    let m: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let kind = m["type"].as_str();
                    if kind == Some("ping") {
                        lock(&chain).subs.pings += 1;
                    }
                    let answered = kind != Some("ping")
                        || ws_send(&mut socket, json!({ "type": "pong" })).await;
                    if !answered || kind == Some("complete") {
                        return;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn station_version() -> &'static str {
    "0.3.0-simulator"
}

async fn station_reserve(State(chain): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut chain = lock(&chain);
    chain.requests.push("station:reserve_gas".into());
    let budget = body["gas_budget"].as_u64().unwrap_or(0);
    let sponsor = chain.station_key.address();
    let reserved: Vec<ObjectId> = chain.reservations.values().flatten().copied().collect();
    let coin = chain
        .coins
        .iter()
        .find(|(id, c)| c.owner == sponsor && c.balance >= budget && !reserved.contains(id))
        .map(|(id, c)| (*id, c.clone()));
    let Some((id, coin)) = coin else {
        return Json(json!({ "result": null, "error": "no gas coin available for this budget" }))
            .into_response();
    };
    chain.next_reservation += 1;
    let reservation = chain.next_reservation;
    chain.reservations.insert(reservation, vec![id]);
    Json(json!({ "result": {
        "sponsor_address": sponsor.to_string(),
        "reservation_id": reservation,
        "gas_coins": [{ "objectId": id.to_string(), "version": coin.version, "digest": coin.digest.to_string() }],
    }, "error": null }))
    .into_response()
}

async fn station_execute(State(chain): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut chain = lock(&chain);
    chain.requests.push("station:execute_tx".into());
    let fail = |e: String| Json(json!({ "effects": null, "error": e })).into_response();
    let Some(reservation) = body["reservation_id"].as_u64() else {
        return fail("no reservation_id".into());
    };
    if chain.reservations.remove(&reservation).is_none() {
        return fail(format!("unknown reservation {reservation}"));
    }
    let tx = match decode_tx(&body["tx_bytes"]) {
        Ok(tx) => tx,
        Err(e) => return fail(e),
    };
    let user = match body["user_sig"].as_str().map(UserSignature::from_base64) {
        Some(Ok(sig)) => sig,
        _ => return fail("user_sig is not a base64 user signature".into()),
    };
    let sponsor = match chain.station_key.sign(&tx) {
        Ok(sig) => sig,
        Err(e) => return fail(e.to_string()),
    };
    match chain.execute(&tx, &[user, sponsor]) {
        Ok(digest) => Json(json!({ "effects": { "transactionDigest": digest }, "error": null }))
            .into_response(),
        Err(e) => fail(e),
    }
}

async fn faucet(State(chain): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut chain = lock(&chain);
    chain.requests.push("faucet".into());
    let Some(recipient) = body["FixedAmountRequest"]["recipient"]
        .as_str()
        .and_then(|s| Address::from_str(s).ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            "expected FixedAmountRequest.recipient",
        )
            .into_response();
    };
    chain.fund(recipient, FAUCET_AMOUNT);
    Json(json!({ "task": "simulated", "error": null })).into_response()
}

/// A running simulator; stops when dropped.
pub struct Simulator {
    addr: SocketAddr,
    chain: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Simulator({})", self.addr)
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1:0` (its own thread and runtime) with the Notarization
    /// package at `package`. `schema`: the IOTA GraphQL schema (SDL) every query is validated
    /// against, if given.
    pub fn start(package: ObjectId, schema: Option<&str>) -> std::io::Result<Simulator> {
        let schema = match schema {
            Some(sdl) => Some(
                crate::schema::Schema::parse(sdl)
                    .map_err(|e| std::io::Error::other(format!("schema: {e}")))?,
            ),
            None => None,
        };
        let chain = Arc::new(Mutex::new(Chain {
            package,
            coins: HashMap::new(),
            events: Vec::new(),
            next_object: 0,
            fail_next: 0,
            requests: Vec::new(),
            station_key: IotaKey::generate(),
            reservations: HashMap::new(),
            next_reservation: 0,
            schema,
            subs: Subs {
                offered: true,
                refuse: false,
                lag_next: 0,
                pings: 0,
                pushed: 0,
                lagged: 0,
                start_afters: Vec::new(),
                tick: tokio::sync::watch::channel(0).0,
                cut: tokio::sync::watch::channel(0).0,
            },
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/graphql", post(graphql).get(subscribe))
            .route("/version", get(station_version))
            .route("/v1/reserve_gas", post(station_reserve))
            .route("/v1/execute_tx", post(station_execute))
            .route("/v1/gas", post(faucet))
            .with_state(chain.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("iota-simulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Not graceful: a stop drops open keep-alive connections, as a node
                    // going away would.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(Simulator {
            addr,
            chain,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `http://127.0.0.1:PORT/` — the gas station's base URL.
    pub fn gas_station_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A ledger URL for this simulator (`iota+http://…/graphql?network=custom&package=…`).
    pub fn ledger_url(&self) -> String {
        let package = lock(&self.chain).package;
        format!(
            "iota+http://{}/graphql?network=custom&package={package}",
            self.addr
        )
    }

    /// Gives `owner` a new gas coin of `nanos`.
    pub fn fund(&self, owner: Address, nanos: u64) {
        lock(&self.chain).fund(owner, nanos);
    }

    /// Funds the gas station's sponsor account with `coins` coins of `nanos` each.
    pub fn fund_station(&self, coins: usize, nanos: u64) {
        let mut chain = lock(&self.chain);
        let sponsor = chain.station_key.address();
        for _ in 0..coins {
            chain.fund(sponsor, nanos);
        }
    }

    /// The gas station's sponsor address.
    pub fn station_address(&self) -> Address {
        lock(&self.chain).station_key.address()
    }

    /// Sum of `owner`'s coins.
    pub fn balance(&self, owner: Address) -> u64 {
        lock(&self.chain)
            .coins
            .values()
            .filter(|c| c.owner == owner)
            .map(|c| c.balance)
            .sum()
    }

    /// Answers the next `n` requests with HTTP 503.
    pub fn fail_next(&self, n: usize) {
        lock(&self.chain).fail_next = n;
    }

    /// Names of the operations received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.chain).requests.clone()
    }

    /// Cuts every open subscription (no close frame, as a dropped connection).
    pub fn drop_subscriptions(&self) {
        lock(&self.chain).subs.cut.send_modify(|n| *n += 1);
    }

    /// While `true`, subscription upgrades are answered with HTTP 503.
    pub fn refuse_subscriptions(&self, refuse: bool) {
        lock(&self.chain).subs.refuse = refuse;
    }

    /// Offers the events subscription (default) or not (upgrades answered 404).
    pub fn set_subscriptions(&self, offered: bool) {
        lock(&self.chain).subs.offered = offered;
    }

    /// Replaces the next `n` pushed events by one `Lagged` notice.
    pub fn lag_next(&self, n: usize) {
        lock(&self.chain).subs.lag_next = n;
    }

    /// Subscriptions opened so far, with the `startAfter` each gave.
    pub fn subscriptions(&self) -> Vec<Option<String>> {
        lock(&self.chain).subs.start_afters.clone()
    }

    /// Payloads pushed to subscribers so far (events and `Lagged` notices).
    pub fn pushed(&self) -> usize {
        lock(&self.chain).subs.pushed
    }

    /// Pings received on subscriptions so far.
    pub fn pings(&self) -> usize {
        lock(&self.chain).subs.pings
    }

    /// `Lagged` notices sent so far.
    pub fn lagged(&self) -> usize {
        lock(&self.chain).subs.lagged
    }

    /// Digests of the executed transactions, in order.
    pub fn digests(&self) -> Vec<String> {
        lock(&self.chain)
            .events
            .iter()
            .map(|e| e.digest.clone())
            .collect()
    }

    /// Number of executed transactions.
    pub fn executed(&self) -> usize {
        lock(&self.chain).events.len()
    }

    /// Stops the server and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}
