//! The vendor portal over HTTP (in process): login, CSRF, streamed uploads and the size limit,
//! the manifest preview, publishing, and what a subscribed gateway then reads.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use fwledger::proto::channel::Token;
use fwledger::{Backends, ChannelEntry, ChannelItem, Subscription, Vendor};
use fwledger_portal::PortalOptions;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

struct Portal {
    _dir: tempfile::TempDir,
    home: PathBuf,
    backends: Backends,
    router: Router,
    password: String,
    session: Option<String>,
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

impl Portal {
    fn new(max_upload: u64) -> Portal {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_path_buf();
        let backends = Backends::open(&home, "embedded", "embedded").expect("backends");
        Vendor::init(&home, "acme", &backends).expect("vendor");
        let password = fwledger_portal::ensure_password(&home)
            .expect("password")
            .expect("new");
        assert!(fwledger_portal::ensure_password(&home)
            .expect("again")
            .is_none());
        let router = fwledger_portal::router(&home, backends.clone(), PortalOptions { max_upload })
            .expect("router");
        Portal {
            _dir: dir,
            home,
            backends,
            router,
            password,
            session: None,
        }
    }

    async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible")
    }

    fn request(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        let builder = Request::builder().method(method).uri(uri);
        match &self.session {
            Some(id) => builder.header(
                header::COOKIE,
                format!("__Host-fwledger_portal_session={id}"),
            ),
            None => builder,
        }
    }

    async fn get(&self, uri: &str) -> (StatusCode, String) {
        let response = self
            .send(
                self.request("GET", uri)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        let status = response.status();
        (status, text(response).await)
    }

    async fn post(&self, uri: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let body = serde_urlencoded::to_string(fields).expect("form");
        let response = self
            .send(
                self.request("POST", uri)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .expect("request"),
            )
            .await;
        let status = response.status();
        (status, text(response).await)
    }

    async fn login(&mut self) {
        let response = self
            .send(Request::get("/login").body(Body::empty()).expect("request"))
            .await;
        let token = set_cookie(&response, "__Host-fwledger_portal_login").expect("login cookie");
        let body = text(response).await;
        assert!(body.contains(&token));
        let form = serde_urlencoded::to_string([
            ("csrf", token.as_str()),
            ("user", "admin"),
            ("password", self.password.as_str()),
        ])
        .expect("form");
        let response = self
            .send(
                Request::post("/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(
                        header::COOKIE,
                        format!("__Host-fwledger_portal_login={token}"),
                    )
                    .body(Body::from(form))
                    .expect("request"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        self.session =
            Some(set_cookie(&response, "__Host-fwledger_portal_session").expect("session cookie"));
    }

    async fn csrf(&self) -> String {
        let (status, body) = self.get("/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        field_value(&body, "csrf").expect("csrf field")
    }

    fn uploads(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(fwledger_portal::uploads_dir(&self.home)) {
            Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Uploads through the multipart form; the body is sent in small chunks, without a length.
    async fn upload(&self, fields: &[(&str, &str)], file: &[u8]) -> Response<Body> {
        let boundary = "----portal-test-boundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .into_bytes(),
            );
        }
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .into_bytes(),
        );
        body.extend_from_slice(file);
        body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
        let stream = futures::stream::iter(chunks);
        self.send(
            self.request("POST", "/upload")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from_stream(stream))
                .expect("request"),
        )
        .await
    }
}

async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn set_cookie(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

fn element_text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(rest[start..start + end].to_string())
}

fn location(response: &Response<Body>) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn release_fields<'a>(csrf: &'a str, version: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("model", "sensor-v2"),
        ("hw", "rev-a, rev-b"),
        ("version", version),
        ("security_version", "3"),
        ("expires", "90d"),
        ("prerequisite", "1.0.0"),
        ("notes", "fixes <script>alert(1)</script> & more"),
    ]
}

/// Uploads and approves a release; returns the approval page.
async fn publish(portal: &Portal, version: &str, data: &[u8]) -> String {
    let csrf = portal.csrf().await;
    let response = portal.upload(&release_fields(&csrf, version), data).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let preview = location(&response);
    let (status, _) = portal
        .post(&format!("{preview}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = portal.get("/").await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn gateway_token(portal: &Portal, gateway: &str) -> String {
    let csrf = portal.csrf().await;
    let (status, body) = portal
        .post("/gateways/token", &[("csrf", &csrf), ("gateway", gateway)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    element_text(&body, "token")
        .expect("token")
        .trim()
        .to_string()
}

async fn read_channel(backends: &Backends, token: &str) -> Vec<ChannelItem> {
    let token = Token::from_text(token).expect("token");
    let mut subscription =
        Subscription::new(&token, backends.ledger.clone()).expect("subscription");
    subscription.drain().await.expect("drain")
}

fn releases(items: &[ChannelItem]) -> Vec<(String, String, String)> {
    items
        .iter()
        .filter_map(|item| match item {
            ChannelItem::Message(d) => match ChannelEntry::from_delivery(d) {
                ChannelEntry::Release {
                    version,
                    sha256,
                    cid,
                    ..
                } => Some((version, sha256, cid)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn pages_and_forms_need_a_login() {
    let mut portal = Portal::new(1 << 20);
    for page in ["/", "/upload", "/gateways", "/keys", "/preview/abc"] {
        let response = portal
            .send(Request::get(page).body(Body::empty()).expect("request"))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(&response), "/login");
    }
    let (status, _) = portal.post("/heartbeat", &[("csrf", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = portal.upload(&[("csrf", "x")], b"firmware").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(portal.uploads().is_empty());

    // A wrong password is refused, without a session.
    let real = std::mem::replace(&mut portal.password, "wrong-password".into());
    let response = portal
        .send(Request::get("/login").body(Body::empty()).expect("request"))
        .await;
    let token = set_cookie(&response, "__Host-fwledger_portal_login").expect("cookie");
    let form = format!("csrf={token}&user=admin&password=wrong-password");
    let response = portal
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(
                    header::COOKIE,
                    format!("__Host-fwledger_portal_login={token}"),
                )
                .body(Body::from(form))
                .expect("request"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&response, "__Host-fwledger_portal_session").is_none());

    portal.password = real;
    portal.login().await;
    let (status, body) = portal.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-status=\"none\""), "{body}");
    // Security headers on every page.
    let response = portal
        .send(
            portal
                .request("GET", "/")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    let csp = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(
        response
            .headers()
            .get(header::X_FRAME_OPTIONS)
            .map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );

    // Logging out ends the session; a new password ends every session.
    let csrf = portal.csrf().await;
    let (status, _) = portal.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = portal.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    portal.login().await;
    portal.password = fwledger_portal::reset_password(&portal.home).expect("reset");
    let (status, _) = portal.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_wrong_csrf_token_is_refused_with_403() {
    let mut portal = Portal::new(1 << 20);
    portal.login().await;
    let csrf = portal.csrf().await;
    for uri in [
        "/heartbeat",
        "/releases/revoke",
        "/gateways/token",
        "/keys/rotate",
        "/logout",
    ] {
        let (status, _) = portal.post(uri, &[("csrf", "0000")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        let (status, _) = portal.post(uri, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    // The upload's token must come first and be right; nothing is written otherwise.
    let response = portal
        .upload(&release_fields("bad-token", "1.0.0"), &image(10_000))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let mut late = release_fields(&csrf, "1.0.0");
    late.rotate_left(1);
    let response = portal.upload(&late, &image(10_000)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(portal.uploads().is_empty());
    // Nothing reached the channel.
    let (_, body) = portal.get("/").await;
    assert!(body.contains("The channel is empty"));
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413_and_leaves_no_file() {
    let mut portal = Portal::new(64 * 1024);
    portal.login().await;
    let csrf = portal.csrf().await;
    // Streamed without a length: refused while writing, the partial file removed.
    let response = portal
        .upload(&release_fields(&csrf, "1.0.0"), &image(64 * 1024 + 1))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = text(response).await;
    assert!(
        body.contains("larger than this portal accepts (64.0 KiB)"),
        "{body}"
    );
    assert!(portal.uploads().is_empty(), "{:?}", portal.uploads());
    // Announced too long: refused before reading.
    let response = portal
        .send(
            portal
                .request("POST", "/upload")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
                .header(header::CONTENT_LENGTH, "10000000")
                .body(Body::from(vec![0u8; 10]))
                .expect("request"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the limit is fine.
    let response = portal
        .upload(&release_fields(&csrf, "1.0.0"), &image(64 * 1024))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        portal.uploads().is_empty(),
        "uploads are removed once stored"
    );
}

#[tokio::test]
async fn the_preview_shows_the_manifest_and_publishing_reaches_gateways() {
    let mut portal = Portal::new(1 << 20);
    portal.login().await;
    let token = gateway_token(&portal, "home-hub").await;
    let csrf = portal.csrf().await;
    let data = image(300_000);
    let sha256 = hex::encode(Sha256::digest(&data));
    let cid = fwledger_store::cid_of_reader(&data[..], fwledger::Profile::default()).expect("cid");

    let response = portal.upload(&release_fields(&csrf, "1.4.0"), &data).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let preview = location(&response);
    assert!(preview.starts_with("/preview/"), "{preview}");
    let (status, body) = portal.get(&preview).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        element_text(&body, "m-sha256").as_deref(),
        Some(sha256.as_str())
    );
    assert_eq!(element_text(&body, "m-cid").as_deref(), Some(cid.as_str()));
    assert_eq!(element_text(&body, "m-model").as_deref(), Some("sensor-v2"));
    assert_eq!(
        element_text(&body, "m-hardware").as_deref(),
        Some("rev-a, rev-b")
    );
    assert_eq!(element_text(&body, "m-version").as_deref(), Some("1.4.0"));
    assert_eq!(
        element_text(&body, "m-security-version").as_deref(),
        Some("3")
    );
    assert!(body.contains("data-bytes=\"300000\""));
    // Every value is escaped.
    assert!(!body.contains("<script>"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    // Not announced before approval.
    assert!(releases(&read_channel(&portal.backends, &token).await).is_empty());

    let (status, body) = portal
        .post(&format!("{preview}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for step in ["step-added", "step-signed", "step-appended", "latency"] {
        assert!(body.contains(&format!("id=\"{step}\"")), "{step}");
    }
    assert!(body.contains(" ms<"));
    // A second approval of the same preview finds nothing.
    let (status, _) = portal
        .post(&format!("{preview}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let seen = releases(&read_channel(&portal.backends, &token).await);
    assert_eq!(seen, vec![("1.4.0".to_string(), sha256, cid)]);
    let (_, history) = portal.get("/").await;
    assert!(history.contains("data-version=\"1.4.0\""));

    // The same version again is refused at upload.
    let response = portal.upload(&release_fields(&csrf, "1.4.0"), &data).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(portal.uploads().is_empty());
}

#[tokio::test]
async fn heartbeat_revoke_and_rotation_work_from_the_portal() {
    let mut portal = Portal::new(1 << 20);
    portal.login().await;
    let keep = gateway_token(&portal, "keep").await;
    let dropped = gateway_token(&portal, "drop").await;
    publish(&portal, "2.0.0", &image(5_000)).await;

    let csrf = portal.csrf().await;
    let (status, body) = portal
        .post("/heartbeat", &[("csrf", &csrf), ("valid", "2h")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-status=\"fresh\""), "{body}");
    let (status, _) = portal
        .post("/heartbeat", &[("csrf", &csrf), ("valid", "soon")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = portal
        .post(
            "/releases/revoke",
            &[
                ("csrf", &csrf),
                ("model", "sensor-v2"),
                ("version", "2.0.0"),
                ("reason", "bricks rev-a"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("bricks rev-a"));
    let (status, _) = portal
        .post("/releases/revoke", &[("csrf", &csrf), ("version", "9.9.9")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = portal
        .post(
            "/keys/rotate",
            &[("csrf", &csrf), ("revoke", "drop"), ("release_key", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Gateway &quot;drop&quot; revoked"), "{body}");
    assert_eq!(
        element_text(&body, "release-generation").as_deref(),
        Some("2")
    );
    let (status, _) = portal
        .post("/keys/rotate", &[("csrf", &csrf), ("revoke", "nobody")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, gateways) = portal.get("/gateways").await;
    assert!(gateways.contains("revoked"));

    publish(&portal, "2.0.1", &image(6_000)).await;
    // The kept gateway reads everything, including the release of the new epoch.
    let items = read_channel(&portal.backends, &keep).await;
    let versions: Vec<String> = releases(&items).into_iter().map(|r| r.0).collect();
    assert_eq!(versions, ["2.0.0", "2.0.1"]);
    // The revoked gateway reads nothing published after the rotation.
    let versions: Vec<String> = releases(&read_channel(&portal.backends, &dropped).await)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(versions, ["2.0.0"]);
    let kinds: Vec<ChannelEntry> = items
        .iter()
        .filter_map(|i| match i {
            ChannelItem::Message(d) => Some(ChannelEntry::from_delivery(d)),
            _ => None,
        })
        .collect();
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ChannelEntry::Heartbeat { .. })));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ChannelEntry::Revoke { reason, .. } if reason == "bricks rev-a")));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ChannelEntry::Keyload { admitted: true, .. })));
}

#[tokio::test]
async fn changes_made_by_the_cli_meanwhile_are_kept() {
    let mut portal = Portal::new(1 << 20);
    portal.login().await;
    // `fwledger vendor token --gateway cli-gw` while the portal runs.
    let mut cli = Vendor::open(&portal.home, &portal.backends).expect("open");
    cli.token(Some("cli-gw")).expect("token");
    drop(cli);
    let (_, body) = portal.get("/gateways").await;
    assert!(body.contains("cli-gw"), "{body}");
    // A token issued on the portal does not drop it.
    gateway_token(&portal, "web-gw").await;
    let names: Vec<String> = Vendor::open(&portal.home, &portal.backends)
        .expect("open")
        .readers()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["cli-gw", "web-gw"]);
}
