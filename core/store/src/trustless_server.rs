//! A trustless gateway server (<https://specs.ipfs.tech/http-gateways/trustless-gateway/>)
//! over any [`ContentStore`]: `GET`/`HEAD /ipfs/{cid}` as a raw block or a CAR stream.
//!
//! Only blocks that hash to their CID are ever served ([`ContentStore::get_block`] verifies
//! each). CAR responses are streamed one block at a time, depth-first, so memory stays at one
//! block plus the pending links whatever the file size.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cid::Cid;
use futures::stream;

use crate::block::{parse_cid, DAG_PB};
use crate::car::links;
use crate::dagcbor::encode_header;
use crate::trustless::{parse_media_type, CAR_MEDIA_TYPE, RAW_MEDIA_TYPE};
use crate::varint::write_uvarint;
use crate::{ContentStore, StoreError};

/// Multihash code of the identity "hash" (the digest is the data itself).
const IDENTITY: u64 = 0x00;
/// Largest identity CID digest served (`bafkqaaa`, the probe CID, has an empty one).
const MAX_IDENTITY: usize = 128;
/// Pending links of a CAR walk; well-formed files need a few thousand at most.
const MAX_PENDING: usize = 1 << 20;
/// `Cache-Control` of every successful response: content addressed, so immutable.
const IMMUTABLE: &str = "public, max-age=29030400, immutable";
/// Formats of the full path gateway that a trustless gateway does not produce (406).
const DESERIALIZED: &[&str] = &["dag-json", "dag-cbor", "json", "cbor", "tar", "ipns-record"];

/// An axum router serving `store` as a trustless gateway:
///
/// * `GET`/`HEAD /ipfs/{cid}?format=raw` (or `Accept: application/vnd.ipld.raw`) — the block;
/// * `GET`/`HEAD /ipfs/{cid}?format=car` (or `Accept: application/vnd.ipld.car`) — a CAR v1
///   stream, `order=dfs`, `dups=n` unless `dups=y` is asked for (`Accept` parameters or
///   `car-dups`), `dag-scope` `all` (default), `entity` (the same for a file) or `block`;
/// * `400` for a bad CID, a content path, an unknown format or parameter, a missing `Accept`;
///   `406` for formats only a deserializing gateway produces or `Accept` without a verifiable
///   type; `404` when the root block is absent; `412` for `Cache-Control: only-if-cached` when
///   it is absent; `304` for a matching `If-None-Match`.
///
/// `bafkqaaa` (the empty identity CID) answers the spec's probe requests.
pub fn trustless_router(store: Arc<dyn ContentStore>) -> Router {
    Router::new()
        .route("/ipfs/{cid}", get(ipfs_root))
        .route("/ipfs/{cid}/{*path}", get(ipfs_path))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not found: this trustless gateway serves GET /ipfs/{cid}?format=raw|car",
            )
        })
        .with_state(store)
}

/// Serves [`trustless_router`] on `listener` until `shutdown` completes.
pub async fn serve_trustless(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ContentStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, trustless_router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

type Store = Arc<dyn ContentStore>;

async fn ipfs_root(
    State(store): State<Store>,
    Path(cid): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(store, &cid, "", &query, &headers).await
}

async fn ipfs_path(
    State(store): State<Store>,
    Path((cid, path)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    respond(store, &cid, &path, &query, &headers).await
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Raw,
    Car { dups: bool, scope: Scope },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Block,
    Entity,
    All,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        }
    }
}

type Refusal = (StatusCode, String);

fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

/// CAR parameters from an `Accept` entry or `car-*` query parameters.
#[derive(Debug, Clone, Copy, Default)]
struct CarParams {
    dups: Option<bool>,
}

/// Checks CAR `version`, `order`, `dups` values; `None` when one is not supported.
fn car_params<'a>(
    version: Option<&'a str>,
    order: Option<&'a str>,
    dups: Option<&'a str>,
) -> Option<CarParams> {
    if !matches!(version, None | Some("1")) || !matches!(order, None | Some("dfs" | "unk" | "")) {
        return None;
    }
    let dups = match dups {
        None | Some("") => None,
        Some("y") => Some(true),
        Some("n") => Some(false),
        Some(_) => return None,
    };
    Some(CarParams { dups })
}

/// The acceptable trustless types in `Accept`, best first: `Ok(None)` when the header is
/// missing; `Err` when it is present but names nothing this gateway can send.
fn accepted(headers: &HeaderMap) -> Result<Option<(bool, CarParams)>, Refusal> {
    let values: Vec<&str> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    // no header, or only wildcards (`*/*` from curl and HTTP libraries): nothing was chosen
    let wildcard = |entry: &str| {
        let media = parse_media_type(entry).0;
        media.is_empty() || media == "*/*" || media == "application/*"
    };
    if values.iter().flat_map(|v| v.split(',')).all(wildcard) {
        return Ok(None);
    }
    let mut best: Option<(f32, bool, CarParams)> = None;
    for entry in values.iter().flat_map(|v| v.split(',')) {
        let (media, params) = parse_media_type(entry);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let q = param("q").map_or(Some(1.0), |q| q.parse::<f32>().ok());
        let Some(q) = q.filter(|q| *q > 0.0 && *q <= 1.0) else {
            continue;
        };
        let choice = match media.as_str() {
            RAW_MEDIA_TYPE => (false, CarParams::default()),
            CAR_MEDIA_TYPE => match car_params(param("version"), param("order"), param("dups")) {
                Some(car) => (true, car),
                None => continue,
            },
            _ => continue,
        };
        if best.as_ref().is_none_or(|(b, _, _)| q > *b) {
            best = Some((q, choice.0, choice.1));
        }
    }
    match best {
        Some((_, car, params)) => Ok(Some((car, params))),
        None => Err((
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Accept names no response type this trustless gateway sends \
                 ({RAW_MEDIA_TYPE}, {CAR_MEDIA_TYPE}; version=1; order=dfs; dups=y|n)"
            ),
        )),
    }
}

/// Resolves `format`, `Accept`, `car-*`, `dag-scope` and `entity-bytes` into one [`Want`].
fn negotiate(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<Want, Refusal> {
    let accept = accepted(headers);
    let car_accept = match &accept {
        Ok(Some((true, params))) => *params,
        _ => CarParams::default(),
    };
    let car = match query.get("format").map(String::as_str) {
        Some("raw") => false,
        Some("car") => true,
        Some(f) if DESERIALIZED.contains(&f) => {
            return Err((
                StatusCode::NOT_ACCEPTABLE,
                format!(
                "format={f} needs a deserializing gateway; this one sends format=raw or format=car"
            ),
            ))
        }
        Some(f) => return Err(bad(format!("unsupported format={f:?}; use raw or car"))),
        None => match accept? {
            Some((car, _)) => car,
            None => {
                return Err(bad(
                    "this is a trustless gateway: ask for ?format=raw or ?format=car \
                     (or Accept: application/vnd.ipld.raw / application/vnd.ipld.car)",
                ))
            }
        },
    };
    if !car {
        return Ok(Want::Raw);
    }
    let from_query = car_params(
        query.get("car-version").map(String::as_str),
        query.get("car-order").map(String::as_str),
        query.get("car-dups").map(String::as_str),
    )
    .ok_or_else(|| {
        bad("unsupported car-version, car-order or car-dups (supported: 1, dfs, y|n)")
    })?;
    let dups = from_query.dups.or(car_accept.dups).unwrap_or(false);
    let mut scope = match query.get("dag-scope").map(String::as_str) {
        None | Some("all") => Scope::All,
        Some("entity") => Scope::Entity,
        Some("block") => Scope::Block,
        Some(s) => return Err(bad(format!("unsupported dag-scope={s:?}"))),
    };
    if let Some(range) = query.get("entity-bytes") {
        if range != "0:*" {
            return Err(bad(format!(
                "entity-bytes={range:?} is not supported here; only the whole entity (0:*)"
            )));
        }
        scope = Scope::Entity;
    }
    Ok(Want::Car { dups, scope })
}

async fn respond(
    store: Store,
    cid_text: &str,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let want = match negotiate(query, headers) {
        Ok(want) => want,
        Err((status, message)) => return error(status, &message),
    };
    if !path.trim_matches('/').is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "content paths are not supported by this gateway: request /ipfs/{cid}",
        );
    }
    let cid = match Cid::try_from(cid_text) {
        Ok(cid) => cid,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid CID: {e}")),
    };
    let identity = cid.hash().code() == IDENTITY;
    if identity && cid.hash().size() as usize > MAX_IDENTITY {
        return error(StatusCode::BAD_REQUEST, "identity CID too long");
    }
    if !identity {
        if let Err(e) = parse_cid(cid_text) {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    }
    let name = cid.to_string();
    let etag = match want {
        Want::Raw => format!("\"{name}.raw\""),
        Want::Car { dups, scope } => format!(
            "\"{name}.car.{}.dfs.dups-{}\"",
            scope.name(),
            if dups { 'y' } else { 'n' }
        ),
    };
    let only_if_cached = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("only-if-cached"));
    if only_if_cached && !identity {
        match store.has(&name).await {
            Ok(true) => {}
            Ok(false) => {
                return error(
                    StatusCode::PRECONDITION_FAILED,
                    &format!("block {name} is not in this gateway's store"),
                )
            }
            Err(e) => return store_error(&e),
        }
    }
    let if_none_match = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));

    // the root block: proves the content is here before the status is committed
    let root = if identity {
        cid.hash().digest().to_vec()
    } else {
        match store.get_block(&name).await {
            Ok(block) => block,
            Err(e) => return store_error(&e),
        }
    };
    let mut response_headers = HeaderMap::new();
    let mut set = |k: HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            response_headers.insert(k, v);
        }
    };
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(CACHE_CONTROL, IMMUTABLE);
    set(ETAG, &etag);
    set(VARY, "Accept");
    set(
        HeaderName::from_static("x-ipfs-path"),
        &format!("/ipfs/{name}"),
    );
    set(HeaderName::from_static("x-ipfs-roots"), &name);
    if !query.contains_key("format") {
        let format = if want == Want::Raw { "raw" } else { "car" };
        set(
            CONTENT_LOCATION,
            &format!("/ipfs/{cid_text}?format={format}"),
        );
    }
    match want {
        Want::Raw => {
            set(CONTENT_TYPE, RAW_MEDIA_TYPE);
            set(
                CONTENT_DISPOSITION,
                &format!("attachment; filename=\"{name}.bin\""),
            );
            set(CONTENT_LENGTH, &root.len().to_string());
        }
        Want::Car { dups, .. } => {
            set(
                CONTENT_TYPE,
                &format!(
                    "{CAR_MEDIA_TYPE}; version=1; order=dfs; dups={}",
                    if dups { 'y' } else { 'n' }
                ),
            );
            set(
                CONTENT_DISPOSITION,
                &format!("attachment; filename=\"{name}.car\""),
            );
        }
    }
    if if_none_match {
        response_headers.remove(CONTENT_LENGTH);
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let body = match want {
        Want::Raw => Body::from(root),
        Want::Car { dups, scope } => {
            let walk = CarWalk {
                store,
                header: Some(encode_header(&[cid])),
                first: (!identity).then_some((cid, root)),
                stack: Vec::new(),
                seen: (!dups).then(HashSet::new),
                follow: scope != Scope::Block,
            };
            Body::from_stream(stream::unfold(walk, CarWalk::next))
        }
    };
    (StatusCode::OK, response_headers, body).into_response()
}

/// A depth-first CAR stream being produced, one block per step.
struct CarWalk {
    store: Store,
    header: Option<Vec<u8>>,
    first: Option<(Cid, Vec<u8>)>,
    stack: Vec<Cid>,
    /// Blocks already sent, when duplicates are not repeated (`dups=n`).
    seen: Option<HashSet<Cid>>,
    follow: bool,
}

impl CarWalk {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if let Some(header) = self.header.take() {
            let mut out = Vec::with_capacity(header.len() + 4);
            write_uvarint(&mut out, header.len() as u64).ok()?;
            out.extend_from_slice(&header);
            return Some((Ok(out.into()), self));
        }
        loop {
            let (cid, block) = match self.first.take() {
                Some(first) => first,
                None => {
                    let cid = self.stack.pop()?;
                    if cid.hash().code() == IDENTITY {
                        continue; // never sent: the parent holds the data (spec)
                    }
                    if self.seen.as_ref().is_some_and(|s| s.contains(&v1(&cid))) {
                        continue;
                    }
                    match self.store.get_block(&cid.to_string()).await {
                        Ok(block) => (cid, block),
                        // after the 200, a missing or bad block can only end the stream early
                        Err(e) => return Some((Err(std::io::Error::other(e)), self.ended())),
                    }
                }
            };
            if let Some(seen) = self.seen.as_mut() {
                if !seen.insert(v1(&cid)) {
                    continue;
                }
            }
            if self.follow && cid.codec() == DAG_PB {
                match links(&cid, &block) {
                    Ok(links) => self.stack.extend(links.into_iter().rev()),
                    Err(e) => return Some((Err(std::io::Error::other(e)), self.ended())),
                }
                if self.stack.len() > MAX_PENDING {
                    let e = StoreError::Malformed(format!(
                        "DAG under {cid} fans out to more than {MAX_PENDING} pending links"
                    ));
                    return Some((Err(std::io::Error::other(e)), self.ended()));
                }
            }
            let cid_bytes = cid.to_bytes();
            let mut out = Vec::with_capacity(cid_bytes.len() + block.len() + 10);
            write_uvarint(&mut out, (cid_bytes.len() + block.len()) as u64).ok()?;
            out.extend_from_slice(&cid_bytes);
            out.extend_from_slice(&block);
            return Some((Ok(out.into()), self));
        }
    }

    /// This walk with nothing left to send.
    fn ended(mut self) -> Self {
        self.stack.clear();
        self.first = None;
        self
    }
}

fn v1(cid: &Cid) -> Cid {
    cid.into_v1().unwrap_or(*cid)
}

fn store_error(e: &StoreError) -> Response {
    let status = match e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::InvalidCid(_) => StatusCode::BAD_REQUEST,
        StoreError::Unavailable(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-store"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}
