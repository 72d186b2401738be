//! Hardening of the vendor portal over *every* route, read from the router's source
//! (`src/lib.rs`), so a route added later is covered without editing this test: without a
//! session each one is refused (redirect to the login page or 401/403, never data); every
//! state-changing `POST` (urlencoded or the multipart upload) without or with a wrong CSRF token
//! is refused and changes nothing; every answer carries the security headers.

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fwledger::{Backends, Vendor};
use fwledger_portal::PortalOptions;
use tower::ServiceExt;

const SESSION: &str = "__Host-fwledger_portal_session";
const LOGIN: &str = "__Host-fwledger_portal_login";
const PUBLIC: &[&str] = &["/login", "/static/style.css"];

fn declared_routes() -> Vec<(Method, String)> {
    let source = include_str!("../src/lib.rs");
    let mut routes = Vec::new();
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
        ] {
            if call.contains(name) {
                routes.push((method, path.clone()));
            }
        }
    }
    routes
}

struct Fixture {
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    password: String,
    router: Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().to_path_buf();
    let backends = Backends::open(&home, "embedded", "embedded").expect("backends");
    Vendor::init(&home, "acme", &backends).expect("vendor");
    let password = fwledger_portal::ensure_password(&home)
        .expect("password")
        .expect("new");
    let router = fwledger_portal::router(
        &home,
        backends,
        PortalOptions {
            max_upload: 1 << 20,
        },
    )
    .expect("router");
    Fixture {
        _dir: dir,
        home,
        password,
        router,
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
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
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

fn form(method: Method, uri: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder
        .body(Body::from(
            serde_urlencoded::to_string(fields).expect("form"),
        ))
        .expect("request")
}

fn multipart_upload(cookie: &str, csrf: Option<&str>) -> Request<Body> {
    let boundary = "----hardening-boundary";
    let mut body = String::new();
    let mut fields = vec![
        ("model", "lamp"),
        ("hw", "rev-b"),
        ("version", "9.9.9"),
        ("security_version", "1"),
    ];
    if let Some(csrf) = csrf {
        fields.insert(0, ("csrf", csrf));
    }
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\nfirmware\r\n--{boundary}--\r\n"
    ));
    Request::post("/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .expect("request")
}

async fn login(f: &Fixture) -> (String, String) {
    let page = send(
        &f.router,
        Request::get("/login").body(Body::empty()).expect("req"),
    )
    .await;
    let token = page.set_cookie(LOGIN).expect("login cookie");
    let answer = send(
        &f.router,
        form(
            Method::POST,
            "/login",
            Some(&format!("{LOGIN}={token}")),
            &[
                ("csrf", &token),
                ("user", "admin"),
                ("password", &f.password),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let session = answer.set_cookie(SESSION).expect("session");
    let home = send(
        &f.router,
        Request::get("/")
            .header(header::COOKIE, format!("{SESSION}={session}"))
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    let at = home
        .body
        .find("name=\"csrf\" value=\"")
        .expect("csrf field")
        + 19;
    let csrf = home.body[at..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string();
    (session, csrf)
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
        StatusCode::SEE_OTHER | StatusCode::FOUND => answer.header(header::LOCATION) == "/login",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => true,
        _ => false,
    }
}

fn history_len(f: &Fixture) -> usize {
    std::fs::read_dir(fwledger_portal::uploads_dir(&f.home))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_route_refuses_clients_without_a_session() {
    let f = fixture();
    let routes = declared_routes();
    for (method, path) in [
        (Method::GET, "/"),
        (Method::POST, "/keys/rotate"),
        (Method::POST, "/upload"),
    ] {
        assert!(
            routes.iter().any(|(m, p)| *m == method && p == path),
            "{method} {path} not found"
        );
    }
    let forged = format!("{SESSION}={}", "cd".repeat(32));
    let mut checked = 0;
    for (method, path) in routes {
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let uri = path.replace("{id}", &"ab".repeat(16));
        for cookie in [None, Some(forged.as_str())] {
            let fields = [("csrf", ""), ("gateway", "evil"), ("version", "1.0.0")];
            let answer = send(&f.router, form(method.clone(), &uri, cookie, &fields)).await;
            assert!(
                refused(&answer),
                "{method} {uri}: {} {}",
                answer.status,
                answer.body
            );
            assert!(!answer.body.contains("acme"), "{method} {uri} leaks data");
            assert_security_headers(&answer, &format!("{method} {uri}"));
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} requests checked");
    let forged_upload = send(&f.router, multipart_upload(&forged, Some(""))).await;
    assert!(refused(&forged_upload));
    assert_eq!(
        history_len(&f),
        0,
        "an upload without a session left a file"
    );
    for public in ["/login", "/static/style.css"] {
        let answer = send(
            &f.router,
            Request::get(public).body(Body::empty()).expect("r"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{public}");
        assert_security_headers(&answer, public);
    }
}

#[tokio::test]
async fn every_post_route_checks_the_csrf_token() {
    let f = fixture();
    let (session, csrf) = login(&f).await;
    let (_, other_csrf) = login(&f).await;
    let cookie = format!("{SESSION}={session}");
    let wrong = "00".repeat(32);
    let mut posts = 0;
    for (method, path) in declared_routes() {
        if method != Method::POST || path == "/login" {
            continue;
        }
        posts += 1;
        let uri = path.replace("{id}", &"ab".repeat(16));
        for token in [
            None,
            Some(""),
            Some(wrong.as_str()),
            Some(other_csrf.as_str()),
        ] {
            let mut fields = vec![
                ("gateway", "living-room"),
                ("version", "1.0.0"),
                ("valid", "1h"),
            ];
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let answer = send(&f.router, form(Method::POST, &uri, Some(&cookie), &fields)).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "POST {uri} with csrf {token:?}: {}",
                answer.body
            );
        }
        if path == "/upload" {
            for token in [None, Some(wrong.as_str()), Some(other_csrf.as_str())] {
                let answer = send(&f.router, multipart_upload(&cookie, token)).await;
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "multipart upload with {token:?}"
                );
            }
        }
    }
    assert!(posts >= 7, "only {posts} POST routes found");
    assert_eq!(history_len(&f), 0, "a refused upload left a file");
    // With the session's own token the upload goes through: the refusals above were the token.
    let answer = send(&f.router, multipart_upload(&cookie, Some(&csrf))).await;
    assert!(
        answer.status.is_redirection() || answer.status.is_success(),
        "{} {}",
        answer.status,
        answer.body
    );
}
