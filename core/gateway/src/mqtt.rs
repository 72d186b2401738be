//! The gateway's MQTT client: broker URLs, connection options, and the event loop that
//! re-subscribes on every connection and hands device messages to the service.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, SubscribeFilter,
    TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::registry::EventLevel;

/// Why the MQTT side failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The broker URL is not `mqtts://HOST:PORT` (or `mqtt://` on loopback).
    #[error("broker URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A publish or subscribe could not be queued in time.
    #[error("MQTT client: {0}")]
    Client(String),
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// TLS (`mqtts://`) or plain (`mqtt://`, loopback only).
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtts://HOST[:PORT]` (default 8883) or `mqtt://HOST[:PORT]` (default 1883; only a
    /// loopback host, since nothing would protect the traffic).
    pub fn parse(url: &str) -> Result<BrokerUrl, MqttError> {
        let bad = |reason: &str| MqttError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("must start with mqtts:// or mqtt://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '?', '@']) {
            return Err(bad("must be SCHEME://HOST[:PORT]"));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("bad port")),
            };
            (host.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => {
                    (host.to_string(), port.parse().map_err(|_| bad("bad port"))?)
                }
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad("missing host or port"));
        }
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !tls && !loopback {
            return Err(bad(
                "plain mqtt:// is only allowed to a loopback broker; use mqtts://",
            ));
        }
        Ok(BrokerUrl { tls, host, port })
    }

    /// MQTT options for this broker with a client id; `tls` is the client TLS configuration
    /// (required for `mqtts://`).
    pub fn options(
        &self,
        client_id: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<MqttOptions, MqttError> {
        let mut options = MqttOptions::new(client_id, self.host.clone(), self.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(64 * 1024, 1024 * 1024)
            .set_clean_session(true);
        if self.tls {
            let tls = tls.ok_or_else(|| MqttError::BadUrl {
                url: format!("mqtts://{}:{}", self.host, self.port),
                reason: "no TLS configuration".into(),
            })?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        }
        Ok(options)
    }
}

/// A message from a device, as the event loop hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceMessage {
    /// A status report (possibly empty: the device's last will, it went offline).
    Status { device: String, payload: Vec<u8> },
    /// A self-validation request.
    Check { device: String },
}

/// Something the event loop wants logged.
pub(crate) type LogSink = mpsc::UnboundedSender<(EventLevel, String)>;

/// Drives the MQTT connection until `cancel`: subscribes to every device's status and check
/// topics on each ConnAck (rumqttc does not resubscribe after a reconnect) and forwards device
/// messages. Connection errors are logged and retried with backoff.
// The wiring of one task, called from one place.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    messages: mpsc::Sender<DeviceMessage>,
    log: LogSink,
    ready: watch::Sender<bool>,
    health: crate::health::Health,
    cancel: CancellationToken,
) {
    use crate::health::{Backoff, Component};
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut connected = false;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                health.recovered(Component::Broker, fwledger::unix_now());
                connected = true;
                let _ = log.send((EventLevel::Info, "connected to the MQTT broker".into()));
                // try_: awaiting here would deadlock on a full request queue, since only this
                // loop drains it.
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    let _ = log.send((EventLevel::Error, format!("MQTT subscribe: {e}")));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = ready.send(true);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let Some((device, kind)) = fwledger_link::topics::parse(&publish.topic) else {
                    continue;
                };
                let message = match kind {
                    "status" => DeviceMessage::Status {
                        device: device.to_string(),
                        payload: publish.payload.to_vec(),
                    },
                    "check" => DeviceMessage::Check {
                        device: device.to_string(),
                    },
                    _ => continue,
                };
                if messages.try_send(message).is_err() {
                    let _ = log.send((
                        EventLevel::Warning,
                        format!("dropped a message from {device}: the gateway is overloaded"),
                    ));
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Our own goodbye (shutdown): not a lost connection.
                connected = false;
                let _ = ready.send(false);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = ready.send(false);
                let wait = backoff.next_random();
                health.failed(
                    Component::Broker,
                    &e.to_string(),
                    Some(wait),
                    fwledger::unix_now(),
                );
                if connected {
                    let _ = log.send((EventLevel::Warning, format!("MQTT connection lost: {e}")));
                    connected = false;
                } else if backoff.attempts() == 6 {
                    let _ =
                        log.send((EventLevel::Warning, format!("MQTT broker unreachable: {e}")));
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let url = BrokerUrl::parse("mqtts://127.0.0.1:8883").expect("parse");
        assert_eq!(
            url,
            BrokerUrl {
                tls: true,
                host: "127.0.0.1".into(),
                port: 8883
            }
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://hub.local").expect("parse").port,
            8883
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://localhost:1884")
                .expect("parse")
                .port,
            1884
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://[::1]:9").expect("parse").host,
            "::1"
        );
        assert!(BrokerUrl::parse("mqtt://192.0.2.1:1883").is_err());
        assert!(BrokerUrl::parse("http://127.0.0.1").is_err());
        assert!(BrokerUrl::parse("mqtts://127.0.0.1:x").is_err());
        assert!(BrokerUrl::parse("mqtts://u@127.0.0.1:1").is_err());
    }
}
