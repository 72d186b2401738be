//! Live following through the GraphQL `events` **subscription** (WebSocket,
//! `graphql-transport-ws` protocol).
//!
//! The subscription is only a wake-up signal: each `Event` of the writer (or a `Lagged`
//! notice) makes [`Ledger::wait`](fwledger_ledger::Ledger::wait) run the same cursor-based
//! `events` query as every other read, so ordering, gaps and duplicates are decided in one
//! place and nothing is lost when the stream drops or lags. A (re)connect subscribes with
//! `startAfter` = the digest of the last transaction the reader has seen and triggers one
//! catch-up read. A dropped or refused connection is retried with a bounded backoff (the
//! reader polls meanwhile); a node that does not offer subscriptions (HTTP error on the
//! upgrade, no `graphql-transport-ws`, an `error` for the subscription) is logged once and
//! the reader polls from then on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The subscription the backend sends: events of the Notarization module, with the sender of
/// each (the reader wakes only for its writer's events) and `Lagged` notices.
pub const EVENTS_SUBSCRIPTION: &str =
    "subscription FwlEventStream($filter: SubscriptionEventFilter, $startAfter: String) {
  events(filter: $filter, startAfter: $startAfter) {
    __typename
    ... on Event { sender { address } }
  }
}";

/// The WebSocket sub-protocol.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Where the subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Connecting or reconnecting (the reader polls meanwhile).
    Connecting,
    /// Subscribed: the reader waits for wake-ups instead of polling.
    Live,
    /// The node offers no subscription (or it is switched off): the reader polls.
    Unavailable,
}

/// What a reader watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The stream's state.
    pub state: StreamState,
    /// Bumped on every wake-up (an event of the writer, `Lagged`, a new subscription).
    pub wakeups: u64,
}

/// Settings of the subscription task.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `ws://…` or `wss://…`.
    pub url: String,
    /// `SubscriptionEventFilter.emittingModule`, e.g. `0xPKG::locked_notarization`.
    pub module: String,
    /// The writer whose events wake the reader (canonical `0x…` form).
    pub sender: String,
    /// Connect + handshake + `connection_ack` timeout.
    pub connect: Duration,
    /// First reconnect delay; doubles up to 16×.
    pub reconnect: Duration,
    /// Idle time after which a ping is sent; twice without any frame drops the connection.
    pub keepalive: Duration,
}

/// The running subscription task; aborted when dropped.
#[derive(Debug)]
pub struct Follower {
    rx: watch::Receiver<Signal>,
    last_drop: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Follower {
    /// Starts the task on the current tokio runtime. `seen`: the digest of the last
    /// transaction the reader has processed (read at every (re)connect for `startAfter`).
    pub fn start(config: StreamConfig, seen: Arc<Mutex<Option<String>>>) -> Follower {
        let (tx, rx) = watch::channel(Signal {
            state: StreamState::Connecting,
            wakeups: 0,
        });
        let last_drop = Arc::new(Mutex::new(None));
        let task = tokio::spawn(run(config, seen, tx, Arc::clone(&last_drop)));
        Follower {
            rx,
            last_drop,
            task,
        }
    }

    /// A receiver of the signal.
    pub fn receiver(&self) -> watch::Receiver<Signal> {
        self.rx.clone()
    }

    /// Why the last connection ended or failed, if one did.
    pub fn last_drop(&self) -> Option<String> {
        self.last_drop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the task still runs (it ends only when subscriptions are unavailable, or when
    /// its runtime went away).
    pub fn running(&self) -> bool {
        !self.task.is_finished()
    }
}

/// Why a session ended.
enum End {
    /// Try again later.
    Dropped(String),
    /// The node rejected the `startAfter` digest: retry from now (the catch-up read covers
    /// the rest).
    Restart(String),
    /// Not offered: poll from now on.
    Unsupported(String),
}

async fn run(
    config: StreamConfig,
    seen: Arc<Mutex<Option<String>>>,
    tx: watch::Sender<Signal>,
    last_drop: Arc<Mutex<Option<String>>>,
) {
    let max = config.reconnect * 16;
    let mut delay = config.reconnect;
    let mut use_start_after = true;
    loop {
        let start_after = if use_start_after {
            seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
        } else {
            None
        };
        use_start_after = true;
        let mut went_live = false;
        let end = session(&config, start_after, &tx, &mut went_live).await;
        match end {
            End::Unsupported(reason) => {
                *last_drop.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                eprintln!(
                    "fwledger-iota: {} offers no events subscription ({reason}); following by \
                     polling",
                    config.url
                );
                tx.send_modify(|s| s.state = StreamState::Unavailable);
                return;
            }
            End::Restart(reason) => {
                use_start_after = false;
                *last_drop.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            }
            End::Dropped(reason) => {
                *last_drop.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            }
        }
        tx.send_if_modified(|s| {
            let changed = s.state != StreamState::Connecting;
            s.state = StreamState::Connecting;
            changed
        });
        if went_live {
            delay = config.reconnect;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max);
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

async fn connect(config: &StreamConfig) -> Result<Socket, End> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| End::Unsupported(format!("bad subscription URL: {e}")))?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
    let uri = request.uri().clone();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(End::Unsupported(format!(
                "subscription URL scheme {other:?} (expected ws or wss)"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| End::Unsupported("subscription URL names no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| End::Dropped(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        let mut tls_config =
            crate::rpc::tls_config().map_err(|e| End::Unsupported(e.to_string()))?;
        tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| End::Unsupported(format!("server name {host:?}: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config));
        Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| End::Dropped(format!("TLS: {e}")))?,
        )
    } else {
        Box::new(tcp)
    };
    let (socket, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response)
                if response.status().is_client_error() =>
            {
                End::Unsupported(format!("the upgrade was answered {}", response.status()))
            }
            other => End::Dropped(format!("WebSocket handshake: {other}")),
        })?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok());
    if protocol != Some(PROTOCOL) {
        return Err(End::Unsupported(format!(
            "the server speaks {protocol:?}, not {PROTOCOL}"
        )));
    }
    Ok(socket)
}

async fn send(socket: &mut Socket, value: Value) -> Result<(), End> {
    socket
        .send(Message::text(value.to_string()))
        .await
        .map_err(|e| End::Dropped(format!("send: {e}")))
}

/// One connection: handshake, subscribe, forward wake-ups until it ends.
async fn session(
    config: &StreamConfig,
    start_after: Option<String>,
    tx: &watch::Sender<Signal>,
    went_live: &mut bool,
) -> End {
    let mut socket = match tokio::time::timeout(config.connect, async {
        let mut socket = connect(config).await?;
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": {} }),
        )
        .await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    match message["type"].as_str() {
                        Some("connection_ack") => return Ok(socket),
                        Some("ping") => send(&mut socket, json!({ "type": "pong" })).await?,
                        _ => {
                            return Err(End::Unsupported(format!(
                                "expected connection_ack, got {text}"
                            )))
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(End::Dropped(format!("closed before the ack: {frame:?}")))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(End::Dropped(e.to_string())),
                None => return Err(End::Dropped("closed before the ack".into())),
            }
        }
    })
    .await
    {
        Ok(Ok(socket)) => socket,
        Ok(Err(end)) => return end,
        Err(_) => return End::Dropped(format!("no connection_ack within {:?}", config.connect)),
    };
    let had_start_after = start_after.is_some();
    let subscribe = json!({
        "id": "1",
        "type": "subscribe",
        "payload": {
            "query": EVENTS_SUBSCRIPTION,
            "operationName": "FwlEventStream",
            "variables": { "filter": { "emittingModule": config.module }, "startAfter": start_after },
        },
    });
    if let Err(end) = send(&mut socket, subscribe).await {
        return end;
    }
    // graphql-transport-ws has no subscription ack: live from here; the wake-up makes the
    // reader catch up with anything written while it was not subscribed.
    *went_live = true;
    tx.send_modify(|s| {
        s.state = StreamState::Live;
        s.wakeups += 1;
    });
    let mut idle = 0;
    loop {
        let frame = match tokio::time::timeout(config.keepalive, socket.next()).await {
            Err(_) => {
                idle += 1;
                if idle >= 2 {
                    return End::Dropped(format!("silent for {:?}", config.keepalive * 2));
                }
                if let Err(end) = send(&mut socket, json!({ "type": "ping" })).await {
                    return end;
                }
                continue;
            }
            Ok(frame) => frame,
        };
        idle = 0;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return End::Dropped(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return End::Dropped(e.to_string()),
            None => return End::Dropped("connection closed".into()),
        };
        let message: Value = match serde_json::from_str(text.as_str()) {
            Ok(m) => m,
            Err(e) => return End::Dropped(format!("not JSON: {e}")),
        };
        match message["type"].as_str() {
            Some("ping") => {
                if let Err(end) = send(&mut socket, json!({ "type": "pong" })).await {
                    return end;
                }
            }
            Some("pong") => {}
            Some("next") => {
                let payload = &message["payload"];
                let event = &payload["data"]["events"];
                let wake = match event["__typename"].as_str() {
                    Some("Event") => event["sender"]["address"]
                        .as_str()
                        .is_none_or(|a| same_address(a, &config.sender)),
                    // Lagged, errors, anything unexpected: a catch-up read is always safe.
                    _ => true,
                };
                if wake {
                    tx.send_modify(|s| s.wakeups += 1);
                }
            }
            Some("error") => {
                let reason = message["payload"].to_string();
                return if had_start_after {
                    End::Restart(reason)
                } else {
                    End::Unsupported(format!("the subscription was refused: {reason}"))
                };
            }
            Some("complete") => return End::Dropped("the server completed the stream".into()),
            _ => return End::Dropped(format!("unexpected message {text}")),
        }
    }
}

fn same_address(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim_start_matches("0x").to_ascii_lowercase();
        format!("{s:0>64}")
    };
    norm(a) == norm(b)
}

/// The default subscription URL for a GraphQL endpoint: the same URL with `ws://`/`wss://`.
pub fn default_url(endpoint: &str) -> String {
    if let Some(rest) = endpoint.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        endpoint.to_string()
    }
}
