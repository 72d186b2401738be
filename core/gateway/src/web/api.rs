//! The JSON API (`GET` only; a session cookie or `Authorization: Bearer` the API token).
//!
//! | route | body |
//! | --- | --- |
//! | `/api/devices` | `[Device]` ([`crate::registry::Device`]) |
//! | `/api/devices/{id}` | [`DeviceDetail`]: the device's fields plus `updates: [DeviceUpdate]`; 404 `{"error"}` |
//! | `/api/releases` | `[Release]`, newest first (without the manifest bytes) |
//! | `/api/updates` | `[DeviceUpdate]`, latest change first |
//! | `/api/channels` | `[Channel]` |
//! | `/api/health` | `[ComponentHealth]` ([`crate::health::ComponentHealth`]): broker, ledger, store, disk — `ok`, `state`, `since`, `last_error`, `failures`, `next_retry` |
//! | `/api/events?after=N&limit=L` | `[Event]` with `id > N`, oldest first, at most `L` (default 100, at most 1000); without `after`: the latest `L`, oldest first. Poll with the last `id` seen. |
//!
//! Errors are `{"error": "…"}` with a 4xx/5xx status.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::registry::{Device, DeviceUpdate};

use super::{blocking, Web};

/// The body of an error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(error: &str) -> Self {
        ErrorBody {
            error: error.to_string(),
        }
    }
}

/// `/api/devices/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    /// The device.
    #[serde(flatten)]
    pub device: Device,
    /// Its updates, latest change first.
    pub updates: Vec<DeviceUpdate>,
}

fn json<T: Serialize>(result: Result<T, Response>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(response) => {
            let status = response.status();
            (status, Json(ErrorBody::new("registry unavailable"))).into_response()
        }
    }
}

pub(crate) async fn devices(State(web): State<Web>) -> Response {
    let registry = web.http.registry.clone();
    json(blocking(move || registry.devices()).await)
}

pub(crate) async fn device(State(web): State<Web>, Path(id): Path<String>) -> Response {
    let registry = web.http.registry.clone();
    let found = blocking(move || {
        let Some(device) = registry.device(&id)? else {
            return Ok(None);
        };
        let updates = registry.device_updates(&id)?;
        Ok(Some(DeviceDetail { device, updates }))
    })
    .await;
    match found {
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(ErrorBody::new("unknown device")),
        )
            .into_response(),
        other => json(other),
    }
}

pub(crate) async fn releases(State(web): State<Web>) -> Response {
    let registry = web.http.registry.clone();
    json(blocking(move || registry.releases()).await)
}

pub(crate) async fn updates(State(web): State<Web>) -> Response {
    let registry = web.http.registry.clone();
    json(blocking(move || registry.updates()).await)
}

pub(crate) async fn channels(State(web): State<Web>) -> Response {
    let registry = web.http.registry.clone();
    json(blocking(move || registry.channels()).await)
}

/// Query of `/api/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct EventQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

pub(crate) async fn events(State(web): State<Web>, Query(query): Query<EventQuery>) -> Response {
    let registry = web.http.registry.clone();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    json(
        blocking(move || match query.after {
            Some(after) => registry.events_since(after, limit),
            None => {
                let mut latest = registry.events(limit)?;
                latest.reverse();
                Ok(latest)
            }
        })
        .await,
    )
}

pub(crate) async fn health(State(web): State<Web>) -> Response {
    Json(web.http.metrics.health().snapshot()).into_response()
}
