//! MQTT over rumqttc (sync client), behind the `embedded_svc::mqtt::client` traits — the same
//! shapes as esp-idf-svc's `EspMqttClient` (client half) and `EspMqttConnection` (event half).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use embedded_svc::mqtt::client::{
    Client, Connection, Details, ErrorType, Event, EventPayload, MessageId, Publish, QoS,
};
use rumqttc::{ConnectReturnCode, Outgoing, Packet};

/// An MQTT operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The request could not be queued (full queue while offline, or the client closed).
    #[error("mqtt request: {0}")]
    Request(String),
    /// The session was closed.
    #[error("mqtt session closed")]
    Closed,
}

fn qos(q: QoS) -> rumqttc::QoS {
    match q {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

/// The client half: subscribe and publish. Requests are queued without blocking; while offline
/// a full queue refuses them (status reports are sent again on the next connect anyway).
pub struct HostMqttClient {
    client: rumqttc::Client,
    closing: Arc<AtomicBool>,
}

/// The event half: `next()` drives the connection (and its reconnects) and returns events.
pub struct HostMqttConnection {
    connection: rumqttc::Connection,
    closing: Arc<AtomicBool>,
    online: bool,
}

/// Starts a session: nothing is sent until the event half is pumped.
pub fn session(options: rumqttc::MqttOptions) -> (HostMqttClient, HostMqttConnection) {
    let (client, connection) = rumqttc::Client::new(options, 32);
    let closing = Arc::new(AtomicBool::new(false));
    (
        HostMqttClient {
            client,
            closing: closing.clone(),
        },
        HostMqttConnection {
            connection,
            closing,
            online: false,
        },
    )
}

impl HostMqttClient {
    /// Sends DISCONNECT after everything already queued and stops the event half, which then
    /// ends instead of reconnecting (a reconnect would take over the next session's client id).
    pub fn close(self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
    }
}

impl ErrorType for HostMqttClient {
    type Error = MqttError;
}

impl Client for HostMqttClient {
    fn subscribe<'a>(&'a mut self, topic: &'a str, q: QoS) -> Result<MessageId, MqttError> {
        self.client
            .try_subscribe(topic, qos(q))
            .map(|()| 0)
            .map_err(|e| MqttError::Request(e.to_string()))
    }

    fn unsubscribe<'a>(&'a mut self, topic: &'a str) -> Result<MessageId, MqttError> {
        self.client
            .try_unsubscribe(topic)
            .map(|()| 0)
            .map_err(|e| MqttError::Request(e.to_string()))
    }
}

impl Publish for HostMqttClient {
    fn publish<'a>(
        &'a mut self,
        topic: &'a str,
        q: QoS,
        retain: bool,
        payload: &'a [u8],
    ) -> Result<MessageId, MqttError> {
        self.client
            .try_publish(topic, qos(q), retain, payload.to_vec())
            .map(|()| 0)
            .map_err(|e| MqttError::Request(e.to_string()))
    }
}

/// One event, owned.
#[derive(Debug)]
pub enum HostEvent {
    /// CONNACK accepted.
    Connected(bool),
    /// The connection dropped (rumqttc reconnects on the next `next()`).
    Disconnected,
    /// A message.
    Received {
        /// Packet id.
        id: MessageId,
        /// Topic.
        topic: String,
        /// Payload.
        data: Vec<u8>,
    },
}

impl ErrorType for HostEvent {
    type Error = MqttError;
}

impl Event for HostEvent {
    fn payload(&self) -> EventPayload<'_, MqttError> {
        match self {
            HostEvent::Connected(session) => EventPayload::Connected(*session),
            HostEvent::Disconnected => EventPayload::Disconnected,
            HostEvent::Received { id, topic, data } => EventPayload::Received {
                id: *id,
                topic: Some(topic),
                data,
                details: Details::Complete,
            },
        }
    }
}

impl ErrorType for HostMqttConnection {
    type Error = MqttError;
}

impl Connection for HostMqttConnection {
    type Event<'a>
        = HostEvent
    where
        Self: 'a;

    fn next(&mut self) -> Result<HostEvent, MqttError> {
        loop {
            if self.closing.load(Ordering::SeqCst) {
                return Err(MqttError::Closed);
            }
            match self.connection.recv() {
                Ok(Ok(rumqttc::Event::Incoming(Packet::ConnAck(ack)))) => {
                    if ack.code == ConnectReturnCode::Success {
                        self.online = true;
                        return Ok(HostEvent::Connected(ack.session_present));
                    }
                }
                Ok(Ok(rumqttc::Event::Incoming(Packet::Publish(p)))) => {
                    return Ok(HostEvent::Received {
                        id: u32::from(p.pkid),
                        topic: p.topic,
                        data: p.payload.to_vec(),
                    })
                }
                Ok(Ok(rumqttc::Event::Incoming(Packet::Disconnect))) => {
                    self.online = false;
                    return Ok(HostEvent::Disconnected);
                }
                Ok(Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect))) => {
                    return Err(MqttError::Closed)
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) => {
                    if self.closing.load(Ordering::SeqCst) {
                        return Err(MqttError::Closed);
                    }
                    // rumqttc reconnects on the next poll: pace the attempts.
                    for _ in 0..10 {
                        if self.closing.load(Ordering::SeqCst) {
                            return Err(MqttError::Closed);
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if std::mem::replace(&mut self.online, false) {
                        return Ok(HostEvent::Disconnected);
                    }
                }
                Err(_) => return Err(MqttError::Closed),
            }
        }
    }
}
