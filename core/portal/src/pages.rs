//! The HTML pages and form handlers. maud escapes every interpolated value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequest as _, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use fwledger::{ChannelEntry, ReleaseSpec, VendorError};
use fwledger_webauth::{clear_cookie, cookie, set_cookie, LoginRefused, Session, SESSION_LIFETIME};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::multipart::{self, Multipart, MultipartError};
use crate::{Pending, Portal};

const GATEWAY_STYLE: &str = include_str!("../../gateway/src/web/style.css");
const PORTAL_STYLE: &str = "\
.steps td.num { width: 8rem; }\n\
progress { width: 100%; max-width: 36rem; height: 1rem; }\n\
textarea.token { height: 8rem; }\n\
form.inline { display: inline; }\n\
form.inline input { display: inline; width: 12rem; margin: 0 .3rem; }\n\
input.check { display: inline; width: auto; }\n";

const NAV: [(&str, &str); 4] = [
    ("/", "Channel"),
    ("/upload", "New release"),
    ("/gateways", "Gateways"),
    ("/keys", "Keys"),
];

/// Largest text field of the upload form.
const MAX_TEXT_FIELD: usize = 16 * 1024;
/// Most fields in the upload form.
const MAX_FIELDS: usize = 32;

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

fn notice(class: &str, text: &str) -> Markup {
    html! { p.notice.(class) role="status" { (text) } }
}

fn page(title: &str, session: Option<&Session>, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fwledger vendor portal" }
                link rel="stylesheet" href="/static/style.css";
            }
            body.login[session.is_none()] {
                @if let Some(session) = session {
                    header {
                        span.brand { "fwledger vendor portal" }
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
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// The answer to a `POST` without the session's CSRF token.
pub(crate) fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token: reload the page and try again\n",
    )
        .into_response()
}

fn error_status(e: &VendorError) -> StatusCode {
    match e {
        VendorError::InvalidRelease(_)
        | VendorError::UnknownRelease(_)
        | VendorError::UnknownReader(_) => StatusCode::BAD_REQUEST,
        VendorError::AlreadyPublished { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_page(session: &Session, active: &str, status: StatusCode, message: &str) -> Response {
    respond(
        status,
        page(
            "Something went wrong",
            Some(session),
            active,
            html! { (notice("bad", message)) p { a href=(active) { "Back" } } },
        ),
    )
}

fn vendor_error(session: &Session, active: &str, e: &VendorError) -> Response {
    error_page(session, active, error_status(e), &e.to_string())
}

/// `GET /static/style.css`: the gateway UI's stylesheet plus a few portal rules.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        format!("{GATEWAY_STYLE}{PORTAL_STYLE}"),
    )
        .into_response()
}

// ----- login -----

fn login_response(portal: &Portal, status: StatusCode, message: Option<Markup>) -> Response {
    let token = portal.auth.new_login_token();
    let body = html! {
        @if let Some(message) = message { (message) }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            label { "User" input name="user" value="admin" autocomplete="username" required; }
            label { "Password" input type="password" name="password" autocomplete="current-password" required autofocus; }
            button type="submit" { "Log in" }
        }
        p.muted { "The password was printed by the first " code { "fwledger vendor serve" }
            "; " code { "fwledger vendor portal-password" } " sets a new one." }
    };
    let mut response = respond(status, page("Log in", None, "", body));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            portal.auth.login_cookie(),
            &token,
            fwledger_webauth::LOGIN_TOKEN_LIFETIME,
        ),
    );
    response
}

/// `GET /login`.
pub(crate) async fn login_form(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if portal.auth.session_of(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    let message = (!portal.auth.admin_exists()).then(|| {
        notice(
            "bad",
            "No administrator password is set yet: run `fwledger vendor portal-password`.",
        )
    });
    login_response(&portal, StatusCode::OK, message)
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

fn client_ip(request: &Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// `POST /login`.
pub(crate) async fn login(State(portal): State<Portal>, request: Request) -> Response {
    let client = client_ip(&request);
    let login_cookie = cookie(request.headers(), portal.auth.login_cookie()).map(str::to_string);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return login_response(
            &portal,
            StatusCode::BAD_REQUEST,
            Some(notice("bad", "Malformed form.")),
        );
    };
    if !portal
        .auth
        .take_login_token(login_cookie.as_deref(), &form.csrf)
    {
        return login_response(
            &portal,
            StatusCode::FORBIDDEN,
            Some(notice("bad", "The login form expired: please try again.")),
        );
    }
    let (status, message) = match portal.auth.login(client, form.user, form.password).await {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(portal.auth.session_cookie(), &session, SESSION_LIFETIME),
            );
            h.append(header::SET_COOKIE, clear_cookie(portal.auth.login_cookie()));
            return response;
        }
        Err(LoginRefused::TooMany(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed logins from your address: try again in {wait} s."),
        ),
        Err(LoginRefused::Wrong) => (
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.".to_string(),
        ),
        Err(LoginRefused::NoAdmin) => (
            StatusCode::UNAUTHORIZED,
            "No administrator password is set yet: run `fwledger vendor portal-password`."
                .to_string(),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The password file cannot be read.".to_string(),
        ),
    };
    login_response(&portal, status, Some(notice("bad", &message)))
}

/// `POST /logout`.
pub(crate) async fn logout(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, portal.auth.session_cookie()) {
        portal.auth.logout(id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        clear_cookie(portal.auth.session_cookie()),
    );
    response
}

// ----- channel history -----

/// Heartbeat status of a channel: the newest heartbeat and whether it is still valid.
fn heartbeat_status(entries: &[ChannelEntry], now: u64) -> Markup {
    let last = entries.iter().rev().find_map(|e| match e {
        ChannelEntry::Heartbeat {
            seq,
            time,
            valid_until,
            ..
        } => Some((*seq, *time, *valid_until)),
        _ => None,
    });
    match last {
        None => html! {
            span.badge #heartbeat-status data-status="none" { "none" }
            " No heartbeat yet: followers cannot tell a live channel from a frozen one."
        },
        Some((seq, time, until)) if until > now => html! {
            span.badge.good #heartbeat-status data-status="fresh" { "fresh" }
            " seq " (seq) ", written " (timestamp(time)) ", valid until " (timestamp(until))
        },
        Some((seq, time, until)) => html! {
            span.badge.bad #heartbeat-status data-status="stale" { "stale" }
            " seq " (seq) ", written " (timestamp(time)) ", expired " (timestamp(until))
        },
    }
}

fn entry_row(entry: &ChannelEntry, session: &Session, revoked: &[(String, String)]) -> Markup {
    match entry {
        ChannelEntry::Release {
            seq,
            epoch,
            model,
            hardware,
            version,
            security_version,
            size: bytes,
            sha256,
            cid,
            expires,
            key_generation,
            ..
        } => {
            let withdrawn = revoked.iter().any(|(m, v)| m == model && v == version);
            html! {
                tr.release data-version=(version) {
                    td.num { (seq) } td.num { (epoch) }
                    td { span.badge.info { "release" } }
                    td {
                        strong { (model) " " (version) }
                        " · hw " (hardware.join(", ")) " · security version " (security_version)
                        " · " (size(*bytes)) " · key generation " (key_generation)
                        @if let Some(t) = expires { " · expires " (timestamp(*t)) }
                        br; code { "sha256 " (sha256) } br; code { "cid " (cid) }
                    }
                    td {
                        @if withdrawn { span.badge.bad { "revoked" } } @else {
                            form.inline method="post" action="/releases/revoke" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="model" value=(model);
                                input type="hidden" name="version" value=(version);
                                input name="reason" placeholder="reason" aria-label="reason";
                                button type="submit" { "Revoke" }
                            }
                        }
                    }
                }
            }
        }
        ChannelEntry::Revoke {
            seq,
            epoch,
            model,
            version,
            reason,
        } => html! {
            tr { td.num { (seq) } td.num { (epoch) } td { span.badge.bad { "revoke" } }
                 td { (model) " " (version) ": " (reason) } td {} }
        },
        ChannelEntry::Heartbeat {
            seq,
            epoch,
            time,
            valid_until,
        } => html! {
            tr { td.num { (seq) } td.num { (epoch) } td { span.badge { "heartbeat" } }
                 td { (timestamp(*time)) ", valid until " (timestamp(*valid_until)) } td {} }
        },
        ChannelEntry::Keyload { seq, epoch, .. } => html! {
            tr { td.num { (seq) } td.num { (epoch) } td { span.badge.wait { "keyload" } }
                 td { "new epoch " (epoch) } td {} }
        },
        ChannelEntry::Rejected {
            position,
            check,
            error,
        } => html! {
            tr { td.num { (position) } td {} td { span.badge.bad { "rejected" } }
                 td.message { (check) ": " (error) } td {} }
        },
        other => html! {
            tr { td {} td {} td {} td { (other.line()) } td {} }
        },
    }
}

async fn history_page(portal: &Portal, session: &Session, message: Option<Markup>) -> Response {
    let entries = {
        let vendor = match portal.vendor().await {
            Ok(vendor) => vendor,
            Err(e) => return vendor_error(session, "/", &e),
        };
        vendor.history().await
    };
    let entries = match entries {
        Ok(entries) => entries,
        Err(e) => return vendor_error(session, "/", &e),
    };
    let now = fwledger::unix_now();
    let revoked: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| match e {
            ChannelEntry::Revoke { model, version, .. } => Some((model.clone(), version.clone())),
            _ => None,
        })
        .collect();
    let body = html! {
        @if let Some(message) = message { (message) }
        section {
            h2 { "Heartbeat" }
            p { (heartbeat_status(&entries, now)) }
            form.inline method="post" action="/heartbeat" {
                input type="hidden" name="csrf" value=(session.csrf);
                label.inline { "valid for " input name="valid" value="1h" aria-label="validity"; }
                button type="submit" { "Append heartbeat" }
            }
        }
        h2 { "Messages (" (entries.len()) ")" }
        @if entries.is_empty() {
            p.muted { "The channel is empty. " a href="/upload" { "Publish a release" } "." }
        } @else {
            table #history {
                thead { tr { th { "seq" } th { "epoch" } th { "kind" } th { "what" } th {} } }
                tbody {
                    @for entry in entries.iter().rev() { (entry_row(entry, session, &revoked)) }
                }
            }
        }
    };
    respond(StatusCode::OK, page("Channel", Some(session), "/", body))
}

/// `GET /`: the channel's messages and heartbeat status.
pub(crate) async fn history(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    history_page(&portal, &session, None).await
}

#[derive(Deserialize)]
pub(crate) struct HeartbeatForm {
    #[serde(default)]
    valid: String,
}

/// `POST /heartbeat`.
pub(crate) async fn heartbeat(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Form(form): Form<HeartbeatForm>,
) -> Response {
    let valid = if form.valid.trim().is_empty() {
        "1h"
    } else {
        form.valid.trim()
    };
    let Some(validity) = fwledger::parse_duration(valid) else {
        return error_page(
            &session,
            "/",
            StatusCode::BAD_REQUEST,
            &format!("{valid:?} is not a duration (e.g. 30m, 1h, 1d)"),
        );
    };
    let result = match portal.vendor().await {
        Ok(mut vendor) => vendor.heartbeat(validity).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(seq) => {
            let message = notice("good", &format!("Heartbeat appended at seq {seq}."));
            history_page(&portal, &session, Some(message)).await
        }
        Err(e) => vendor_error(&session, "/", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    model: String,
    version: String,
    #[serde(default)]
    reason: String,
}

/// `POST /releases/revoke`.
pub(crate) async fn revoke(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let model = Some(form.model.trim()).filter(|m| !m.is_empty());
    let reason = match form.reason.trim() {
        "" => "withdrawn by the vendor",
        r => r,
    };
    let result = match portal.vendor().await {
        Ok(mut vendor) => vendor.revoke(model, form.version.trim(), reason).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(seq) => {
            let message = notice(
                "good",
                &format!("Release {} revoked at seq {seq}.", form.version.trim()),
            );
            history_page(&portal, &session, Some(message)).await
        }
        Err(e) => vendor_error(&session, "/", &e),
    }
}

// ----- upload, preview, publish -----

/// `GET /upload`.
pub(crate) async fn upload_form(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    let body = html! {
        p { "The image is added to the content store and the manifest signed with the release key; "
            "nothing is announced until you approve the preview. Largest image: "
            (size(portal.max_upload)) "." }
        form #upload method="post" action="/upload" enctype="multipart/form-data" {
            // First field: the CSRF token is checked before the image is written.
            input type="hidden" name="csrf" value=(session.csrf);
            div.grid {
                label { "Model" input name="model" required placeholder="sensor-v2"; }
                label { "Hardware revisions (comma-separated)" input name="hw" required placeholder="rev-a, rev-b"; }
                label { "Version" input name="version" required placeholder="1.4.0"; }
                label { "Security version" input name="security_version" type="number" min="0" value="0"; }
                label { "Expires after (optional, e.g. 90d)" input name="expires" placeholder="90d"; }
                label { "Prerequisite version (optional)" input name="prerequisite" placeholder="1.2.0"; }
            }
            label { "Release notes (optional)" textarea name="notes" rows="4" {} }
            label { "Firmware image" input type="file" name="file" required; }
            button type="submit" { "Upload and preview" }
        }
    };
    respond(
        StatusCode::OK,
        page("New release", Some(&session), "/upload", body),
    )
}

/// An upload being written; removed unless kept.
struct TempUpload {
    path: std::path::PathBuf,
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn too_large(limit: u64) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Html(format!(
            "<!DOCTYPE html><p>The image is larger than this portal accepts ({}). \
             Start the portal with a larger <code>--max-upload</code>.</p>",
            size(limit)
        )),
    )
        .into_response()
}

fn bad_upload(session: &Session, message: &str) -> Response {
    error_page(session, "/upload", StatusCode::BAD_REQUEST, message)
}

fn multipart_error(session: &Session, e: &MultipartError) -> Response {
    bad_upload(session, &e.to_string())
}

/// `POST /upload`: streams the image to `HOME/vendor/uploads`, then prepares the release.
pub(crate) async fn upload(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let Some(boundary) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary)
    else {
        return bad_upload(&session, "the upload must be multipart/form-data");
    };
    // Refuse early when the client announces too much (the form fields add a few KiB).
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > portal.max_upload.saturating_add(MAX_FIELDS as u64 * 1024)) {
        return too_large(portal.max_upload);
    }
    let mut form = Multipart::new(request.into_body().into_data_stream(), &boundary);
    // The CSRF token must come first, before any byte is written.
    match form.next_field().await {
        Ok(Some(field)) if field.name == "csrf" => {}
        Ok(_) => return csrf_refused(),
        Err(e) => return multipart_error(&session, &e),
    }
    match form.text("csrf", 256).await {
        Ok(token) if fwledger_webauth::secrets_equal(&token, &session.csrf) => {}
        Ok(_) => return csrf_refused(),
        Err(e) => return multipart_error(&session, &e),
    }
    if let Err(e) = tokio::fs::create_dir_all(&portal.uploads).await {
        return error_page(
            &session,
            "/upload",
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{}: {e}", portal.uploads.display()),
        );
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut image: Option<(TempUpload, String, u64)> = None;
    let mut count = 0;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return multipart_error(&session, &e),
        };
        count += 1;
        if count > MAX_FIELDS {
            return bad_upload(&session, "too many form fields");
        }
        if field.name != "file" {
            match form.text(&field.name, MAX_TEXT_FIELD).await {
                Ok(text) => {
                    fields.insert(field.name, text);
                }
                Err(e) => return multipart_error(&session, &e),
            }
            continue;
        }
        if image.is_some() {
            return bad_upload(&session, "only one image per release");
        }
        let temp = TempUpload {
            path: portal
                .uploads
                .join(format!("upload-{}.part", fwledger_webauth::random_hex(16))),
        };
        let mut file = match tokio::fs::File::create(&temp.path).await {
            Ok(file) => file,
            Err(e) => {
                return error_page(
                    &session,
                    "/upload",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("{}: {e}", temp.path.display()),
                )
            }
        };
        let mut written: u64 = 0;
        loop {
            let chunk = match form.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return multipart_error(&session, &e),
            };
            written = written.saturating_add(chunk.len() as u64);
            if written > portal.max_upload {
                // `temp` is dropped here: nothing stays on disk.
                return too_large(portal.max_upload);
            }
            if let Err(e) = file.write_all(&chunk).await {
                return error_page(
                    &session,
                    "/upload",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("writing the upload: {e}"),
                );
            }
        }
        if let Err(e) = file.flush().await {
            return error_page(
                &session,
                "/upload",
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("writing the upload: {e}"),
            );
        }
        image = Some((temp, field.file_name.unwrap_or_default(), written));
    }
    let Some((temp, file_name, written)) = image else {
        return bad_upload(&session, "choose a firmware image to upload");
    };
    if written == 0 {
        return bad_upload(&session, "the firmware image is empty");
    }
    let upload_ms = started.elapsed().as_millis();
    let spec = match release_spec(&fields) {
        Ok(spec) => spec,
        Err(message) => return bad_upload(&session, &message),
    };
    let prepare_started = Instant::now();
    let added_at: Mutex<Option<Instant>> = Mutex::new(None);
    let on_progress = |done: u64| {
        if done >= written {
            *added_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
    };
    let prepared = {
        let mut vendor = match portal.vendor().await {
            Ok(vendor) => vendor,
            Err(e) => return vendor_error(&session, "/upload", &e),
        };
        vendor.prepare(&temp.path, &spec, Some(&on_progress)).await
    };
    drop(temp);
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return vendor_error(&session, "/upload", &e),
    };
    let done = Instant::now();
    let added = added_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(done);
    let id = fwledger_webauth::random_hex(16);
    portal.pending().insert(
        id.clone(),
        Pending {
            prepared,
            created: Instant::now(),
            file_name,
            upload_ms,
            add_ms: added.duration_since(prepare_started).as_millis(),
            sign_ms: done.duration_since(added).as_millis(),
        },
    );
    Redirect::to(&format!("/preview/{id}")).into_response()
}

fn release_spec(fields: &HashMap<String, String>) -> Result<ReleaseSpec, String> {
    let get = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or_default();
    let optional = |name: &str| Some(get(name).to_string()).filter(|v| !v.is_empty());
    let hardware: Vec<&str> = get("hw")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut spec = ReleaseSpec::new(get("model"), &hardware, get("version"));
    spec.security_version = match get("security_version") {
        "" => 0,
        v => v
            .parse()
            .map_err(|_| format!("security version {v:?} is not a whole number"))?,
    };
    spec.expires_in = match optional("expires") {
        None => None,
        Some(v) => Some(
            fwledger::parse_duration(&v)
                .ok_or_else(|| format!("expiry {v:?} is not a duration (e.g. 90d, 12h)"))?,
        ),
    };
    spec.prerequisite = optional("prerequisite");
    spec.notes = optional("notes");
    Ok(spec)
}

fn manifest_facts(pending: &Pending) -> Markup {
    let m = &pending.prepared.manifest;
    html! {
        dl.facts #manifest {
            dt { "Vendor" } dd #m-vendor { (m.vendor) }
            dt { "Vendor key" } dd { code { (hex::encode(m.vendor_key)) } }
            dt { "Model" } dd #m-model { (m.model) }
            dt { "Hardware" } dd #m-hardware { (m.hardware.join(", ")) }
            dt { "Version" } dd #m-version { (m.version.to_string()) }
            dt { "Security version" } dd #m-security-version { (m.security_version) }
            dt { "Size" } dd #m-size data-bytes=(m.size) { (m.size) " bytes (" (size(m.size)) ")" }
            dt { "SHA-256" } dd { code #m-sha256 { (hex::encode(m.sha256)) } }
            dt { "CID" } dd { code #m-cid { (m.cid) } }
            dt { "Issued" } dd { (timestamp(m.issued)) }
            dt { "Expires" } dd #m-expires { @match m.expires { Some(t) => (timestamp(t)), None => "never" } }
            dt { "Prerequisite" } dd { @match &m.prerequisite { Some(v) => (v.to_string()), None => "none" } }
            dt { "Notes" } dd.message { @match &m.notes { Some(n) => (n), None => "none" } }
            dt { "Uploaded file" } dd { (pending.file_name) }
        }
    }
}

fn timing_rows(pending: &Pending) -> Markup {
    html! {
        tr { td { "Upload received and written to disk" } td.num { (pending.upload_ms) " ms" } }
        tr #step-added { td { "Content added to the store" } td.num { (pending.add_ms) " ms" } }
        tr #step-signed { td { "Manifest signed" } td.num { (pending.sign_ms) " ms" } }
    }
}

/// `GET /preview/{id}`.
pub(crate) async fn preview(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let Some(pending) = portal.pending().get(&id).cloned() else {
        return error_page(
            &session,
            "/upload",
            StatusCode::NOT_FOUND,
            "No such prepared release (they are kept for one hour): upload it again.",
        );
    };
    let body = html! {
        p { "Signed and stored, " strong { "not announced yet" } ". Check the manifest, then approve." }
        (manifest_facts(&pending))
        table.steps { tbody { (timing_rows(&pending)) } }
        form.inline method="post" action={ "/preview/" (id) "/approve" } {
            input type="hidden" name="csrf" value=(session.csrf);
            button #approve type="submit" { "Approve and publish" }
        }
        " "
        form.inline method="post" action={ "/preview/" (id) "/discard" } {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" { "Discard" }
        }
    };
    respond(
        StatusCode::OK,
        page("Preview the manifest", Some(&session), "/upload", body),
    )
}

/// `POST /preview/{id}/discard`.
pub(crate) async fn discard(State(portal): State<Portal>, Path(id): Path<String>) -> Response {
    portal.pending().remove(&id);
    Redirect::to("/upload").into_response()
}

/// `POST /preview/{id}/approve`: announces the release and shows each step's time.
pub(crate) async fn approve(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let Some(pending) = portal.pending().remove(&id) else {
        return error_page(
            &session,
            "/upload",
            StatusCode::NOT_FOUND,
            "No such prepared release: it was published, discarded or expired.",
        );
    };
    let started = Instant::now();
    let result = {
        let mut vendor = match portal.vendor().await {
            Ok(vendor) => vendor,
            Err(e) => return vendor_error(&session, "/upload", &e),
        };
        // Another preview of the same version may have been approved meanwhile.
        match vendor.history().await {
            Ok(entries) => {
                let m = &pending.prepared.manifest;
                let version = m.version.to_string();
                match entries.iter().find_map(|e| match e {
                    ChannelEntry::Release {
                        seq,
                        model,
                        version: v,
                        ..
                    } if *model == m.model && *v == version => Some(*seq),
                    _ => None,
                }) {
                    Some(seq) => Err(VendorError::AlreadyPublished {
                        model: m.model.clone(),
                        version,
                        seq,
                    }),
                    None => vendor.announce(pending.prepared.clone()).await,
                }
            }
            Err(e) => Err(e),
        }
    };
    let release = match result {
        Ok(release) => release,
        Err(e) => return vendor_error(&session, "/upload", &e),
    };
    let append_ms = started.elapsed().as_millis();
    let total = pending.upload_ms + pending.add_ms + pending.sign_ms + append_ms;
    let body = html! {
        (notice("good", &format!("Published {} {} at seq {}.", release.model, release.version, release.seq)))
        h2 { "Steps" }
        table.steps #steps {
            tbody {
                (timing_rows(&pending))
                tr #step-appended { td { "Message appended to the channel (seq " (release.seq) ")" } td.num { (append_ms) " ms" } }
                tr #latency { th { "Latency, upload to announcement" } th.num { (total) " ms" } }
            }
        }
        progress value="4" max="4" { "done" }
        (manifest_facts(&pending))
        p { a.button href="/" { "Channel history" } }
    };
    respond(
        StatusCode::OK,
        page("Published", Some(&session), "/upload", body),
    )
}

// ----- gateways and tokens -----

fn gateways_body(
    portal_readers: &[fwledger::vendor::ReaderEntry],
    session: &Session,
    next: &str,
) -> Markup {
    html! {
        h2 { "Issue a subscription token" }
        form method="post" action="/gateways/token" {
            input type="hidden" name="csrf" value=(session.csrf);
            label { "Gateway name" input name="gateway" placeholder=(next); }
            label { input type="checkbox" name="simple" value="1" class="check";
                " Simple mode (one shared key, lost at the next rotation)" }
            button type="submit" { "Issue token" }
        }
        h2 { "Gateways (" (portal_readers.len()) ")" }
        table #gateways {
            thead { tr { th { "name" } th { "public key" } th { "admitted" } th { "state" } } }
            tbody {
                @for r in portal_readers {
                    tr {
                        td { (r.name) }
                        td { code { (r.public.get(..16).unwrap_or(&r.public)) "…" } }
                        td { (timestamp(r.added)) }
                        td { @match r.revoked {
                            Some(t) => { span.badge.bad { "revoked" } " " (timestamp(t)) },
                            None => span.badge.good { "active" },
                        } }
                    }
                }
            }
        }
    }
}

/// `GET /gateways`.
pub(crate) async fn gateways(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    let vendor = match portal.vendor().await {
        Ok(vendor) => vendor,
        Err(e) => return vendor_error(&session, "/gateways", &e),
    };
    let body = gateways_body(vendor.readers(), &session, &vendor.next_reader_name());
    respond(
        StatusCode::OK,
        page("Gateways", Some(&session), "/gateways", body),
    )
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    simple: Option<String>,
}

/// `POST /gateways/token`: issues a token and shows it once.
pub(crate) async fn token(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Form(form): Form<TokenForm>,
) -> Response {
    let mut vendor = match portal.vendor().await {
        Ok(vendor) => vendor,
        Err(e) => return vendor_error(&session, "/gateways", &e),
    };
    let name = match (form.simple.is_some(), form.gateway.trim()) {
        (true, _) => None,
        (false, "") => Some(vendor.next_reader_name()),
        (false, name) => Some(name.to_string()),
    };
    let token = match vendor.token(name.as_deref()) {
        Ok(token) => token,
        Err(e) => return vendor_error(&session, "/gateways", &e),
    };
    let label = match &name {
        Some(name) => format!("Token for gateway {name:?}"),
        None => "Simple-mode token (stops working at the next rotation)".to_string(),
    };
    let body = html! {
        (notice("good", &format!("{label}: give it to the gateway (`fwledger gateway subscribe`). It is shown only now; keep it secret.")))
        textarea.token #token readonly aria-label="token" { (token) }
        (gateways_body(vendor.readers(), &session, &vendor.next_reader_name()))
    };
    let mut response = respond(
        StatusCode::OK,
        page("Gateways", Some(&session), "/gateways", body),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ----- keys -----

/// `GET /keys`.
pub(crate) async fn keys(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    let vendor = match portal.vendor().await {
        Ok(vendor) => vendor,
        Err(e) => return vendor_error(&session, "/keys", &e),
    };
    let body = keys_body(&vendor, &session, None);
    respond(StatusCode::OK, page("Keys", Some(&session), "/keys", body))
}

fn keys_body(vendor: &fwledger::Vendor, session: &Session, message: Option<Markup>) -> Markup {
    let active: Vec<&str> = vendor
        .readers()
        .iter()
        .filter(|r| r.revoked.is_none())
        .map(|r| r.name.as_str())
        .collect();
    html! {
        @if let Some(message) = message { (message) }
        dl.facts {
            dt { "Vendor" } dd { (vendor.name()) }
            dt { "Root public key" } dd { code #root-key { (hex::encode(vendor.public_key())) } }
            dt { "Channel" } dd { code { (hex::encode(vendor.channel())) } }
            dt { "Release key generation" } dd #release-generation { (vendor.release_key_generation()) }
        }
        h2 { "Rotate the channel key" }
        p { "Starts a new epoch whose key is wrapped to every remaining gateway. A revoked gateway "
            "cannot read anything published afterwards; simple-mode tokens stop working." }
        form method="post" action="/keys/rotate" {
            input type="hidden" name="csrf" value=(session.csrf);
            label { "Revoke gateway"
                select name="revoke" {
                    option value="" { "(none)" }
                    @for name in &active { option value=(name) { (name) } }
                }
            }
            label { input type="checkbox" name="release_key" value="1" class="check";
                " Also certify a new release-signing key (next generation)" }
            button type="submit" { "Rotate" }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RotateForm {
    #[serde(default)]
    revoke: String,
    #[serde(default)]
    release_key: Option<String>,
}

/// `POST /keys/rotate`.
pub(crate) async fn rotate(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    Form(form): Form<RotateForm>,
) -> Response {
    let mut vendor = match portal.vendor().await {
        Ok(vendor) => vendor,
        Err(e) => return vendor_error(&session, "/keys", &e),
    };
    let mut done = Vec::new();
    if form.release_key.is_some() {
        match vendor.rotate_release_key() {
            Ok(generation) => done.push(format!("New release key, generation {generation}.")),
            Err(e) => return vendor_error(&session, "/keys", &e),
        }
    }
    let revoke = Some(form.revoke.trim()).filter(|r| !r.is_empty());
    match vendor.rotate(revoke).await {
        Ok(seq) => {
            if let Some(name) = revoke {
                done.push(format!("Gateway {name:?} revoked."));
            }
            done.push(format!("New epoch started by the keyload at seq {seq}."));
        }
        Err(e) => return vendor_error(&session, "/keys", &e),
    }
    let body = keys_body(&vendor, &session, Some(notice("good", &done.join(" "))));
    respond(StatusCode::OK, page("Keys", Some(&session), "/keys", body))
}
