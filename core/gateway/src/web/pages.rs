//! The HTML pages and forms. maud escapes every interpolated value; the only raw markup is the
//! pairing QR code, an SVG the `qrcode` crate draws (rectangles only, no text).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use axum::extract::{FromRequest as _, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::registry::{
    Channel, ChannelHealth, Device, DeviceUpdate, Event, EventLevel, NewDevice, Release,
    ReleaseState, UpdateStage,
};
use crate::setup::{Gateway, PairingInfo, SetupError};

use super::auth::{
    self, clear_cookie, cookie, set_cookie, LoginRefused, Session, LOGIN_COOKIE, SESSION_COOKIE,
    SESSION_LIFETIME,
};
use super::{blocking, client_ip, Web};

const STYLE: &str = include_str!("style.css");

const NAV: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/devices", "Devices"),
    ("/releases", "Versions"),
    ("/updates", "Updates"),
    ("/channels", "Channels"),
    ("/repository", "Repository"),
    ("/events", "Events"),
    ("/config", "Configuration"),
];

// ----- formatting -----

fn timestamp(seconds: u64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).unwrap_or(0))
    else {
        return seconds.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn ago(now: u64, then: u64) -> String {
    let d = now.saturating_sub(then);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

pub(super) fn when(now: u64, time: Option<u64>) -> Markup {
    match time {
        Some(t) => html! { span title=(timestamp(t)) { (ago(now, t)) } },
        None => html! { span.muted { "never" } },
    }
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn short(hex: &str) -> Markup {
    html! { code title=(hex) { (hex.get(..12).unwrap_or(hex)) "…" } }
}

pub(super) fn badge(class: &str, text: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

fn release_badge(state: ReleaseState) -> Markup {
    let class = match state {
        ReleaseState::Verified => "good",
        ReleaseState::Failed | ReleaseState::Revoked => "bad",
        _ => "wait",
    };
    badge(class, state.as_str())
}

fn update_badge(state: UpdateStage) -> Markup {
    let class = match state {
        UpdateStage::Confirmed => "good",
        UpdateStage::Failed | UpdateStage::RolledBack => "bad",
        _ => "wait",
    };
    badge(class, state.as_str())
}

fn health_badge(health: ChannelHealth) -> Markup {
    let class = match health {
        ChannelHealth::Fresh => "good",
        ChannelHealth::Stale => "bad",
        _ => "wait",
    };
    badge(class, health.as_str())
}

fn level_badge(level: EventLevel) -> Markup {
    let class = match level {
        EventLevel::Info => "info",
        EventLevel::Warning => "wait",
        _ => "bad",
    };
    badge(class, level.as_str())
}

// ----- layout -----

fn layout(title: &str, active: &str, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fwledger gateway" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    span.brand { "fwledger gateway" }
                    nav {
                        @for (href, label) in NAV {
                            a href=(href) class=[(href == active).then_some("active")] { (label) }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(super) fn page(title: &str, active: &str, session: &Session, body: Markup) -> Response {
    Html(layout(title, active, session, body).into_string()).into_response()
}

pub(super) fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={ "notice " (kind) } role="status" { (text) } }
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

// ----- login -----

fn login_page(token: &str, message: Option<Markup>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · fwledger gateway" }
                link rel="stylesheet" href="/static/style.css";
            }
            body.login {
                main {
                    h1 { "fwledger gateway" }
                    @if let Some(message) = message { (message) }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(token);
                        label { "User" input name="user" value=(auth::ADMIN_USER) autocomplete="username" required; }
                        label { "Password" input type="password" name="password" autocomplete="current-password" required autofocus; }
                        button type="submit" { "Log in" }
                    }
                    p.muted { "The password was printed by " code { "fwledger gateway init" } "; "
                        code { "fwledger gateway password" } " sets a new one." }
                }
            }
        }
    }
    .into_string()
}

fn login_response(web: &Web, status: StatusCode, message: Option<Markup>) -> Response {
    let token = web.auth.new_login_token();
    let mut response = (status, Html(login_page(&token, message))).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            std::time::Duration::from_secs(30 * 60),
        ),
    );
    response
}

pub(crate) async fn login_form(State(web): State<Web>, headers: HeaderMap) -> Response {
    if cookie(&headers, SESSION_COOKIE).is_some_and(|id| web.auth.session(id).is_some()) {
        return Redirect::to("/").into_response();
    }
    let message = (!auth::admin_exists(&web.http.paths)).then(|| {
        notice(
            "bad",
            "No administrator password is set yet: run `fwledger gateway password` on the gateway.",
        )
    });
    login_response(&web, StatusCode::OK, message)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login(State(web): State<Web>, request: Request) -> Response {
    let client = client_ip(&request);
    let login_cookie = cookie(request.headers(), LOGIN_COOKIE).map(str::to_string);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return login_response(
            &web,
            StatusCode::BAD_REQUEST,
            Some(notice("bad", "Malformed form.")),
        );
    };
    if !web
        .auth
        .take_login_token(login_cookie.as_deref(), &form.csrf)
    {
        return login_response(
            &web,
            StatusCode::FORBIDDEN,
            Some(notice("bad", "The login form expired: please try again.")),
        );
    }
    match web.auth.login(client, form.user, form.password).await {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &session, SESSION_LIFETIME),
            );
            h.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE));
            response
        }
        Err(LoginRefused::TooMany(wait)) => login_response(
            &web,
            StatusCode::TOO_MANY_REQUESTS,
            Some(notice(
                "bad",
                &format!("Too many failed logins from your address: try again in {wait} s."),
            )),
        ),
        Err(LoginRefused::Wrong) => login_response(
            &web,
            StatusCode::UNAUTHORIZED,
            Some(notice("bad", "Wrong user name or password.")),
        ),
        Err(LoginRefused::NoAdmin) => login_response(
            &web,
            StatusCode::UNAUTHORIZED,
            Some(notice(
                "bad",
                "No administrator password is set yet: run `fwledger gateway password`.",
            )),
        ),
        Err(LoginRefused::Broken) => login_response(
            &web,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(notice(
                "bad",
                "The administrator account file cannot be read.",
            )),
        ),
    }
}

pub(crate) async fn logout(State(web): State<Web>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        web.auth.logout(id);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    response
}

// ----- read-only pages -----

fn latest_updates(updates: &[DeviceUpdate]) -> HashMap<&str, &DeviceUpdate> {
    // `updates` is sorted latest change first: the first per device wins.
    let mut latest = HashMap::new();
    for update in updates {
        latest.entry(update.device_id.as_str()).or_insert(update);
    }
    latest
}

fn device_rows(devices: &[Device], updates: &[DeviceUpdate], now: u64) -> Markup {
    let latest = latest_updates(updates);
    html! {
        table {
            thead { tr {
                th { "Device" } th { "Model" } th { "Hardware" } th { "Version" }
                th { "Security version" } th { "Last seen" } th { "Update" }
            } }
            tbody {
                @for d in devices {
                    tr {
                        td { a href={ "/devices/" (d.id) } { (d.id) } }
                        td { (d.model) }
                        td { (d.hardware) }
                        td { @if let Some(v) = &d.version { (v) } @else { span.muted { "unknown" } } }
                        td.num { (d.security_version) }
                        td {
                            @if d.online { (badge("good", "online")) " " } @else { (badge("off", "offline")) " " }
                            (when(now, d.last_seen))
                        }
                        td {
                            @if let Some(u) = latest.get(d.id.as_str()) {
                                (update_badge(u.state)) " " (u.version)
                                @if let Some(p) = u.progress { " · " (size(p)) }
                            } @else { span.muted { "none" } }
                        }
                    }
                }
            }
        }
    }
}

/// The health panel: each component the gateway depends on, ok or failing since when, the last
/// error and the next retry.
fn health_rows(health: &[crate::health::ComponentHealth], now: u64) -> Markup {
    html! {
        table #health {
            thead { tr { th { "Component" } th { "State" } th { "Since" } th { "Failed attempts" } th { "Next retry" } th { "Last error" } } }
            tbody {
                @for h in health {
                    tr data-component=(h.component.as_str()) data-state=(h.state) {
                        td { (h.component.as_str()) }
                        td { @if h.ok { (badge("good", "ok")) } @else { (badge("bad", "failing")) } }
                        td { (when(now, Some(h.since))) }
                        td { (h.failures) }
                        td { @match h.next_retry {
                            Some(t) if t > now => { "in " (t - now) " s" }
                            Some(_) => "now",
                            None => "—",
                        } }
                        td { (h.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn event_rows(events: &[Event], now: u64) -> Markup {
    html! {
        table.events {
            thead { tr { th { "#" } th { "When" } th { "Level" } th { "Event" } } }
            tbody {
                @for e in events {
                    tr class={ "level-" (e.level.as_str()) } {
                        td.num { (e.id) }
                        td { span title=(ago(now, e.time)) { (timestamp(e.time)) } }
                        td { (level_badge(e.level)) }
                        td.message { (e.message) }
                    }
                }
            }
        }
    }
}

pub(crate) async fn overview(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    let data = blocking(move || {
        Ok((
            registry.devices()?,
            registry.releases()?,
            registry.updates()?,
            registry.channels()?,
            registry.events(10)?,
        ))
    })
    .await;
    let (devices, releases, updates, channels, events) = match data {
        Ok(data) => data,
        Err(response) => return response,
    };
    let now = fwledger::unix_now();
    let online = devices.iter().filter(|d| d.online).count();
    let verified = releases
        .iter()
        .filter(|r| r.state == ReleaseState::Verified)
        .count();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &updates {
        *by_state.entry(u.state.as_str()).or_default() += 1;
    }
    let fresh = channels
        .iter()
        .filter(|c| c.freshness == ChannelHealth::Fresh)
        .count();
    let failing = channels.iter().filter(|c| c.error.is_some()).count();
    let counters = web.http.metrics.counters();
    let body = html! {
        section.cards {
            div.card { h2 { "Devices" } p.big { (devices.len()) } p { (online) " online" } }
            div.card { h2 { "Versions" } p.big { (releases.len()) } p { (verified) " verified" } }
            div.card {
                h2 { "Updates" } p.big { (updates.len()) }
                p { @for (state, n) in &by_state { (n) " " (state) " " } }
            }
            div.card {
                h2 { "Channels" } p.big { (channels.len()) }
                p { (fresh) " fresh" @if failing > 0 { " · " (failing) " failing" } }
            }
            div.card {
                h2 { "Broker" }
                p.big { @match counters.mqtt_connected {
                    Some(true) => (badge("good", "connected")),
                    Some(false) => (badge("bad", "disconnected")),
                    None => (badge("off", "not running")),
                } }
                p { (counters.notices_sent) " notices · " (counters.downloads) " downloads" }
            }
        }
        h2 { "Health" }
        (health_rows(&web.http.metrics.health().snapshot(), now))
        h2 { "Latest events" }
        (event_rows(&events, now))
        p { a href="/events" { "All events" } }
    };
    page("Overview", "/", &session, body)
}

pub(crate) async fn devices(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    let (devices, updates) =
        match blocking(move || Ok((registry.devices()?, registry.updates()?))).await {
            Ok(data) => data,
            Err(response) => return response,
        };
    let now = fwledger::unix_now();
    let body = html! {
        p { (devices.len()) " registered · " a href="/config#add-device" { "Add a device" } }
        @if devices.is_empty() {
            p.muted { "No devices yet." }
        } @else {
            (device_rows(&devices, &updates, now))
        }
    };
    page("Devices", "/devices", &session, body)
}

/// Where the web UI keeps the bundles of devices it added (0700; each bundle holds a device key).
pub(crate) fn bundles_dir(web: &Web) -> PathBuf {
    web.http.paths.root.join("bundles")
}

fn bundle_path(web: &Web, id: &str) -> Option<PathBuf> {
    fwledger_link::valid_device_id(id).then(|| bundles_dir(web).join(format!("{id}.json")))
}

fn qr_svg(info: &PairingInfo) -> Option<String> {
    let code = qrcode::QrCode::new(info.to_json().as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

#[derive(Deserialize)]
pub(crate) struct AddedQuery {
    added: Option<u8>,
}

pub(crate) async fn device(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(query): Query<AddedQuery>,
) -> Response {
    let registry = web.http.registry.clone();
    let lookup = id.clone();
    let found = blocking(move || {
        Ok(match registry.device(&lookup)? {
            Some(device) => Some((device, registry.device_updates(&lookup)?)),
            None => None,
        })
    })
    .await;
    let (device, updates) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            let body =
                html! { p { "No device with this id. " a href="/devices" { "All devices" } } };
            let mut response = page("Unknown device", "/devices", &session, body);
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
        Err(response) => return response,
    };
    let bundle = bundle_path(&web, &device.id).and_then(|p| std::fs::read(p).ok());
    let pairing = bundle.as_ref().map(|bytes| PairingInfo {
        device_id: device.id.clone(),
        http_url: web.http.config.http_url(),
        bundle_sha256: hex::encode(Sha256::digest(bytes)),
    });
    let now = fwledger::unix_now();
    let body = html! {
        @if query.added == Some(1) {
            (notice("good", "Device added: its certificate was issued. Download its provisioning bundle below and copy it to the device."))
        }
        dl.facts {
            dt { "Model" } dd { (device.model) }
            dt { "Hardware" } dd { (device.hardware) }
            dt { "Group" } dd { @if let Some(g) = &device.group { (g) } @else { span.muted { "none" } } }
            dt { "MAC" } dd { code { (device.mac) } }
            dt { "Version" } dd { @if let Some(v) = &device.version { (v) } @else { span.muted { "not reported yet" } } }
            dt { "Image SHA-256" } dd { @if let Some(h) = &device.sha256 { (short(h)) } @else { "–" } }
            dt { "Security version" } dd { (device.security_version) }
            dt { "State" } dd { @if device.online { (badge("good", "online")) } @else { (badge("off", "offline")) } }
            dt { "Last seen" } dd { (when(now, device.last_seen)) }
            dt { "Added" } dd { (timestamp(device.added)) }
            dt { "Notice offers" } dd { @if let Some(r) = device.notice_release { "release #" (r) } @else { "nothing" } }
        }
        h2 { "Provisioning bundle" }
        @if let Some(pairing) = &pairing {
            div.pairing {
                div {
                    p { a.button href={ "/devices/" (device.id) "/bundle" } download { "Download bundle" } }
                    p.muted { "The bundle holds the device's private key: copy it to the device only. SHA-256 " (short(&pairing.bundle_sha256)) }
                }
                @if let Some(svg) = qr_svg(pairing) {
                    figure.qr {
                        (PreEscaped(svg))
                        figcaption { "Pairing code (device id, gateway address, bundle hash)" }
                    }
                }
            }
        } @else {
            p.muted { "This device was added from the command line: its bundle was written where " code { "fwledger gateway device add" } " was told to." }
        }
        h2 { "Updates" }
        @if updates.is_empty() {
            p.muted { "No update offered yet." }
        } @else {
            (update_rows(&updates, now, false))
        }
    };
    page(&format!("Device {}", device.id), "/devices", &session, body)
}

pub(crate) async fn bundle(State(web): State<Web>, Path(id): Path<String>) -> Response {
    let Some(path) = bundle_path(&web, &id) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let disposition = format!("attachment; filename=\"{id}.json\"");
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_str(&disposition)
                            .unwrap_or(HeaderValue::from_static("attachment")),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "no bundle kept for this device\n").into_response(),
    }
}

fn release_rows(releases: &[&Release], now: u64) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Version" } th { "Security version" } th { "Hardware" } th { "Size" }
                th { "SHA-256" } th { "CID" } th { "State" } th { "Revoked" } th { "Received" }
            } }
            tbody {
                @for r in releases {
                    tr {
                        td { (r.version) }
                        td.num { (r.security_version) }
                        td { (r.hardware.join(", ")) }
                        td.num title={ (r.size) " bytes" } { (size(r.size)) }
                        td { (short(&r.sha256)) }
                        td { (short(&r.cid)) }
                        td {
                            (release_badge(r.state))
                            @if let Some(reason) = &r.reason { br; small.muted { (reason) } }
                        }
                        td { @if r.state == ReleaseState::Revoked { (badge("bad", "revoked")) } @else { "no" } }
                        td { (when(now, Some(r.received))) }
                    }
                }
            }
        }
    }
}

pub(crate) async fn releases(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    let (releases, (rollouts, default)) = match blocking(move || {
        Ok((registry.releases()?, super::rollout::load(&registry)?))
    })
    .await
    {
        Ok(data) => data,
        Err(response) => return response,
    };
    let mut by_model: BTreeMap<(&str, &str), Vec<&Release>> = BTreeMap::new();
    for r in &releases {
        by_model
            .entry((r.vendor.as_str(), r.model.as_str()))
            .or_default()
            .push(r);
    }
    let now = fwledger::unix_now();
    let body = html! {
        @if releases.is_empty() {
            p.muted { "No release announced on any followed channel yet." }
        }
        (super::rollout::panel(&rollouts, &releases, default.as_ref(), &session.csrf, now))
        @for ((vendor, model), list) in &by_model {
            h2 { (model) " " small.muted { "by " (vendor) } }
            (release_rows(list, now))
        }
    };
    page("Versions", "/releases", &session, body)
}

fn update_rows(updates: &[DeviceUpdate], now: u64, with_device: bool) -> Markup {
    html! {
        table {
            thead { tr {
                @if with_device { th { "Device" } }
                th { "Model" } th { "Version" } th { "State" } th { "Progress" } th { "Reason" }
                th { "Notified" } th { "Last change" }
            } }
            tbody {
                @for u in updates {
                    tr {
                        @if with_device { td { a href={ "/devices/" (u.device_id) } { (u.device_id) } } }
                        td { (u.model) }
                        td { (u.version) }
                        td { (update_badge(u.state)) }
                        td.num { @if let Some(p) = u.progress { (size(p)) } @else { "–" } }
                        td { @if let Some(r) = &u.reason { (r) } @else { "–" } }
                        td { (when(now, u.notified_at)) }
                        td { span title=(timestamp(u.updated_at)) { (ago(now, u.updated_at)) } }
                    }
                }
            }
        }
    }
}

pub(crate) async fn updates(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    let updates = match blocking(move || registry.updates()).await {
        Ok(updates) => updates,
        Err(response) => return response,
    };
    let now = fwledger::unix_now();
    let body = html! {
        p.muted { "One row per device and release: notified → downloading → installing → rebooting → confirmed, or failed / rolled back with the device's reason." }
        @if updates.is_empty() { p.muted { "No update offered yet." } } @else { (update_rows(&updates, now, true)) }
    };
    page("Update state", "/updates", &session, body)
}

fn channel_rows(channels: &[Channel], now: u64) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Vendor" } th { "Channel" } th { "Position" } th { "Next seq" } th { "Freshness" }
                th { "Last heartbeat" } th { "Valid until" } th { "Last message" } th { "Error" }
            } }
            tbody {
                @for c in channels {
                    tr {
                        td { (c.vendor) }
                        td { (short(&c.id)) }
                        td.num { (c.cursor) }
                        td.num { (c.next_seq) }
                        td { (health_badge(c.freshness)) }
                        td { (when(now, c.heartbeat_time)) }
                        td { @if let Some(t) = c.heartbeat_valid_until { (timestamp(t)) } @else { "–" } }
                        td { (when(now, c.last_message)) }
                        td { @if let Some(e) = &c.error { span.error { (e) } } @else { "–" } }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SubscribedQuery {
    subscribed: Option<u8>,
}

pub(crate) async fn channels(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Query(query): Query<SubscribedQuery>,
) -> Response {
    let registry = web.http.registry.clone();
    let channels = match blocking(move || registry.channels()).await {
        Ok(channels) => channels,
        Err(response) => return response,
    };
    let now = fwledger::unix_now();
    let body = html! {
        @if query.subscribed == Some(1) {
            (notice("good", "Subscribed: the gateway starts following the channel within seconds."))
        }
        p { (channels.len()) " followed · " a href="/config#subscribe" { "Subscribe a channel" } }
        @if channels.is_empty() { p.muted { "No channel yet." } } @else { (channel_rows(&channels, now)) }
    };
    page("Channels", "/channels", &session, body)
}

#[derive(Deserialize)]
pub(crate) struct RepositoryQuery {
    check: Option<u8>,
}

struct RepositoryFile {
    name: String,
    size: u64,
    partial: bool,
    /// Re-hashed on request: whether the content's SHA-256 is its name.
    hash_ok: Option<bool>,
}

fn list_repository(dir: &std::path::Path, check: bool) -> Vec<RepositoryFile> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let partial = name.starts_with('.');
        let hash_ok = (check && !partial).then(|| {
            let mut hasher = Sha256::new();
            std::fs::File::open(entry.path())
                .and_then(|mut f| std::io::copy(&mut f, &mut hasher))
                .is_ok()
                && hex::encode(hasher.finalize()) == name
        });
        files.push(RepositoryFile {
            name,
            size: meta.len(),
            partial,
            hash_ok,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

pub(crate) async fn repository(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Query(query): Query<RepositoryQuery>,
) -> Response {
    let registry = web.http.registry.clone();
    let dir = web.http.paths.repository();
    let check = query.check == Some(1);
    let data = blocking(move || Ok((registry.releases()?, list_repository(&dir, check)))).await;
    let (releases, files) = match data {
        Ok(data) => data,
        Err(response) => return response,
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let body = html! {
        p {
            (files.len()) " files, " (size(total)) " · "
            @if check { "contents re-hashed just now" } @else { a href="/repository?check=1" { "Re-hash every file" } }
        }
        table {
            thead { tr { th { "File (SHA-256)" } th { "Size" } th { "Release" } th { "Verified" } } }
            tbody {
                @for f in &files {
                    @let matching: Vec<&Release> = releases.iter().filter(|r| r.sha256 == f.name).collect();
                    tr {
                        td { (short(&f.name)) }
                        td.num title={ (f.size) " bytes" } { (size(f.size)) }
                        td {
                            @if f.partial { span.muted { "download in progress (temporary file)" } }
                            @for r in &matching { (r.model) " " (r.version) " " (release_badge(r.state)) " " }
                        }
                        td {
                            @let registry_ok = matching.iter().any(|r| r.state == ReleaseState::Verified && r.size == f.size);
                            @match (f.partial, f.hash_ok, registry_ok) {
                                (true, _, _) => (badge("wait", "partial")),
                                (_, Some(false), _) => (badge("bad", "SHA-256 mismatch")),
                                (_, Some(true), true) => (badge("good", "verified, SHA-256 re-checked")),
                                (_, None, true) => (badge("good", "verified")),
                                _ => (badge("wait", "not verified")),
                            }
                        }
                    }
                }
            }
        }
    };
    page("Repository", "/repository", &session, body)
}

pub(crate) async fn events(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    let events = match blocking(move || registry.events(200)).await {
        Ok(events) => events,
        Err(response) => return response,
    };
    let now = fwledger::unix_now();
    let body = html! {
        p.muted { "The latest 200 events, newest first. " code { "/api/events?after=N" } " reads them as JSON." }
        (event_rows(&events, now))
    };
    page("Event log", "/events", &session, body)
}

// ----- configuration -----

fn config_page(
    web: &Web,
    session: &Session,
    devices: &[Device],
    message: Option<Markup>,
    form: Option<&AddDeviceForm>,
) -> Response {
    let with_bundle: Vec<&Device> = devices
        .iter()
        .filter(|d| bundle_path(web, &d.id).is_some_and(|p| p.is_file()))
        .collect();
    let value = |f: fn(&AddDeviceForm) -> &str| form.map(f).unwrap_or_default().to_string();
    let body = html! {
        @if let Some(message) = message { (message) }
        section #subscribe {
            h2 { "Subscribe a channel" }
            p.muted { "Paste the subscription token the vendor issued for this gateway (" code { "fwledger vendor token" } ")." }
            form method="post" action="/config/subscribe" {
                input type="hidden" name="csrf" value=(session.csrf);
                label { "Token" textarea name="token" rows="4" required spellcheck="false" {} }
                button type="submit" { "Subscribe" }
            }
        }
        section #add-device {
            h2 { "Add a device" }
            p.muted { "Issues a device certificate (CN = device id) from the gateway CA and a provisioning bundle that trusts every subscribed vendor." }
            form.grid method="post" action="/config/devices" {
                input type="hidden" name="csrf" value=(session.csrf);
                label { "Device id" input name="id" required pattern="[A-Za-z0-9._-]{1,64}" value=(value(|f| &f.id)) placeholder="lamp-01"; }
                label { "MAC address" input name="mac" required value=(value(|f| &f.mac)) placeholder="24:0a:c4:12:34:56"; }
                label { "Model" input name="model" required value=(value(|f| &f.model)) placeholder="lamp"; }
                label { "Hardware revision" input name="hardware" required value=(value(|f| &f.hardware)) placeholder="rev-b"; }
                button type="submit" { "Add device" }
            }
        }
        section #bundles {
            h2 { "Download a bundle" }
            @if with_bundle.is_empty() {
                p.muted { "No bundle kept yet: devices added here keep theirs on the gateway." }
            } @else {
                ul {
                    @for d in &with_bundle {
                        li { a href={ "/devices/" (d.id) "/bundle" } download { (d.id) ".json" } " · " a href={ "/devices/" (d.id) } { "pairing code" } }
                    }
                }
            }
        }
        section #access {
            h2 { "Access" }
            p { "API: " code { "curl -H \"Authorization: Bearer $(cat " (auth::api_token_file(&web.http.paths).display()) ")\" " (web.http.config.http_url()) "/api/devices" } }
            p { "Metrics: " code { "/metrics" } " is open to loopback clients." }
        }
    };
    page("Configuration", "/config", session, body)
}

pub(crate) async fn config(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> Response {
    let registry = web.http.registry.clone();
    match blocking(move || registry.devices()).await {
        Ok(devices) => config_page(&web, &session, &devices, None, None),
        Err(response) => response,
    }
}

async fn config_error(
    web: &Web,
    session: &Session,
    message: &str,
    form: Option<&AddDeviceForm>,
) -> Response {
    let registry = web.http.registry.clone();
    let devices = blocking(move || registry.devices())
        .await
        .unwrap_or_default();
    let mut response = config_page(web, session, &devices, Some(notice("bad", message)), form);
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// The gateway's set-up operations over the running server's files and registry.
fn gateway(web: &Web) -> Gateway {
    Gateway {
        home: web.http.home.clone(),
        paths: web.http.paths.clone(),
        config: (*web.http.config).clone(),
        registry: web.http.registry.clone(),
    }
}

#[derive(Deserialize)]
pub(crate) struct SubscribeForm {
    #[serde(default)]
    token: String,
}

pub(crate) async fn subscribe(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Form(form): Form<SubscribeForm>,
) -> Response {
    let gateway = gateway(&web);
    let token = form.token.trim().to_string();
    match tokio::task::spawn_blocking(move || gateway.subscribe(&token)).await {
        Ok(Ok(_)) => Redirect::to("/channels?subscribed=1").into_response(),
        Ok(Err(e)) => config_error(&web, &session, &format!("Not subscribed: {e}"), None).await,
        Err(_) => config_error(&web, &session, "Not subscribed: internal error", None).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct AddDeviceForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    hardware: String,
}

fn add_and_keep_bundle(
    gateway: &Gateway,
    dir: PathBuf,
    device: NewDevice,
) -> Result<(), SetupError> {
    let id = device.id.clone();
    let bundle = gateway.add_device(&device)?;
    std::fs::create_dir_all(&dir).map_err(|source| SetupError::Io {
        path: dir.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| SetupError::Io {
                path: dir.clone(),
                source,
            },
        )?;
    }
    gateway.write_bundle(&bundle, &dir.join(format!("{id}.json")))?;
    Ok(())
}

pub(crate) async fn add_device(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Form(form): Form<AddDeviceForm>,
) -> Response {
    let gateway = gateway(&web);
    let dir = bundles_dir(&web);
    let device = NewDevice {
        id: form.id.trim().to_string(),
        mac: form.mac.trim().to_string(),
        model: form.model.trim().to_string(),
        hardware: form.hardware.trim().to_string(),
    };
    let id = device.id.clone();
    match tokio::task::spawn_blocking(move || add_and_keep_bundle(&gateway, dir, device)).await {
        // `add_device` accepted the id, so it is URL-safe (A-Z a-z 0-9 . _ -).
        Ok(Ok(())) => Redirect::to(&format!("/devices/{id}?added=1")).into_response(),
        Ok(Err(e)) => {
            config_error(
                &web,
                &session,
                &format!("Device not added: {e}"),
                Some(&form),
            )
            .await
        }
        Err(_) => {
            config_error(
                &web,
                &session,
                "Device not added: internal error",
                Some(&form),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp(1_764_075_444), "2025-11-25 12:57:24 UTC");
        assert_eq!(ago(100, 40), "60 s ago".replace("60 s", "1 min"));
        assert_eq!(ago(100, 100), "0 s ago");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn values_are_escaped() {
        let markup = html! { td { ("<script>alert(1)</script>\"&") } };
        assert_eq!(
            markup.into_string(),
            "<td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;</td>"
        );
    }
}
