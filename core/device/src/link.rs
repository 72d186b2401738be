//! The MQTT side, over `embedded_svc::mqtt::client`: an event pump that turns a blocking
//! [`Connection`] into owned [`MqttEvent`]s on a channel, so the agent can wait with a timeout and
//! download while the connection keeps running.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use embedded_svc::mqtt::client::{Connection, Details, Event, EventPayload};

/// Largest MQTT message the agent reassembles (a notice is a few KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// An MQTT event the agent acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttEvent {
    /// The broker accepted the connection (a CONNACK): subscribe again, report, check.
    Connected,
    /// The connection dropped; the client reconnects by itself.
    Disconnected,
    /// A complete message.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// The connection reported an error.
    Error(String),
}

/// Owned events from a connection, pumped by a thread of their own.
#[derive(Debug)]
pub struct EventPump {
    rx: Receiver<MqttEvent>,
    thread: Option<JoinHandle<()>>,
}

/// Why [`EventPump::recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpStatus {
    /// Nothing within the timeout.
    Timeout,
    /// The connection ended for good.
    Ended,
}

impl EventPump {
    /// Pumps `connection` on a new thread until it fails or the pump is dropped.
    pub fn spawn<C>(name: &str, mut connection: C) -> std::io::Result<Self>
    where
        C: Connection + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(64);
        let thread = std::thread::Builder::new()
            .name(format!("mqtt-{name}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut partial: Option<(String, Vec<u8>, usize)> = None;
                loop {
                    let event = match connection.next() {
                        Ok(event) => convert(&event.payload(), &mut partial),
                        Err(_) => break,
                    };
                    if let Some(event) = event {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                }
            })?;
        Ok(EventPump {
            rx,
            thread: Some(thread),
        })
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv(&self, timeout: Duration) -> Result<MqttEvent, PumpStatus> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => PumpStatus::Timeout,
            RecvTimeoutError::Disconnected => PumpStatus::Ended,
        })
    }

    /// Waits up to `timeout` for the pump thread to end (after the client was closed).
    pub fn join(mut self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                // Drain so that a blocked sender can observe the end.
                while self.rx.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

fn convert<E: core::fmt::Debug>(
    payload: &EventPayload<'_, E>,
    partial: &mut Option<(String, Vec<u8>, usize)>,
) -> Option<MqttEvent> {
    match payload {
        EventPayload::Connected(_) => Some(MqttEvent::Connected),
        EventPayload::Disconnected => Some(MqttEvent::Disconnected),
        EventPayload::Error(e) => Some(MqttEvent::Error(format!("{e:?}"))),
        EventPayload::Received {
            topic,
            data,
            details,
            ..
        } => match details {
            Details::Complete => Some(MqttEvent::Message {
                topic: topic.unwrap_or_default().to_string(),
                data: data.to_vec(),
            }),
            // ESP-IDF splits messages larger than its buffer; only the first chunk has a topic.
            Details::InitialChunk(c) => {
                *partial = (c.total_data_size <= MAX_MESSAGE).then(|| {
                    (
                        topic.unwrap_or_default().to_string(),
                        data.to_vec(),
                        c.total_data_size,
                    )
                });
                None
            }
            Details::SubsequentChunk(c) => {
                let (topic, mut buf, total) = partial.take()?;
                if c.current_data_offset != buf.len() {
                    return None;
                }
                buf.extend_from_slice(data);
                if buf.len() >= total {
                    Some(MqttEvent::Message { topic, data: buf })
                } else {
                    *partial = Some((topic, buf, total));
                    None
                }
            }
        },
        _ => None,
    }
}
