//! The node's API: JSON over HTTP (`/api/v1/...`), on a Unix socket only its user can open
//! and, when asked, on TCP. On TCP every call but `/healthz` needs the node's token
//! (`Authorization: Bearer`, compared in constant time), and the `Host` must be one the node
//! answers to (loopback, the bound address, `--api-host`), so a web page cannot reach it
//! through DNS rebinding. On both, a call that changes state must say `Content-Type:
//! application/json` and must not come from another site (`Origin`, `Sec-Fetch-Site`), so a
//! page's form or `fetch` cannot deploy or stop anything.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;

use crate::access::same;
use crate::answer::{Channel, status_of};
use crate::{DeployRequest, Node, NodeError};

/// The most a request body may be (a deploy request is a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// The most a request's head may be: with the cookies a browser sends, which any other local
/// server (an app among them) may have set for the host, up to Chromium's ~720 KiB; so no
/// such server can lock the owner out of the dashboard (HOSTILE row 42).
const MAX_HEAD: usize = 1024 * 1024;
/// How long a call may take to be answered (a deploy may pull and compile).
const CALL_TIME: Duration = Duration::from_secs(30);
const DEPLOY_TIME: Duration = Duration::from_secs(600);
/// Connections open at once on the Unix socket, and on the TCP API (all its addresses together).
const MAX_CONNECTIONS: usize = 256;

#[derive(Clone)]
struct Api {
    node: Node,
    /// `Some` on TCP: the host names (lowercase, without port) the node answers to.
    tcp_hosts: Option<Vec<String>>,
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        let (status, code) = status_of(&self);
        refuse(status, code, &self.to_string())
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": message, "code": code })),
    )
        .into_response()
}

/// The API's routes, with its guards; `tcp_hosts` is `Some` for a TCP listener, which serves
/// the dashboard too.
fn routes(node: Node, tcp_hosts: Option<Vec<String>>) -> axum::Router {
    let dashboard = tcp_hosts
        .is_some()
        .then(|| crate::dashboard::routes(node.clone()));
    let api = Api { node, tcp_hosts };
    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/apps", get(list).post(deploy))
        .route("/api/v1/apps/{name}", get(inspect).delete(remove))
        .route("/api/v1/apps/{name}/stop", post(stop))
        .route("/api/v1/apps/{name}/start", post(start))
        .route("/api/v1/apps/{name}/restart", post(restart))
        .route("/api/v1/apps/{name}/logs", get(logs))
        .route("/api/v1/events", get(events))
        .route("/api/v1/node", get(info))
        .route("/api/v1/node/stop", post(shutdown))
        .route(crate::access::PROOF_PATH, get(proof))
        .route("/api/v1/dashboard/login", post(login_link))
        .with_state(api.clone());
    let router = match dashboard {
        Some(d) => router.merge(d),
        None => router,
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(api, guard))
}

/// The host name of a `Host` header or an `Origin`'s authority, lowercase, without port.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        // `[v6]` or `[v6]:port`; anything else after `]` is no host at all.
        return match rest.split_once(']') {
            Some((ip, "")) => ip.to_string(),
            Some((ip, port))
                if port
                    .strip_prefix(':')
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit())) =>
            {
                ip.to_string()
            }
            _ => String::new(),
        };
    }
    a.rsplit_once(':').map_or(a.clone(), |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h.to_string()
        } else {
            a.clone()
        }
    })
}

async fn guard(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // The challenge a signed request used: its answer is signed for it.
    let mut signed = None;
    if let Some(hosts) = &api.tcp_hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_name);
        if !host.as_ref().is_some_and(|h| hosts.contains(h)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "bad-host",
                "this node does not answer to that Host (add it with `qyvol node --api-host`)",
            );
        }
        // The dashboard's own pages let a browser in with its session (see `dashboard`).
        if path != "/healthz" && path != crate::access::PROOF_PATH && !crate::dashboard::owns(&path)
        {
            (req, signed) = match authorized(&api.node, req).await {
                Ok(allowed) => allowed,
                Err(refused) => return refused,
            };
        }
    }
    let headers = req.headers();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(why) = cross_site(headers, api.tcp_hosts.as_deref()) {
            return refuse(StatusCode::FORBIDDEN, "cross-site", why);
        }
        // The dashboard's forms are not JSON: its session's CSRF token guards them instead.
        let dashboard = api.tcp_hosts.is_some() && crate::dashboard::owns(&path);
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        if !json && !dashboard {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json-only",
                "calls that change state must send `Content-Type: application/json`",
            );
        }
    }
    let limit = call_time(req.method(), &path);
    let answer = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the call took too long and was abandoned",
        ),
    };
    match signed {
        Some(challenge) => sign_answer(api.node.token(), &challenge, answer).await,
        None => answer,
    }
}

/// How long a call may take to be answered: a deploy may pull and compile.
pub(crate) fn call_time(method: &Method, path: &str) -> Duration {
    if (path == "/api/v1/apps" || path == "/ui/deploy") && method == Method::POST {
        DEPLOY_TIME
    } else {
        CALL_TIME
    }
}

/// The most of an answer that is signed whole (a list of apps, metrics); streams (logs,
/// events) are signed line by line.
const MAX_SIGNED_ANSWER: usize = 64 * 1024 * 1024;

/// `answer` with its signature for `challenge` (see `access`): whole, or a stream's each line.
async fn sign_answer(token: &str, challenge: &str, answer: Response) -> Response {
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("text/event-stream") {
        // The dashboard's, for a browser in a session: never asked for with a signature.
        return answer;
    }
    if content_type.starts_with("application/x-ndjson") && answer.status().is_success() {
        let (parts, body) = answer.into_parts();
        let signed = SignedLines {
            body,
            token: token.to_string(),
            challenge: challenge.to_string(),
            seq: 0,
            pending: Vec::new(),
            ended: false,
        };
        return Response::from_parts(parts, axum::body::Body::new(signed));
    }
    let (mut parts, body) = answer.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_SIGNED_ANSWER).await else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the answer could not be read to be signed",
        );
    };
    let mac = crate::access::sign_answer(token, challenge, parts.status.as_u16(), &body);
    if let Ok(v) = axum::http::HeaderValue::from_str(&mac) {
        parts.headers.insert(crate::access::ANSWER_HEADER, v);
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A streamed answer with each line as `MAC LINE` (see `access::sign_line`), and a last line
/// `MAC` that signs its end.
struct SignedLines {
    body: axum::body::Body,
    token: String,
    challenge: String,
    seq: u64,
    /// Bytes of a line not yet complete.
    pending: Vec<u8>,
    ended: bool,
}

impl SignedLines {
    fn signed(&mut self, line: Option<&[u8]>, out: &mut Vec<u8>) {
        let mac = crate::access::sign_line(&self.token, &self.challenge, self.seq, line);
        self.seq += 1;
        out.extend_from_slice(mac.as_bytes());
        if let Some(line) = line {
            out.push(b' ');
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
}

impl http_body::Body for SignedLines {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            let mut out = Vec::new();
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.pending.extend_from_slice(&data);
                    while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = self.pending.drain(..=i).take(i).collect();
                        self.signed(Some(&line), &mut out);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    let rest = std::mem::take(&mut self.pending);
                    if !rest.is_empty() {
                        self.signed(Some(&rest), &mut out);
                    }
                    self.signed(None, &mut out);
                    self.ended = true;
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(out)))));
            }
        }
    }
}

/// How long a signed request's body may take to arrive.
const SIGNED_BODY_TIME: Duration = Duration::from_secs(10);

/// `req` if it carries the node's token (`Authorization: Bearer`, for scripts), or is signed
/// with it for its connection's challenge (`Qyvol-Proof`, the CLI's way: the token itself
/// never travels), with that challenge; else the 401 (413 for a signed body over the limit).
/// A signed body is read only for a challenge the connection holds, and within
/// [`SIGNED_BODY_TIME`].
async fn authorized(node: &Node, req: Request) -> Result<(Request, Option<String>), Response> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .map(|(scheme, rest)| (scheme.to_string(), rest.trim().to_string()));
    let unauthorized = || {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid token is required: `Authorization: Bearer <QYVOL_HOME/node/token>`",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        r
    };
    match given {
        // The scheme is case-insensitive (RFC 9110).
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer")
                && same(token.as_bytes(), node.token().as_bytes()) =>
        {
            if let Some(p) = req.extensions().get::<crate::access::Pending>() {
                p.trust();
            }
            Ok((req, None))
        }
        Some((scheme, params)) if scheme.eq_ignore_ascii_case(crate::access::SIGNED) => {
            let pending = req
                .extensions()
                .get::<crate::access::Pending>()
                .cloned()
                .unwrap_or_default();
            let Some(signed) = crate::access::parse_signed(&params) else {
                return Err(unauthorized());
            };
            if !pending.holds(signed.0) {
                return Err(unauthorized());
            }
            let (parts, body) = req.into_parts();
            let body =
                match tokio::time::timeout(SIGNED_BODY_TIME, axum::body::to_bytes(body, MAX_BODY))
                    .await
                {
                    Ok(Ok(body)) => body,
                    Ok(Err(_)) => {
                        return Err(refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too-large",
                            &format!("a signed request's body may be at most {MAX_BODY} bytes"),
                        ));
                    }
                    Err(_) => return Err(unauthorized()),
                };
            let path = parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path(), |p| p.as_str());
            if crate::access::verify_signed(
                &pending,
                node.token(),
                signed,
                parts.method.as_str(),
                path,
                &body,
            ) {
                let challenge = signed.0.to_string();
                pending.trust();
                Ok((
                    Request::from_parts(parts, axum::body::Body::from(body)),
                    Some(challenge),
                ))
            } else {
                Err(unauthorized())
            }
        }
        _ => Err(unauthorized()),
    }
}

/// Why a state-changing request looks like it comes from a web page of another site.
fn cross_site(headers: &HeaderMap, hosts: Option<&[String]>) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Some("cross-site requests cannot change the node's state");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        // The page's origin is this listener itself: same host name and port as asked for.
        let same = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.eq_ignore_ascii_case(authority));
        let ok = same
            && hosts.is_some_and(|h| !authority.is_empty() && h.contains(&host_name(authority)));
        if !ok {
            return Some("requests from another origin cannot change the node's state");
        }
    }
    None
}

async fn metrics(State(api): State<Api>) -> Result<Response, NodeError> {
    let text = api.node.metrics_text()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list(State(api): State<Api>, Query(q): Query<ListQuery>) -> Result<Response, NodeError> {
    Ok(Json(api.node.list(q.all)?).into_response())
}

async fn deploy(
    State(api): State<Api>,
    body: Result<Json<DeployRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, NodeError> {
    let req = match body {
        Ok(Json(req)) => req,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                &format!("a deploy request may be at most {MAX_BODY} bytes"),
            ));
        }
        Err(e) => {
            return Err(NodeError::BadRequest(format!(
                "the deploy request: {}",
                e.body_text()
            )));
        }
    };
    let view = api.node.deploy(req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn inspect(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, NodeError> {
    Ok(Json(api.node.view(&name)?).into_response())
}

#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

async fn remove(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, NodeError> {
    api.node.remove(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stop(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, NodeError> {
    Ok(Json(api.node.stop(&name).await?).into_response())
}

async fn start(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, NodeError> {
    Ok(Json(api.node.start(&name).await?).into_response())
}

async fn restart(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, NodeError> {
    Ok(Json(api.node.restart(&name).await?).into_response())
}

async fn info(State(api): State<Api>) -> Result<Response, NodeError> {
    Ok(Json(api.node.info()?).into_response())
}

async fn shutdown(State(api): State<Api>) -> Response {
    api.node.request_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ProofQuery {
    nonce: String,
}

/// The node's proof that it holds the token, with a challenge for this connection's next
/// request (see `access`).
async fn proof(
    State(api): State<Api>,
    pending: Option<axum::Extension<crate::access::Pending>>,
    Query(q): Query<ProofQuery>,
) -> Response {
    if !crate::access::is_nonce(&q.nonce) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "`nonce` must be 64 lowercase hex digits",
        );
    }
    let pending = pending.map(|p| p.0).unwrap_or_default();
    match pending.issue() {
        Ok(challenge) => Json(serde_json::json!({
            "proof": crate::access::proof(api.node.token(), &q.nonce, &challenge),
            "challenge": challenge,
        }))
        .into_response(),
        Err(e) => NodeError::internal(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// The SHA-256 of the value the link is opened with (`?v=`).
    verifier: String,
}

/// A one-time link that opens a dashboard session.
async fn login_link(
    State(api): State<Api>,
    body: Result<Json<LinkRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, NodeError> {
    let Json(req) =
        body.map_err(|e| NodeError::BadRequest(format!("the link request: {}", e.body_text())))?;
    let url = api.node.login_link(&req.verifier)?;
    Ok(Json(serde_json::json!({
        "url": url,
        "expires_in_s": crate::access::LOGIN_LINK_TIME.as_secs(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<usize>,
    /// Unix milliseconds.
    since: Option<u64>,
}

/// The app's lines as JSON lines (`{"time","stream","text"}`); with `follow`, new lines as
/// they are written, until the client goes away or the app is removed (as `docker logs -f`
/// ends with its container).
async fn logs(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, NodeError> {
    // The app this stream is about: one removed and deployed again under its name is another.
    let created = api.node.view(&name)?.created;
    let node = api.node.clone();
    let (lines, mut cursor) = api
        .node
        .logs()
        .read_off_thread(&name, q.tail, q.since)
        .await
        .ok_or_else(|| NodeError::Internal("the log could not be read".into()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for line in lines {
            if tx.send(json_line(&line)).await.is_err() {
                return;
            }
        }
        if !q.follow {
            return;
        }
        for round in 0u64.. {
            if round % 5 == 4 && !node.still_deployed(&name, created) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = tx.closed() => return,
            }
            let Some((c, lines)) = cursor.poll_off_thread().await else {
                return;
            };
            cursor = c;
            for line in lines {
                if tx.send(json_line(&line)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(stream_response(rx))
}

fn json_line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// The recent events, then each new one as it happens, as JSON lines.
async fn events(State(api): State<Api>) -> Response {
    let (recent, mut rx) = api.node.events();
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for e in recent {
            if tx.send(json_line(&e)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                e = rx.recv() => match e {
                    Ok(e) => if tx.send(json_line(&e)).await.is_err() { return },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                () = tx.closed() => return,
            }
        }
    });
    stream_response(out)
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::new(Channel(rx)),
    )
        .into_response()
}

/// The node's listeners, bound before anything starts so a taken port fails at once.
#[derive(Debug)]
pub struct Listeners {
    pub http: tokio::net::TcpListener,
    pub unix: tokio::net::UnixListener,
    /// The TCP API: the address asked for and, on loopback, the same port on the other
    /// loopback family (see [`bind_api`]).
    pub api: Vec<tokio::net::TcpListener>,
}

/// Binds the app port, the socket (0600; a stale one left by a killed node is replaced: the
/// caller holds the node's lock) and, if asked, the TCP API.
pub async fn bind(node: &Node) -> Result<Listeners, NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let opts = node.options();
    let http = tokio::net::TcpListener::bind(opts.http)
        .await
        .map_err(|e| {
            NodeError::BadRequest(format!(
                "cannot listen for apps on {}: {e}; choose another address with `--http`",
                opts.http
            ))
        })?;
    let socket = node.paths().socket();
    let _ = std::fs::remove_file(&socket);
    let unix = tokio::net::UnixListener::bind(&socket).map_err(|e| {
        NodeError::Internal(format!(
            "cannot open the API socket `{}`: {e}",
            socket.display()
        ))
    })?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(NodeError::internal)?;
    let api = match opts.api {
        None => Vec::new(),
        Some(addr) => bind_api(addr).await?,
    };
    if let Some(addr) = api.first().and_then(|l| l.local_addr().ok()) {
        node.set_dashboard(dashboard_url(addr, api.len() > 1));
    }
    Ok(Listeners { http, unix, api })
}

/// The dashboard's URL for a TCP API bound at `addr` (and, with `twin`, at the other loopback
/// family too). `localhost` — a host of its own for the browser, apart from the apps on
/// `127.0.0.1` — only where the node holds every address the name leads a client to:
/// `127.0.0.1` (itself or within `0.0.0.0`) and `[::1]`. Anything else is printed as the
/// address itself (`127.0.0.2`, `[::]` as `[::1]`, a LAN address), which leads only there.
fn dashboard_url(addr: SocketAddr, twin: bool) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let port = addr.port();
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST || ip.is_unspecified() => {
            if twin {
                format!("http://localhost:{port}/")
            } else {
                // No IPv6 loopback on this host: nothing there to lead a browser astray.
                format!("http://127.0.0.1:{port}/")
            }
        }
        IpAddr::V6(ip) if ip.is_loopback() && twin => format!("http://localhost:{port}/"),
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => {
            format!("http://[{}]:{port}/", Ipv6Addr::LOCALHOST)
        }
        _ => format!("http://{addr}/"),
    }
}

/// The loopback address of the other family that `localhost` may lead a client to at the
/// same port: browsers try `[::1]` as readily as `127.0.0.1`.
fn loopback_twin(addr: SocketAddr) -> Option<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST || ip.is_unspecified() => {
            Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()))
        }
        IpAddr::V6(ip) if ip.is_loopback() => {
            Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()))
        }
        _ => None,
    }
}

/// Binds the TCP API at `addr` and, when the dashboard is printed as `localhost`, at the same
/// port of the other loopback family, so the printed URL can lead only to this node: a port
/// left free there is one another local user could listen on and proxy, capturing what the
/// browser sends. A port taken on either is an error that says so; port 0 picks a port free
/// on both. A host without IPv6 (or IPv4) loopback has nothing there to take.
async fn bind_api(addr: SocketAddr) -> Result<Vec<tokio::net::TcpListener>, NodeError> {
    let taken = |at: SocketAddr, e: std::io::Error| {
        let why = if e.kind() != std::io::ErrorKind::AddrInUse {
            String::new()
        } else if at == addr {
            "; another program holds that port: stop it".into()
        } else {
            "; another program holds that port on the other loopback address, where browsers \
             reach `localhost` too: stop it"
                .into()
        };
        NodeError::BadRequest(format!(
            "cannot listen for the API and dashboard on {at}: {e}{why}, or choose another port \
             with `--api`"
        ))
    };
    for _ in 0..16 {
        let first = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| taken(addr, e))?;
        let Some(twin) = loopback_twin(addr) else {
            return Ok(vec![first]);
        };
        let port = first.local_addr().map_err(NodeError::internal)?.port();
        let twin = SocketAddr::new(twin.ip(), port);
        match tokio::net::TcpListener::bind(twin).await {
            Ok(second) => return Ok(vec![first, second]),
            Err(e) if not_here(&e) => return Ok(vec![first]),
            // Port 0 chose a port someone holds on the other family: choose again.
            Err(_) if addr.port() == 0 => continue,
            Err(e) => return Err(taken(twin, e)),
        }
    }
    Err(NodeError::Internal(
        "no port was free on both loopback addresses".into(),
    ))
}

/// Whether a bind failed because this host has no such address (no IPv6 loopback, say).
fn not_here(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
        || code == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
}

/// The host names a TCP API bound to `addr` answers to.
fn allowed_hosts(addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
    }
    hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    hosts
}

/// Serves the apps and the API until SIGINT, SIGTERM or `POST /api/v1/node/stop`, then stops
/// every instance (their records still say they should run, so they start with the next node).
pub async fn serve(node: Node, listeners: Listeners) -> Result<(), NodeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).map_err(NodeError::internal)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(NodeError::internal)?;
    let (stop_apps, apps_stopping) = tokio::sync::mpsc::channel(2);
    let router = node.router();
    let events = std::sync::Arc::new(crate::observe::AppEvents(node.clone()));
    let apps = tokio::spawn(router.serve(listeners.http, events, apps_stopping));
    let unix = routes(node.clone(), None);
    // The socket is the owner's alone (its folder is private): no stranger reaches it.
    let unix_task = tokio::spawn(accept(listeners.unix, unix, connection_cap(), None));
    // One router (and so one set of dashboard sessions) and one connection cap for every
    // address of the TCP API.
    let tcp_cap = connection_cap();
    let strangers = std::sync::Arc::new(Strangers::default());
    let tcp = listeners.api.first().map(|l| {
        let addr = l
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        routes(
            node.clone(),
            Some(allowed_hosts(addr, &node.options().api_hosts)),
        )
    });
    let tcp_tasks: Vec<_> = listeners
        .api
        .into_iter()
        .filter_map(|l| {
            Some(tokio::spawn(accept(
                l,
                tcp.clone()?,
                tcp_cap.clone(),
                Some(strangers.clone()),
            )))
        })
        .collect();
    // One sample a second of every app's load, for the dashboard's charts.
    let sampler = {
        let node = node.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if let Err(e) = node.sample() {
                    tracing::warn!(error = %e, "could not sample the apps' load");
                }
            }
        })
    };
    tokio::select! {
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
        () = node.shutdown_requested() => {}
    }
    tracing::info!("the node is stopping");
    sampler.abort();
    unix_task.abort();
    for t in tcp_tasks {
        t.abort();
    }
    let _ = stop_apps.send(()).await;
    node.halt_all().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), apps).await;
    let _ = std::fs::remove_file(node.paths().socket());
    Ok(())
}

/// Something the API is served on.
trait Listen: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Listen for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Listen for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// The connections one listener (or the TCP API's addresses together) may have open at once.
fn connection_cap() -> std::sync::Arc<tokio::sync::Semaphore> {
    std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS))
}

/// Connections of the TCP API no request has yet shown to be the owner's may hold this many of
/// its slots at once; one more closes the oldest of them.
const STRANGERS: usize = 32;
/// How long a connection may stay a stranger (a login, a challenge and a signed call take
/// milliseconds).
const STRANGER_TIME: Duration = Duration::from_secs(10);

/// The TCP API's connections not yet trusted, oldest first, each with what closes it: so
/// clients without the token, however many, hold at most [`STRANGERS`] slots and only for a
/// while, and the owner's next connection always finds room.
#[derive(Default)]
struct Strangers {
    next: std::sync::atomic::AtomicU64,
    waiting: std::sync::Mutex<std::collections::VecDeque<Stranger>>,
}

/// A connection not yet trusted: what closes it, and its place among the listener's
/// connections, held here so that evicting it frees the place at once (its task may run later).
struct Stranger {
    id: u64,
    close: std::sync::Arc<tokio::sync::Notify>,
    place: tokio::sync::OwnedSemaphorePermit,
}

impl Strangers {
    /// Counts a new connection in, closing the oldest stranger (and freeing its place) if all
    /// places are taken.
    fn admit(
        &self,
        place: tokio::sync::OwnedSemaphorePermit,
    ) -> (u64, std::sync::Arc<tokio::sync::Notify>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let close = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.len() >= STRANGERS
            && let Some(oldest) = waiting.pop_front()
        {
            oldest.close.notify_one();
        }
        waiting.push_back(Stranger {
            id,
            close: close.clone(),
            place,
        });
        (id, close)
    }

    /// Takes connection `id` out; its place, unless it was evicted meanwhile.
    fn leave(&self, id: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let at = waiting.iter().position(|s| s.id == id)?;
        waiting.remove(at).map(|s| s.place)
    }
}

/// Serves `app` on each connection: heads bounded in size and time, connections bounded by
/// `connections`, and (for TCP) untrusted ones by `strangers`.
async fn accept<L: Listen>(
    listener: L,
    app: axum::Router,
    connections: std::sync::Arc<tokio::sync::Semaphore>,
    strangers: Option<std::sync::Arc<Strangers>>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_buf_size(MAX_HEAD);
    let mut failures = qyvol_runtime::Throttle::default();
    loop {
        let io = match listener.accept().await {
            Ok(io) => io,
            Err(e) => {
                if let Some(times) = failures.due() {
                    tracing::warn!(error = %e, times, "the API's accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(open) = connections.clone().try_acquire_owned() else {
            continue;
        };
        // Each connection keeps its own challenge (see `access::Pending`).
        let pending = crate::access::Pending::default();
        let app = tower_layer::Layer::layer(&axum::Extension(pending.clone()), app.clone());
        let service = hyper_util::service::TowerToHyperService::new(app);
        let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        // Admitted here, not in the task: an eviction frees its place before the next accept.
        let (open, stranger) = match &strangers {
            Some(strangers) => (None, Some((strangers.clone(), strangers.admit(open)))),
            None => (Some(open), None),
        };
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let open = match stranger {
                None => open,
                Some((strangers, (id, close))) => {
                    let trusted = tokio::select! {
                        _ = conn.as_mut() => false,
                        () = pending.trusted() => true,
                        () = close.notified() => false,
                        () = tokio::time::sleep(STRANGER_TIME) => false,
                    };
                    match (trusted, strangers.leave(id)) {
                        (true, Some(place)) => Some(place),
                        _ => return,
                    }
                }
            };
            let _ = conn.await;
            drop(open);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port_and_case() {
        assert_eq!(host_name("LocalHost:7373"), "localhost");
        assert_eq!(host_name("[::1]:7373"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert_eq!(host_name("[::1]evil"), "");
    }

    #[test]
    fn the_dashboard_is_localhost_only_where_the_node_holds_every_address_of_the_name() {
        let at = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            dashboard_url(at("127.0.0.1:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("0.0.0.0:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("[::1]:7373"), true),
            "http://localhost:7373/"
        );
        assert_eq!(
            dashboard_url(at("127.0.0.1:7373"), false),
            "http://127.0.0.1:7373/"
        );
        assert_eq!(
            dashboard_url(at("127.0.0.2:7373"), false),
            "http://127.0.0.2:7373/"
        );
        assert_eq!(dashboard_url(at("[::]:7373"), false), "http://[::1]:7373/");
        assert_eq!(
            dashboard_url(at("10.0.0.5:7373"), false),
            "http://10.0.0.5:7373/"
        );
    }
}
