//! The web UI, JSON API and metrics routes, driven through the gateway's real router (and, for
//! the client-address checks, its real HTTPS server on 127.0.0.1).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, Response, StatusCode};
use axum::Router;
use fwledger::{Backends, Vendor};
use fwledger_gateway::http::{router, HttpServer, HttpState};
use fwledger_gateway::metrics::GatewayMetrics;
use fwledger_gateway::registry::{EventLevel, NewDevice, NewRelease, ReleaseState};
use fwledger_gateway::web::auth::{self, AdminCredentials, MAX_FAILURES};
use fwledger_gateway::{Gateway, InitOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
const REMOTE: [u8; 4] = [192, 0, 2, 7];
const SESSION: &str = "__Host-fwledger_session";
const LOGIN: &str = "__Host-fwledger_login";

struct Fixture {
    dir: tempfile::TempDir,
    gateway: Gateway,
    backends: Backends,
    creds: AdminCredentials,
    router: Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backends = Backends::open(dir.path(), "embedded", "embedded").expect("backends");
    let mut vendor = Vendor::init(dir.path(), "acme", &backends).expect("vendor");
    let gateway = Gateway::init(dir.path(), &InitOptions::default()).expect("init");
    gateway
        .subscribe(&vendor.token(Some("web-test")).expect("token"))
        .expect("subscribe");
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
        dir,
        gateway,
        backends,
        creds,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value a `Set-Cookie` gives to `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let first = v.split(';').next()?;
                let (k, value) = first.split_once('=')?;
                (k == name).then(|| value.to_string())
            })
    }

    fn set_cookie_line(&self, name: &str) -> String {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    }

    /// The CSRF token of the first form on the page.
    fn csrf(&self) -> String {
        let text = self.text();
        let at = text.find("name=\"csrf\" value=\"").expect("CSRF field") + 19;
        text[at..].split('"').next().unwrap_or_default().to_string()
    }
}

struct Call<'a> {
    method: Method,
    uri: &'a str,
    from: Option<[u8; 4]>,
    cookies: Vec<String>,
    bearer: Option<&'a str>,
    form: Option<Vec<(&'a str, &'a str)>>,
    headers: Vec<(&'a str, &'a str)>,
}

fn get(uri: &str) -> Call<'_> {
    Call {
        method: Method::GET,
        uri,
        from: Some(REMOTE),
        cookies: Vec::new(),
        bearer: None,
        form: None,
        headers: Vec::new(),
    }
}

fn post<'a>(uri: &'a str, form: Vec<(&'a str, &'a str)>) -> Call<'a> {
    Call {
        method: Method::POST,
        form: Some(form),
        ..get(uri)
    }
}

impl<'a> Call<'a> {
    fn session(mut self, id: &str) -> Self {
        self.cookies.push(format!("{SESSION}={id}"));
        self
    }

    fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push(format!("{name}={value}"));
        self
    }

    fn from(mut self, ip: Option<[u8; 4]>) -> Self {
        self.from = ip;
        self
    }

    fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }

    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    async fn send(self, router: &Router) -> Answer {
        let mut builder = Request::builder().method(self.method).uri(self.uri);
        if !self.cookies.is_empty() {
            builder = builder.header(header::COOKIE, self.cookies.join("; "));
        }
        if let Some(token) = self.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = match self.form {
            Some(form) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(serde_urlencoded::to_string(form).expect("form"))
            }
            None => Body::empty(),
        };
        let mut request = builder.body(body).expect("request");
        if let Some(ip) = self.from {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        }
        let response: Response<Body> = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Logs in through the form; returns the session id.
async fn login(f: &Fixture) -> String {
    let form = get("/login").send(&f.router).await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form.cookie(LOGIN).expect("login cookie");
    assert_eq!(form.csrf(), token);
    let answer = post(
        "/login",
        vec![
            ("csrf", &token),
            ("user", "admin"),
            ("password", &f.creds.password),
        ],
    )
    .cookie(LOGIN, &token)
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    answer.cookie(SESSION).expect("session cookie")
}

fn add_release(f: &Fixture, version: &str, image: &[u8]) -> (i64, String) {
    let sha256 = hex::encode(Sha256::digest(image));
    let registry = f.gateway.registry();
    let (id, _) = registry
        .add_release(&NewRelease {
            channel: "c1".into(),
            seq: version.len() as u64 + image.len() as u64,
            vendor: "acme".into(),
            vendor_key: "00".repeat(32),
            model: "lamp".into(),
            version: version.into(),
            security_version: 2,
            hardware: vec!["rev-b".into()],
            cid: "bafkreitest".into(),
            sha256: sha256.clone(),
            size: image.len() as u64,
            manifest: vec![0xa0],
        })
        .expect("release");
    let path = f.gateway.paths().image(&sha256);
    std::fs::create_dir_all(f.gateway.paths().repository()).expect("repository");
    std::fs::write(&path, image).expect("image");
    registry
        .set_release_state(id, ReleaseState::Verified, None, Some(&path))
        .expect("verified");
    (id, sha256)
}

fn lamp(id: &str, model: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        mac: "02:00:00:00:00:01".into(),
        model: model.into(),
        hardware: "rev-b".into(),
    }
}

#[tokio::test]
async fn every_page_and_api_route_needs_a_login() {
    let f = fixture();
    for page in [
        "/",
        "/devices",
        "/devices/lamp-01",
        "/devices/lamp-01/bundle",
        "/releases",
        "/updates",
        "/channels",
        "/repository",
        "/events",
        "/config",
    ] {
        let answer = get(page).send(&f.router).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(answer.header(header::LOCATION), "/login", "{page}");
    }
    for api in [
        "/api/devices",
        "/api/devices/lamp-01",
        "/api/releases",
        "/api/updates",
        "/api/channels",
        "/api/events?after=0",
    ] {
        let answer = get(api).send(&f.router).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{api}");
        assert_eq!(answer.header(header::WWW_AUTHENTICATE), "Bearer");
        assert!(answer.json()["error"].is_string(), "{api}");
    }
    // A form posted without a session does nothing.
    let answer = post(
        "/config/devices",
        vec![
            ("id", "x"),
            ("mac", "02:00:00:00:00:09"),
            ("model", "m"),
            ("hardware", "h"),
        ],
    )
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(f.gateway.registry().device("x").expect("q").is_none());
    // An invented session id is no session.
    let answer = get("/devices")
        .session(&"ab".repeat(32))
        .send(&f.router)
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    // The login page and its stylesheet are public.
    assert_eq!(get("/login").send(&f.router).await.status, StatusCode::OK);
    let css = get("/static/style.css").send(&f.router).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header(header::CONTENT_TYPE).starts_with("text/css"));
}

#[tokio::test]
async fn login_gives_a_strict_http_only_session_that_logout_ends() {
    let f = fixture();
    let form = get("/login").send(&f.router).await;
    let line = form.set_cookie_line(LOGIN);
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "{line}");
    }
    let token = form.cookie(LOGIN).expect("login cookie");
    let answer = post(
        "/login",
        vec![
            ("csrf", &token),
            ("user", "admin"),
            ("password", &f.creds.password),
        ],
    )
    .cookie(LOGIN, &token)
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header(header::LOCATION), "/");
    let line = answer.set_cookie_line(SESSION);
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(line.contains(attribute), "{line}");
    }
    // The login form token is spent.
    assert!(answer.set_cookie_line(LOGIN).contains("Max-Age=0"));
    let session = answer.cookie(SESSION).expect("session");
    assert_eq!(session.len(), 64);

    let page = get("/").session(&session).send(&f.router).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Overview"));
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    assert!(page
        .header(header::CONTENT_SECURITY_POLICY)
        .contains("default-src 'none'"));
    assert_eq!(page.header(header::X_FRAME_OPTIONS), "DENY");
    // Logging in again from the login page just goes home.
    let again = get("/login").session(&session).send(&f.router).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    let csrf = page.csrf();
    let out = post("/logout", vec![("csrf", &csrf)])
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie_line(SESSION).contains("Max-Age=0"));
    let page = get("/").session(&session).send(&f.router).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_new_password_ends_every_session() {
    let f = fixture();
    let session = login(&f).await;
    assert_eq!(
        get("/").session(&session).send(&f.router).await.status,
        StatusCode::OK
    );
    let old = f.creds.password.clone();
    let new = f.gateway.reset_admin_password().expect("reset");
    assert_ne!(new.password, old);
    let answer = get("/").session(&session).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header(header::LOCATION), "/login");
}

#[tokio::test]
async fn login_form_token_must_match_its_cookie() {
    let f = fixture();
    let form = get("/login").send(&f.router).await;
    let token = form.cookie(LOGIN).expect("login cookie");
    let password = f.creds.password.as_str();
    // No cookie (a cross-site post), another value, a forged pair: refused before the password
    // is even checked.
    let other = "cd".repeat(32);
    for (cookie, field) in [
        (None, token.as_str()),
        (Some(token.as_str()), other.as_str()),
        (Some(other.as_str()), other.as_str()),
    ] {
        let mut call = post(
            "/login",
            vec![("csrf", field), ("user", "admin"), ("password", password)],
        );
        if let Some(cookie) = cookie {
            call = call.cookie(LOGIN, cookie);
        }
        let answer = call.send(&f.router).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(answer.cookie(SESSION).is_none());
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_address_out() {
    let f = fixture();
    async fn attempt(f: &Fixture, ip: [u8; 4], password: &str) -> Answer {
        let form = get("/login").from(Some(ip)).send(&f.router).await;
        let token = form.cookie(LOGIN).expect("login cookie");
        post(
            "/login",
            vec![("csrf", &token), ("user", "admin"), ("password", password)],
        )
        .cookie(LOGIN, &token)
        .from(Some(ip))
        .send(&f.router)
        .await
    }
    for _ in 0..MAX_FAILURES {
        let answer = attempt(&f, REMOTE, "guess").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.text().contains("Wrong user name or password"));
    }
    // Locked out: even the right password is not checked.
    let answer = attempt(&f, REMOTE, &f.creds.password).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.cookie(SESSION).is_none());
    // Another address is not affected.
    let answer = attempt(&f, [192, 0, 2, 8], &f.creds.password).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    // A wrong user name fails like a wrong password.
    let answer = attempt(&f, [192, 0, 2, 9], "x").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_forbidden() {
    let f = fixture();
    let session = login(&f).await;
    let fields = vec![
        ("id", "lamp-01"),
        ("mac", "24:0A:C4:12:34:56"),
        ("model", "lamp"),
        ("hardware", "rev-b"),
    ];
    let wrong = "00".repeat(32);
    for csrf in [None, Some(""), Some(wrong.as_str())] {
        let mut form = fields.clone();
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let answer = post("/config/devices", form)
            .session(&session)
            .send(&f.router)
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{csrf:?}");
    }
    let answer = post("/config/subscribe", vec![("token", "x")])
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = post("/logout", vec![])
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(f.gateway.registry().device("lamp-01").expect("q").is_none());
    // Another session's token does not work either.
    let other = login(&f).await;
    let other_csrf = get("/config").session(&other).send(&f.router).await.csrf();
    let mut form = fields.clone();
    form.push(("csrf", &other_csrf));
    let answer = post("/config/devices", form)
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(f.gateway.registry().device("lamp-01").expect("q").is_none());
}

#[tokio::test]
async fn adding_a_device_issues_a_bundle_to_download() {
    let f = fixture();
    let session = login(&f).await;
    let csrf = get("/config")
        .session(&session)
        .send(&f.router)
        .await
        .csrf();
    let answer = post(
        "/config/devices",
        vec![
            ("csrf", &csrf),
            ("id", "lamp-01"),
            ("mac", "24-0A-C4-12-34-56"),
            ("model", "lamp"),
            ("hardware", "rev-b"),
        ],
    )
    .session(&session)
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.header(header::LOCATION), "/devices/lamp-01?added=1");
    let device = f
        .gateway
        .registry()
        .device("lamp-01")
        .expect("q")
        .expect("added");
    assert_eq!(device.mac, "24:0a:c4:12:34:56");

    let page = get("/devices/lamp-01?added=1")
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("Device added"));
    assert!(text.contains("<svg"), "pairing QR code");
    assert!(text.contains("/devices/lamp-01/bundle"));

    let bundle = get("/devices/lamp-01/bundle")
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert_eq!(
        bundle.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"lamp-01.json\""
    );
    assert_eq!(bundle.header(header::CACHE_CONTROL), "no-store");
    let parsed = fwledger_link::Bundle::from_json(&bundle.body).expect("a valid bundle");
    assert_eq!(parsed.device_id, "lamp-01");
    assert_eq!(parsed.vendors.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let kept = f.gateway.paths().root.join("bundles/lamp-01.json");
        let mode = std::fs::metadata(kept).expect("kept").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the bundle holds the device key");
    }

    // The same id again, and an invalid one: the form comes back with the reason, values kept.
    for (id, reason) in [
        ("lamp-01", "already registered"),
        ("bad id!", "must be 1-64 characters"),
    ] {
        let answer = post(
            "/config/devices",
            vec![
                ("csrf", &csrf),
                ("id", id),
                ("mac", "24:0a:c4:12:34:57"),
                ("model", "lamp"),
                ("hardware", "rev-b"),
            ],
        )
        .session(&session)
        .send(&f.router)
        .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.text().contains(reason), "{}", answer.text());
        assert!(answer.text().contains("24:0a:c4:12:34:57"));
    }
    // No bundle for devices it does not keep, and no path tricks.
    for uri in ["/devices/ghost/bundle", "/devices/..%2Fgateway/bundle"] {
        let answer = get(uri).session(&session).send(&f.router).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn subscribing_through_the_form() {
    let f = fixture();
    let session = login(&f).await;
    let csrf = get("/config")
        .session(&session)
        .send(&f.router)
        .await
        .csrf();
    let answer = post(
        "/config/subscribe",
        vec![("csrf", &csrf), ("token", "not a token")],
    )
    .session(&session)
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text().contains("Not subscribed"));

    let mut other =
        Vendor::init(&f.dir.path().join("globex"), "globex", &f.backends).expect("vendor");
    let token = other.token(Some("home")).expect("token");
    let answer = post(
        "/config/subscribe",
        vec![("csrf", &csrf), ("token", &token)],
    )
    .session(&session)
    .send(&f.router)
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.header(header::LOCATION), "/channels?subscribed=1");
    let page = get("/channels?subscribed=1")
        .session(&session)
        .send(&f.router)
        .await;
    assert!(page.text().contains("globex"));
    assert!(page.text().contains("Subscribed"));
    assert_eq!(f.gateway.registry().channels().expect("q").len(), 2);
}

#[tokio::test]
async fn every_page_renders_and_escapes_what_it_shows() {
    let f = fixture();
    let registry = f.gateway.registry();
    registry.add_device(&lamp("lamp-01", "lamp")).expect("add");
    registry
        .add_device(&lamp("evil", "<script>alert(1)</script>"))
        .expect("add");
    let (release, _) = add_release(&f, "1.1.0", b"firmware image bytes");
    registry
        .set_device_notice("lamp-01", Some(release))
        .expect("notice");
    registry
        .log(EventLevel::Warning, "refused <b>forged</b> notice")
        .expect("log");
    let session = login(&f).await;
    for page in [
        "/",
        "/devices",
        "/devices/lamp-01",
        "/devices/evil",
        "/releases",
        "/updates",
        "/channels",
        "/repository",
        "/repository?check=1",
        "/events",
        "/config",
    ] {
        let answer = get(page).session(&session).send(&f.router).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}");
        let text = answer.text();
        assert!(text.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(!text.contains("<script>alert(1)"), "{page} does not escape");
        assert!(!text.contains("<b>forged"), "{page} does not escape");
    }
    let devices = get("/devices")
        .session(&session)
        .send(&f.router)
        .await
        .text();
    assert!(devices.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(devices.contains("notified"));
    let releases = get("/releases")
        .session(&session)
        .send(&f.router)
        .await
        .text();
    assert!(releases.contains("1.1.0") && releases.contains("verified"));
    let repository = get("/repository?check=1")
        .session(&session)
        .send(&f.router)
        .await
        .text();
    assert!(
        repository.contains("verified, SHA-256 re-checked"),
        "{repository}"
    );
    let events = get("/events")
        .session(&session)
        .send(&f.router)
        .await
        .text();
    assert!(events.contains("refused &lt;b&gt;forged&lt;/b&gt; notice"));
    let missing = get("/devices/ghost")
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tampered_repository_file_shows_as_a_mismatch() {
    let f = fixture();
    let (_, sha256) = add_release(&f, "1.2.0", b"the verified image");
    std::fs::write(f.gateway.paths().image(&sha256), b"something else!!!!").expect("tamper");
    let session = login(&f).await;
    let page = get("/repository?check=1")
        .session(&session)
        .send(&f.router)
        .await
        .text();
    assert!(page.contains("SHA-256 mismatch"), "{page}");
}

#[tokio::test]
async fn api_answers_json_with_the_registry_shapes() {
    let f = fixture();
    let registry = f.gateway.registry();
    registry.add_device(&lamp("lamp-01", "lamp")).expect("add");
    registry.add_device(&lamp("lamp-02", "lamp")).expect("add");
    let (release, sha256) = add_release(&f, "1.1.0", b"image");
    registry
        .set_device_notice("lamp-01", Some(release))
        .expect("notice");
    let session = login(&f).await;
    let api = |uri: &'static str| get(uri).session(&session);

    let devices = api("/api/devices").send(&f.router).await;
    assert_eq!(devices.status, StatusCode::OK);
    assert!(devices
        .header(header::CONTENT_TYPE)
        .starts_with("application/json"));
    let devices = devices.json();
    let list = devices.as_array().expect("array");
    assert_eq!(list.len(), 2);
    for key in [
        "id",
        "mac",
        "model",
        "hardware",
        "version",
        "security_version",
        "last_seen",
        "online",
    ] {
        assert!(list[0].get(key).is_some(), "device has {key}");
    }

    let device = api("/api/devices/lamp-01").send(&f.router).await.json();
    assert_eq!(device["id"], "lamp-01");
    assert_eq!(device["updates"][0]["state"], "notified");
    assert_eq!(device["updates"][0]["version"], "1.1.0");
    let missing = api("/api/devices/ghost").send(&f.router).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"], "unknown device");

    let releases = api("/api/releases").send(&f.router).await.json();
    assert_eq!(releases[0]["sha256"], sha256.as_str());
    assert_eq!(releases[0]["state"], "verified");
    assert_eq!(releases[0]["security_version"], 2);
    assert!(releases[0].get("manifest").is_none());

    let updates = api("/api/updates").send(&f.router).await.json();
    assert_eq!(updates.as_array().map(Vec::len), Some(1));
    assert_eq!(updates[0]["device_id"], "lamp-01");

    let channels = api("/api/channels").send(&f.router).await.json();
    assert_eq!(channels[0]["vendor"], "acme");
    for key in [
        "id",
        "cursor",
        "next_seq",
        "freshness",
        "heartbeat_time",
        "error",
    ] {
        assert!(channels[0].get(key).is_some(), "channel has {key}");
    }

    // Events: oldest first after a cursor, without gaps; the latest page without one.
    for i in 0..5 {
        registry
            .log(EventLevel::Info, &format!("event {i}"))
            .expect("log");
    }
    let all = api("/api/events?after=0&limit=1000")
        .send(&f.router)
        .await
        .json();
    let ids: Vec<i64> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert!(ids.len() >= 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending: {ids:?}");
    let cursor = ids[ids.len() - 4];
    let page = get("/api/events?after=CURSOR&limit=2")
        .session(&session)
        .send(&f.router)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "a malformed cursor");
    let uri = format!("/api/events?after={cursor}&limit=2");
    let page = get(&uri).session(&session).send(&f.router).await.json();
    let got: Vec<i64> = page
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, ids[ids.len() - 3..ids.len() - 1].to_vec());
    let latest = api("/api/events").send(&f.router).await.json();
    let last = &latest.as_array().expect("array")[latest.as_array().map_or(0, |a| a.len()) - 1];
    assert_eq!(last["message"], "event 4");
    assert_eq!(last["level"], "info");
    assert!(last["time"].is_u64());
}

#[tokio::test]
async fn the_api_token_opens_the_api_but_not_the_pages() {
    let f = fixture();
    let token = auth::read_api_token(f.gateway.paths())
        .expect("read")
        .expect("created with the password");
    assert_eq!(token, f.creds.api_token);
    let answer = get("/api/devices").bearer(&token).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), Value::Array(vec![]));
    let wrong = "0".repeat(64);
    let answer = get("/api/devices").bearer(&wrong).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = get("/devices").bearer(&token).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let answer = get("/api/devices")
        .header("authorization", "Basic YWRtaW46eA==")
        .send(&f.router)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_are_open_to_loopback_only() {
    let f = fixture();
    f.gateway
        .registry()
        .add_device(&lamp("lamp-01", "lamp"))
        .expect("add");
    let answer = get("/metrics").from(Some(LOOPBACK)).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer
        .header(header::CONTENT_TYPE)
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text();
    for line in [
        "fwledger_gateway_devices 1",
        "fwledger_gateway_devices_online 0",
        "fwledger_gateway_releases{state=\"verified\"} 0",
        "fwledger_gateway_updates{state=\"confirmed\"} 0",
        "fwledger_gateway_downloads_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}:\n{text}");
    }
    assert!(text.contains("fwledger_gateway_channel_position{channel=\""));
    assert!(text.contains("\nprocess_resident_memory_bytes "));

    for from in [Some(REMOTE), None] {
        let answer = get("/metrics").from(from).send(&f.router).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{from:?}");
    }
    let token = f.creds.api_token.clone();
    let answer = get("/metrics").bearer(&token).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::OK);
    let session = login(&f).await;
    let answer = get("/metrics").session(&session).send(&f.router).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn firmware_downloads_stay_open_with_ranges_and_are_counted() {
    let f = fixture();
    let image: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let (_, sha256) = add_release(&f, "1.1.0", &image);
    let uri = format!("/fw/{sha256}");
    let full = get(&uri).send(&f.router).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.body, image);
    let part = get(&uri)
        .header("range", "bytes=100-199")
        .send(&f.router)
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header(header::CONTENT_RANGE), "bytes 100-199/4096");
    assert_eq!(part.body, image[100..200].to_vec());
    let tail = get(&uri)
        .header("range", "bytes=4000-")
        .send(&f.router)
        .await;
    assert_eq!(tail.body, image[4000..].to_vec());
    // The web routes' headers and login do not apply to downloads.
    assert!(full.headers.get(header::CONTENT_SECURITY_POLICY).is_none());

    let metrics = get("/metrics")
        .from(Some(LOOPBACK))
        .send(&f.router)
        .await
        .text();
    assert!(
        metrics.contains("\nfwledger_gateway_downloads_total 3\n"),
        "{metrics}"
    );
    let bytes = 4096 + 100 + 96;
    assert!(metrics.contains(&format!(
        "\nfwledger_gateway_download_bytes_total {bytes}\n"
    )));
}

/// One HTTP/1.1 request over TLS to the real server; returns the status and the body.
async fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = fwledger_gateway::tls::client_config(ca_pem, None).expect("client TLS");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut stream = connector.connect(name, tcp).await.expect("TLS");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn the_real_server_knows_loopback_clients() {
    let f = fixture();
    let paths = f.gateway.paths();
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).expect("pem");
    let tls =
        fwledger_gateway::tls::server_config(&read(paths.server_cert()), &read(paths.server_key()))
            .expect("server TLS");
    let server =
        HttpServer::start(SocketAddr::from((LOOPBACK, 0)), tls, f.router.clone()).expect("start");
    let ca = read(paths.ca_cert());
    let (status, body) = https_get(server.addr(), &ca, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("fwledger_gateway_devices 0"));
    let (status, body) = https_get(server.addr(), &ca, "/devices").await;
    assert_eq!(status, 303, "{body}");
    assert!(body.contains("location: /login"), "{body}");
    server.stop(std::time::Duration::from_secs(1)).await;
}
