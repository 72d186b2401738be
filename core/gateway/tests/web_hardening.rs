//! Hardening of the gateway's web UI and API, over *every* route: the routes are read from the
//! router's source (`src/http.rs`, `src/web/mod.rs`), so a route added later is covered without
//! editing this test. Without a session each one is refused (redirect to the login page, 401 or
//! 403, never data); every state-changing `POST` without or with a wrong CSRF token is refused;
//! every answer carries the security headers; secrets never reach the event log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fwledger::{Backends, Vendor};
use fwledger_gateway::http::{router, HttpState};
use fwledger_gateway::metrics::GatewayMetrics;
use fwledger_gateway::registry::NewDevice;
use fwledger_gateway::web::auth::AdminCredentials;
use fwledger_gateway::{Gateway, InitOptions};
use tower::ServiceExt;

const SESSION: &str = "__Host-fwledger_session";
const LOGIN: &str = "__Host-fwledger_login";
/// Not loopback: `/metrics` is open to loopback clients only.
const REMOTE: [u8; 4] = [192, 0, 2, 7];
/// Routes anyone may use, on purpose.
const PUBLIC: &[&str] = &["/login", "/static/style.css", "/metrics", "/fw/{sha256}"];
/// A MAC address only the registry knows: it must never appear in a refused answer.
const SECRET_MAC: &str = "02:00:00:be:ef:42";

/// Every `(method, path)` the gateway's router declares.
fn declared_routes() -> Vec<(Method, String)> {
    let mut routes = Vec::new();
    for source in [
        include_str!("../src/http.rs"),
        include_str!("../src/web/mod.rs"),
    ] {
        let mut rest = source;
        while let Some(at) = rest.find(".route(\"") {
            rest = &rest[at + 8..];
            let Some(end) = rest.find('"') else { break };
            let path = rest[..end].to_string();
            let call_end = [
                ".route(",
                ".route_layer(",
                ".layer(",
                ".merge(",
                ".with_state(",
            ]
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap_or(rest.len());
            let call = &rest[..call_end];
            for (name, method) in [
                ("get(", Method::GET),
                ("post(", Method::POST),
                ("put(", Method::PUT),
                ("delete(", Method::DELETE),
                ("patch(", Method::PATCH),
            ] {
                if call.contains(name) {
                    routes.push((method, path.clone()));
                }
            }
        }
    }
    routes
}

fn concrete(path: &str, sha256: &str) -> String {
    path.replace("{id}", "lamp-01")
        .replace("{sha256}", sha256)
        .replace("{group}", "kitchen")
        .replace("{name}", "kitchen")
}

struct Fixture {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    creds: AdminCredentials,
    token: String,
    router: Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backends = Backends::open(dir.path(), "embedded", "embedded").expect("backends");
    let mut vendor = Vendor::init(dir.path(), "acme", &backends).expect("vendor");
    let gateway = Gateway::init(dir.path(), &InitOptions::default()).expect("init");
    let token = vendor.token(Some("hardening")).expect("token");
    gateway.subscribe(&token).expect("subscribe");
    gateway
        .registry()
        .add_device(&NewDevice {
            id: "lamp-01".into(),
            mac: SECRET_MAC.into(),
            model: "lamp".into(),
            hardware: "rev-b".into(),
        })
        .expect("device");
    let creds = gateway.reset_admin_password().expect("password");
    let state = HttpState {
        home: gateway.home().to_path_buf(),
        registry: gateway.registry().clone(),
        paths: gateway.paths().clone(),
        config: Arc::new(gateway.config().clone()),
        metrics: Arc::new(GatewayMetrics::default()),
    };
    Fixture {
        router: router(state),
        _dir: dir,
        gateway,
        creds,
        token,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.split(';')
                    .next()?
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_string)
            })
    }

    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("CSRF field")
            + 19;
        self.body[at..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    cookies: &[String],
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if !cookies.is_empty() {
        builder = builder.header(header::COOKIE, cookies.join("; "));
    }
    let body = match form {
        Some(form) => {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(serde_urlencoded::to_string(form).expect("form"))
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body).expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((REMOTE, 40_000))));
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn login(f: &Fixture) -> (String, String) {
    let form = send(&f.router, Method::GET, "/login", &[], None).await;
    let token = form.set_cookie(LOGIN).expect("login cookie");
    let fields = [
        ("csrf", token.as_str()),
        ("user", "admin"),
        ("password", f.creds.password.as_str()),
    ];
    let cookies = [format!("{LOGIN}={token}")];
    let answer = send(&f.router, Method::POST, "/login", &cookies, Some(&fields)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let session = answer.set_cookie(SESSION).expect("session");
    let page = send(
        &f.router,
        Method::GET,
        "/config",
        &[format!("{SESSION}={session}")],
        None,
    )
    .await;
    (session, page.csrf())
}

fn assert_security_headers(answer: &Answer, what: &str) {
    let csp = answer.header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'"), "{what}: CSP {csp:?}");
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(
        answer.header(header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{what}"
    );
    assert_eq!(answer.header(header::X_FRAME_OPTIONS), "DENY", "{what}");
    assert_eq!(
        answer.header(header::REFERRER_POLICY),
        "no-referrer",
        "{what}"
    );
    let hsts = answer.header(header::STRICT_TRANSPORT_SECURITY);
    assert!(
        hsts.starts_with("max-age=") && hsts != "max-age=0",
        "{what}: HSTS {hsts:?}"
    );
}

fn refused(answer: &Answer) -> bool {
    match answer.status {
        StatusCode::SEE_OTHER | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT => {
            answer.header(header::LOCATION) == "/login"
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => true,
        _ => false,
    }
}

#[test]
fn the_route_list_is_read_from_the_router() {
    let routes = declared_routes();
    // The parser finds the routes every release has had; an empty or short list would make the
    // other tests vacuous.
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/devices/{id}/bundle"),
        (Method::POST, "/config/devices"),
        (Method::POST, "/logout"),
        (Method::GET, "/api/health"),
        (Method::GET, "/fw/{sha256}"),
        (Method::POST, "/login"),
    ] {
        assert!(
            routes.iter().any(|(m, p)| *m == method && p == path),
            "{method} {path} not found in {routes:?}"
        );
    }
}

#[tokio::test]
async fn every_route_refuses_clients_without_a_session() {
    let f = fixture();
    let sha = "ab".repeat(32);
    let forged = [format!("{SESSION}={}", "cd".repeat(32))];
    let mut checked = 0;
    for (method, path) in declared_routes() {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let uri = concrete(&path, &sha);
        for cookies in [&[][..], &forged[..]] {
            let form: &[(&str, &str)] = &[("csrf", ""), ("id", "evil"), ("token", "x")];
            let form = (method == Method::POST).then_some(form);
            let answer = send(&f.router, method.clone(), &uri, cookies, form).await;
            assert!(
                refused(&answer),
                "{method} {uri} without a session: {} {}",
                answer.status,
                answer.body
            );
            assert!(
                !answer.body.contains(SECRET_MAC),
                "{method} {uri} leaks data"
            );
            assert!(
                !answer.body.contains("lamp-01"),
                "{method} {uri} leaks data"
            );
            assert_security_headers(&answer, &format!("{method} {uri}"));
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} requests checked");
    // The public routes are public on purpose, and give nothing away either.
    let metrics = send(&f.router, Method::GET, "/metrics", &[], None).await;
    assert_eq!(
        metrics.status,
        StatusCode::UNAUTHORIZED,
        "metrics from a remote client"
    );
    // Downloads are for devices, not browsers: no web headers there (see tests/web.rs).
    let missing = send(&f.router, Method::GET, &format!("/fw/{sha}"), &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Nothing changed.
    assert!(f
        .gateway
        .registry()
        .device("evil")
        .expect("query")
        .is_none());
}

#[tokio::test]
async fn every_post_route_checks_the_csrf_token() {
    let f = fixture();
    let (session, csrf) = login(&f).await;
    let (other_session, other_csrf) = login(&f).await;
    assert_ne!(csrf, other_csrf);
    let cookies = [format!("{SESSION}={session}")];
    let sha = "ab".repeat(32);
    let wrong = "00".repeat(32);
    let devices_before = f.gateway.registry().devices().expect("devices").len();
    let mut posts = 0;
    for (method, path) in declared_routes() {
        if method != Method::POST || path == "/login" {
            continue;
        }
        posts += 1;
        let uri = concrete(&path, &sha);
        for token in [
            None,
            Some(""),
            Some(wrong.as_str()),
            Some(other_csrf.as_str()),
        ] {
            let mut form = vec![
                ("id", "lamp-99"),
                ("mac", "02:00:00:00:00:99"),
                ("model", "lamp"),
                ("hardware", "rev-b"),
                ("token", f.token.as_str()),
            ];
            if let Some(token) = token {
                form.push(("csrf", token));
            }
            let answer = send(&f.router, Method::POST, &uri, &cookies, Some(&form)).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "POST {uri} with csrf {token:?}"
            );
        }
    }
    assert!(posts >= 3, "only {posts} POST routes found");
    assert_eq!(
        f.gateway.registry().devices().expect("devices").len(),
        devices_before
    );
    // The session survived every refused logout; with its own token the same POST works.
    let page = send(&f.router, Method::GET, "/", &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let out = send(
        &f.router,
        Method::POST,
        "/logout",
        &cookies,
        Some(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let page = send(&f.router, Method::GET, "/", &cookies, None).await;
    assert!(refused(&page));
    let other = [format!("{SESSION}={other_session}")];
    assert_eq!(
        send(&f.router, Method::GET, "/", &other, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn secrets_never_reach_the_event_log_or_the_pages() {
    let f = fixture();
    let (session, csrf) = login(&f).await;
    let cookies = [format!("{SESSION}={session}")];
    // A wrong login, a device added (its bundle holds a private key), a subscription token
    // posted, a bundle downloaded.
    let form = send(&f.router, Method::GET, "/login", &[], None).await;
    let login_token = form.set_cookie(LOGIN).expect("login cookie");
    let wrong_password = "wrong-password-1234";
    let _ = send(
        &f.router,
        Method::POST,
        "/login",
        &[format!("{LOGIN}={login_token}")],
        Some(&[
            ("csrf", &login_token),
            ("user", "admin"),
            ("password", wrong_password),
        ]),
    )
    .await;
    let added = send(
        &f.router,
        Method::POST,
        "/config/devices",
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("id", "lamp-02"),
            ("mac", "02:00:00:00:00:02"),
            ("model", "lamp"),
            ("hardware", "rev-b"),
        ]),
    )
    .await;
    assert!(
        added.status.is_success() || added.status.is_redirection(),
        "{}",
        added.body
    );
    let _ = send(
        &f.router,
        Method::POST,
        "/config/subscribe",
        &cookies,
        Some(&[("csrf", &csrf), ("token", &f.token)]),
    )
    .await;
    let bundle = send(
        &f.router,
        Method::GET,
        "/devices/lamp-02/bundle",
        &cookies,
        None,
    )
    .await;
    let device_key = bundle.body.find("-----BEGIN PRIVATE KEY-----").map(|at| {
        bundle.body[at..]
            .split("-----END")
            .next()
            .unwrap_or_default()
            .to_string()
    });

    let mut secrets = vec![
        ("admin password", f.creds.password.clone()),
        ("a wrong password", wrong_password.to_string()),
        ("session id", session.clone()),
        ("CSRF token", csrf.clone()),
        ("login form token", login_token),
        ("subscription token", f.token.clone()),
    ];
    if let Some(key) = device_key {
        // The PEM body, without its header line (which is not a secret).
        secrets.push((
            "device key",
            key.lines().nth(1).unwrap_or_default().to_string(),
        ));
    }
    for file in [
        f.gateway.paths().server_key(),
        f.gateway.paths().ca_key(),
        f.gateway.paths().client_key(),
    ] {
        let pem = std::fs::read_to_string(file).expect("key");
        secrets.push((
            "a gateway key",
            pem.lines().nth(1).unwrap_or_default().to_string(),
        ));
    }
    if let Ok(Some(api)) = fwledger_gateway::web::auth::read_api_token(f.gateway.paths()) {
        secrets.push(("API token", api));
    }
    // Everything the gateway logged: its event log (registry, shown on /events and the API) and
    // every log file under its home.
    let mut logged = String::new();
    for event in f.gateway.registry().events(10_000).expect("events") {
        logged.push_str(&format!("{event:?}\n"));
    }
    logged.push_str(
        &send(
            &f.router,
            Method::GET,
            "/api/events?after=0",
            &cookies,
            None,
        )
        .await
        .body,
    );
    // Pages show the log too; their forms carry the session's CSRF token, by design.
    let mut pages = String::new();
    for page in ["/events", "/devices", "/config", "/channels"] {
        pages.push_str(
            &send(&f.router, Method::GET, page, &cookies, None)
                .await
                .body,
        );
    }
    for entry in walk(f.gateway.home()) {
        if entry.extension().is_some_and(|e| e == "log") {
            logged.push_str(&std::fs::read_to_string(&entry).unwrap_or_default());
        }
    }
    assert!(logged.contains("lamp-02"), "the log shows the flow");
    for (what, secret) in secrets.iter().filter(|(_, s)| s.len() >= 16) {
        let probe = &secret[..secret.len().min(40)];
        assert!(
            !logged.contains(probe),
            "the {what} was logged: {probe:.6}…"
        );
        if *what != "CSRF token" {
            assert!(
                !pages.contains(probe),
                "a page shows the {what}: {probe:.6}…"
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
