//! Session expiry (idle and absolute), login-form expiry and the end of a login lock-out,
//! through the gateway's real router, on the web auth clock moved forward with
//! `fwledger_webauth::advance_clock` (process-wide: this test binary holds this one test only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fwledger_gateway::http::{router, HttpState};
use fwledger_gateway::metrics::GatewayMetrics;
use fwledger_gateway::web::auth::{FAILURE_WINDOW, MAX_FAILURES, SESSION_IDLE, SESSION_LIFETIME};
use fwledger_gateway::{Gateway, InitOptions};
use fwledger_webauth::{advance_clock, LOGIN_TOKEN_LIFETIME};
use tower::ServiceExt;

const SESSION: &str = "__Host-fwledger_session";
const LOGIN: &str = "__Host-fwledger_login";
const MINUTE: Duration = Duration::from_secs(60);

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    cookie: Option<String>,
    form: Option<&[(&str, &str)]>,
) -> (StatusCode, HeaderMap) {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
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
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
    let response = router.clone().oneshot(request).await.expect("infallible");
    (response.status(), response.headers().clone())
}

fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
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

async fn login_form(router: &Router) -> String {
    let (_, headers) = send(router, Method::GET, "/login", None, None).await;
    set_cookie(&headers, LOGIN).expect("login cookie")
}

async fn login(router: &Router, token: &str, password: &str) -> (StatusCode, Option<String>) {
    let (status, headers) = send(
        router,
        Method::POST,
        "/login",
        Some(format!("{LOGIN}={token}")),
        Some(&[("csrf", token), ("user", "admin"), ("password", password)]),
    )
    .await;
    (status, set_cookie(&headers, SESSION))
}

async fn page(router: &Router, session: &str) -> StatusCode {
    send(
        router,
        Method::GET,
        "/devices",
        Some(format!("{SESSION}={session}")),
        None,
    )
    .await
    .0
}

#[tokio::test]
async fn sessions_login_forms_and_lockouts_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::init(dir.path(), &InitOptions::default()).expect("init");
    let password = gateway.reset_admin_password().expect("password").password;
    let r = router(HttpState {
        home: gateway.home().to_path_buf(),
        registry: gateway.registry().clone(),
        paths: gateway.paths().clone(),
        config: Arc::new(gateway.config().clone()),
        metrics: Arc::new(GatewayMetrics::default()),
    });
    let just_under = |d: Duration| d - MINUTE;

    // Idle: every use restarts the idle timer; a longer pause ends the session.
    let token = login_form(&r).await;
    let (status, session) = login(&r, &token, &password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = session.expect("session");
    for _ in 0..3 {
        advance_clock(just_under(SESSION_IDLE));
        assert_eq!(
            page(&r, &session).await,
            StatusCode::OK,
            "used within the idle time"
        );
    }
    advance_clock(SESSION_IDLE + MINUTE);
    assert_eq!(
        page(&r, &session).await,
        StatusCode::SEE_OTHER,
        "idle session still open"
    );
    // It is gone, not just asleep.
    assert_eq!(page(&r, &session).await, StatusCode::SEE_OTHER);

    // Absolute: a session used all the time still ends after its lifetime.
    let token = login_form(&r).await;
    let session = login(&r, &token, &password).await.1.expect("session");
    let step = SESSION_IDLE / 2;
    let mut elapsed = Duration::ZERO;
    while elapsed + step < SESSION_LIFETIME {
        advance_clock(step);
        elapsed += step;
        assert_eq!(page(&r, &session).await, StatusCode::OK, "at {elapsed:?}");
    }
    advance_clock(SESSION_LIFETIME - elapsed + MINUTE);
    assert_eq!(
        page(&r, &session).await,
        StatusCode::SEE_OTHER,
        "past the lifetime"
    );

    // A login form older than its lifetime is refused, even with the right password.
    let token = login_form(&r).await;
    advance_clock(LOGIN_TOKEN_LIFETIME + MINUTE);
    let (status, session) = login(&r, &token, &password).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(session.is_none());

    // Rate limit: locked out after MAX_FAILURES wrong passwords, free again after the window.
    for _ in 0..MAX_FAILURES {
        let token = login_form(&r).await;
        assert_eq!(
            login(&r, &token, "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let token = login_form(&r).await;
    assert_eq!(
        login(&r, &token, &password).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    advance_clock(just_under(FAILURE_WINDOW) / 2);
    let token = login_form(&r).await;
    assert_eq!(
        login(&r, &token, &password).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    advance_clock(FAILURE_WINDOW);
    let token = login_form(&r).await;
    let (status, session) = login(&r, &token, &password).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "still locked out after the window"
    );
    assert_eq!(page(&r, &session.expect("session")).await, StatusCode::OK);
}
