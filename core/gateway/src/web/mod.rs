//! The web UI (server-rendered HTML), the JSON API under `/api/` and the Prometheus metrics at
//! `/metrics`, all on the gateway's HTTPS server next to the firmware downloads.
//!
//! | route | what | who |
//! | --- | --- | --- |
//! | `GET /login`, `POST /login`, `GET /static/style.css` | login | anyone |
//! | `GET /metrics` | Prometheus text | loopback clients; others need a session or the API token |
//! | `GET /api/…` | JSON | a session or `Authorization: Bearer` the API token |
//! | every other page and form | HTML | a session; every `POST` carries the session's CSRF token |
//! | `GET /fw/{sha256}` | images ([`crate::http`]) | anyone (devices) |
//! | `GET /api/rollouts…`, `POST /api/rollouts/{release}[/{action}]`, `POST /releases/…/rollout…` | staged rollouts ([`rollout`]) | reads: a session or the API token; changes: a session + CSRF |
//!
//! Pages: `/` (overview), `/devices`, `/devices/{id}`, `/devices/{id}/bundle`, `/releases`,
//! `/updates`, `/channels`, `/repository`, `/events`, `/config` (subscribe a channel, add a
//! device, download bundles); `/releases` carries the staged-rollout panel. See [`auth`] for sessions and CSRF, [`api`] for the JSON shapes.

pub mod api;
pub mod auth;
mod pages;
pub mod rollout;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::HttpState;
use crate::metrics::{process_rss_bytes, render, Snapshot};

use self::auth::{Auth, SESSION_COOKIE};

/// Largest form body accepted (a subscription token is a few KiB).
const MAX_FORM: usize = 64 * 1024;

/// What the web routes share.
#[derive(Clone, Debug)]
pub(crate) struct Web {
    pub http: HttpState,
    pub auth: Arc<Auth>,
}

/// The web UI, API and metrics routes, to merge into [`crate::http::router`].
pub fn routes<S>(state: HttpState) -> Router<S> {
    let web = Web {
        auth: Auth::new(state.paths.clone()),
        http: state,
    };
    let protected = Router::new()
        .route("/", get(pages::overview))
        .route("/devices", get(pages::devices))
        .route("/devices/{id}", get(pages::device))
        .route("/devices/{id}/bundle", get(pages::bundle))
        .route("/releases", get(pages::releases))
        .route("/updates", get(pages::updates))
        .route("/channels", get(pages::channels))
        .route("/repository", get(pages::repository))
        .route("/events", get(pages::events))
        .route("/config", get(pages::config))
        .route("/config/subscribe", post(pages::subscribe))
        .route("/config/devices", post(pages::add_device))
        .route("/logout", post(pages::logout))
        .route("/api/devices", get(api::devices))
        .route("/api/devices/{id}", get(api::device))
        .route("/api/releases", get(api::releases))
        .route("/api/updates", get(api::updates))
        .route("/api/channels", get(api::channels))
        .route("/api/events", get(api::events))
        .route("/api/rollouts", get(rollout::api_list))
        .route(
            "/api/rollouts/{release}",
            get(rollout::api_show).post(rollout::api_set),
        )
        .route(
            "/api/rollouts/{release}/{action}",
            post(rollout::api_action),
        )
        .route("/releases/rollout", post(rollout::form_set))
        .route(
            "/releases/{release}/rollout/{action}",
            post(rollout::form_action),
        )
        .route("/api/health", get(api::health))
        .route_layer(middleware::from_fn_with_state(web.clone(), require_login));
    Router::new()
        .merge(protected)
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(fwledger_webauth::security_headers))
        .with_state(web)
}

/// The client address (unspecified when the server was not started with connection info).
pub(crate) fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn is_api(request: &Request) -> bool {
    request.uri().path().starts_with("/api/")
}

/// Lets a request through with a live session (or, for the API, the bearer token); checks the
/// CSRF token of every state-changing request before its handler runs.
async fn require_login(State(web): State<Web>, request: Request, next: Next) -> Response {
    let session =
        auth::cookie(request.headers(), SESSION_COOKIE).and_then(|id| web.auth.session(id));
    let Some(session) = session else {
        if is_api(&request) {
            if request.method() == Method::GET && web.auth.bearer_ok(request.headers()) {
                return next.run(request).await;
            }
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(api::ErrorBody::new("log in or send the API token")),
            )
                .into_response();
        }
        if request.method() == Method::GET || request.method() == Method::HEAD {
            return Redirect::to("/login").into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
    let mut request = request;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(bytes) => bytes,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response(),
        };
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let token = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !auth::secrets_equal(token, &session.csrf) {
            return (
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again\n",
            )
                .into_response();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Runs a registry read off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Response>
where
    F: FnOnce() -> Result<T, crate::registry::RegistryError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            Err((StatusCode::SERVICE_UNAVAILABLE, format!("registry: {e}\n")).into_response())
        }
        Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()),
    }
}

/// `GET /metrics`: open to loopback clients (a local Prometheus or node exporter); others need
/// a session or the API token.
async fn metrics(State(web): State<Web>, request: Request) -> Response {
    let loopback = client_ip(&request).is_loopback();
    let allowed = loopback
        || web.auth.bearer_ok(request.headers())
        || auth::cookie(request.headers(), SESSION_COOKIE)
            .and_then(|id| web.auth.session(id))
            .is_some();
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics are open to loopback clients only; others need the API token\n",
        )
            .into_response();
    }
    let registry = web.http.registry.clone();
    let counters = web.http.metrics.counters();
    let health = web.http.metrics.health().snapshot();
    let snapshot = blocking(move || {
        Ok(Snapshot {
            devices: registry.devices()?,
            releases: registry.releases()?,
            updates: registry.updates()?,
            channels: registry.channels()?,
            counters,
            rss_bytes: process_rss_bytes(),
            health,
            now: fwledger::unix_now(),
        })
    })
    .await;
    match snapshot {
        Ok(snapshot) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render(&snapshot),
        )
            .into_response(),
        Err(response) => response,
    }
}
