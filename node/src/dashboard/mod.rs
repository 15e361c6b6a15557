//! The web dashboard, served by the node on its TCP listener beside the API: pages rendered
//! here (maud), refreshed in place by htmx, live logs by server-sent events, charts drawn as
//! SVG on the server. Its assets are compiled into the binary.
//!
//! As safe as the API: a one-time link from `qyvol dashboard` (never the token, which the
//! browser is never asked for) opens a session that rides in the path (`/s/<session>/...`),
//! never in a cookie: a browser sends a host's cookies to every port of it, so any local server
//! the owner visits would receive a cookie. Every request that changes state must also carry
//! the session's CSRF token in a header (htmx sends it); the API's guards (Host allow-list,
//! cross-site refusal, body limits) run first; every page has a Content-Security-Policy that
//! allows only the node's own scripts and styles, and guest text is escaped before it reaches
//! the page.

mod text;
mod views;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use maud::Markup;
use serde::Deserialize;

use crate::{DeployRequest, Node, NodeError};
use text::{Lang, T};
use views::{AppsQuery, Ctx, Nav};

/// How long a login lasts.
const SESSION_TIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past this the oldest is logged out.
const MAX_SESSIONS: usize = 64;
/// Pulls remembered for their progress.
const MAX_PULLS: usize = 32;
/// Pulls running at once (each holds a blocking thread while it waits on a registry).
const PULLS_AT_ONCE: usize = 4;
/// Log streams open at once (each reads its app's log when it starts).
const STREAMS_AT_ONCE: usize = 64;
/// A text field of the deploy form (an image reference, a name, a policy).
const MAX_FIELD: usize = 4096;
/// The largest upload: the largest module Qyvol runs, plus room for a bundle's other layers.
const MAX_UPLOAD: usize = qyvol_runtime::DEFAULT_MAX_MODULE_SIZE as usize * 2;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's files, compiled in.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx.min.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
];

struct Session {
    csrf: String,
    expires: std::time::Instant,
}

/// A pull started from the images view.
struct Pull {
    reference: String,
    total: AtomicU64,
    done: AtomicU64,
    outcome: Mutex<Option<Result<String, String>>>,
}

/// A pull's progress as the view shows it.
pub struct PullView {
    pub total: u64,
    pub done: u64,
    pub outcome: Option<Result<String, String>>,
}

impl qyvol_store::Progress for Pull {
    fn begin(&self, _digest: &str, size: u64) -> usize {
        self.total.fetch_add(size, Ordering::Relaxed);
        0
    }
    fn advance(&self, _id: usize, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn end(&self, _id: usize) {}
}

struct Dashboard {
    node: Node,
    streams: Arc<tokio::sync::Semaphore>,
    pulling: Arc<tokio::sync::Semaphore>,
    sessions: Mutex<HashMap<String, Session>>,
    pulls: Mutex<BTreeMap<u64, Arc<Pull>>>,
    next_pull: AtomicU64,
}

type Dash = Arc<Dashboard>;

/// The session a request was let in with.
#[derive(Clone)]
struct Sess {
    id: String,
    csrf: String,
}

impl Sess {
    /// Where the session's pages are.
    fn base(&self) -> String {
        format!("/s/{}", self.id)
    }
}

/// The dashboard, for the node's TCP listener: every path the API does not own. The gate
/// wraps the router, so it can take the session out of the path before the routes are matched.
pub(crate) fn routes(node: Node) -> axum::Router {
    let dash = Arc::new(Dashboard {
        node,
        streams: Arc::new(tokio::sync::Semaphore::new(STREAMS_AT_ONCE)),
        pulling: Arc::new(tokio::sync::Semaphore::new(PULLS_AT_ONCE)),
        sessions: Mutex::default(),
        pulls: Mutex::default(),
        next_pull: AtomicU64::new(1),
    });
    let router = axum::Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page))
        .route("/login/{code}", get(login))
        .route("/logout", post(logout))
        .route("/apps", get(apps_page))
        .route("/apps/{name}", get(app_page))
        .route("/images", get(images_page))
        .route("/deploy", get(deploy_page))
        .route("/assets/{file}", get(asset))
        .route("/ui/overview", get(overview_part))
        .route("/ui/apps", get(apps_part))
        .route("/ui/apps/{name}/status", get(status_part))
        .route("/ui/apps/{name}/charts", get(charts_part))
        .route("/ui/apps/{name}/logs", get(log_stream))
        .route("/ui/apps/{name}/{action}", post(act))
        .route("/ui/images", get(images_part))
        .route("/ui/images/pull", post(pull))
        .route("/ui/images/remove", post(remove_image))
        .route("/ui/pulls/{id}", get(pull_part))
        .route(
            "/ui/deploy",
            post(deploy).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .with_state(dash.clone());
    let gated = axum::middleware::from_fn_with_state(dash, gate);
    axum::Router::new().fallback_service(tower_layer::Layer::layer(&gated, router))
}

/// Whether `path` is the dashboard's (the API keeps `/api/`, `/metrics` and `/healthz`).
pub(crate) fn owns(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics" || path == "/healthz")
}

/// The dashboard's cookies, which the app port hides from guests.
pub(crate) const COOKIES: [&str; 2] = ["qyvol_session", "qyvol_lang"];

/// The first value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

fn random_hex() -> Result<String, NodeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NodeError::internal)?;
    Ok(hex::encode(bytes))
}

impl Dashboard {
    /// The live session `id` names.
    fn session(&self, id: &str) -> Option<Sess> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.get(id).map(|s| Sess {
            id: id.to_string(),
            csrf: s.csrf.clone(),
        })
    }

    fn end_session(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(id);
    }

    fn open_session(&self) -> Result<String, NodeError> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf,
                expires: std::time::Instant::now() + SESSION_TIME,
            },
        );
        Ok(id)
    }
}

/// Lets in a request whose path starts with a live session (`/s/<session>/...`; and, if it
/// changes state, carries the session's CSRF token), taking the session out of the path for the
/// routes; sends others to the login page. Adds the security headers to every answer.
async fn gate(State(dash): State<Dash>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let open = path == "/login" || path.starts_with("/login/") || path.starts_with("/assets/");
    let in_session = path
        .strip_prefix("/s/")
        .map(|rest| match rest.split_once('/') {
            Some((id, within)) => (id.to_string(), format!("/{within}")),
            None => (rest.to_string(), "/".to_string()),
        });
    let session = in_session
        .as_ref()
        .and_then(|(id, within)| Some((dash.session(id)?, within.clone())));
    let mut response = match session {
        _ if open => next.run(req).await,
        Some((sess, within)) => {
            let given = req
                .headers()
                .get("x-csrf-token")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if req.method() != Method::GET
                && req.method() != Method::HEAD
                && !crate::access::same(given.as_bytes(), sess.csrf.as_bytes())
            {
                text_error(
                    StatusCode::FORBIDDEN,
                    "this request lacks the page's CSRF token: reload the page",
                )
            } else {
                let uri = match req.uri().query() {
                    Some(q) => format!("{within}?{q}"),
                    None => within,
                };
                match uri.parse() {
                    Ok(uri) => {
                        *req.uri_mut() = uri;
                        if let Some(p) = req.extensions().get::<crate::access::Pending>() {
                            p.trust();
                        }
                        req.extensions_mut().insert(sess);
                        next.run(req).await
                    }
                    Err(_) => text_error(StatusCode::BAD_REQUEST, "not a path of the dashboard"),
                }
            }
        }
        None => {
            let fragment = in_session.is_some_and(|(_, w)| w.starts_with("/ui/"));
            if req.method() == Method::GET && !fragment {
                Redirect::to("/login").into_response()
            } else {
                let mut r = text_error(StatusCode::UNAUTHORIZED, "log in again: the session ended");
                r.headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/login"));
                r
            }
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !path.starts_with("/assets/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// A node error as the dashboard shows it: the status the API would give, in plain text.
fn failed(e: NodeError) -> Response {
    let (status, _) = crate::answer::status_of(&e);
    text_error(status, &qyvol_common::escape_controls(&e.to_string()))
}

fn html(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// What a handler needs to render: the language, the session's CSRF token, the page's path.
/// A `?lang=` picks the language and sets the cookie that keeps it (the toggle).
struct Page {
    ctx: Ctx,
    set_lang: Option<HeaderValue>,
}

impl axum::extract::FromRequestParts<Dash> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &Dash,
    ) -> Result<Self, Self::Rejection> {
        let asked = parts
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
            .filter(|l| matches!(*l, "es" | "en"));
        let lang = Lang::choose(asked, &parts.headers);
        let set_lang = asked.map(|_| {
            HeaderValue::from_str(&format!(
                "qyvol_lang={}; Path=/; Max-Age=31536000; SameSite=Strict; HttpOnly",
                lang.code()
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("qyvol_lang=es"))
        });
        // The toggle links back here: never to another host (`//host`).
        let path = parts.uri.path();
        let path = if path.starts_with("//") { "/" } else { path };
        let sess = parts.extensions.get::<Sess>();
        Ok(Self {
            ctx: Ctx {
                lang,
                csrf: sess.map(|s| s.csrf.clone()),
                path: path.to_string(),
                base: sess.map(Sess::base).unwrap_or_default(),
            },
            set_lang,
        })
    }
}

impl Page {
    fn t(&self, t: T) -> &'static str {
        self.ctx.t(t)
    }

    /// A whole page around `body`, or the error that kept it from being made.
    fn full(&self, title: &str, nav: Nav, body: Result<Markup, NodeError>) -> Response {
        match body {
            Ok(body) => {
                let mut r = html(views::page(&self.ctx, title, nav, body));
                if let Some(c) = &self.set_lang {
                    r.headers_mut().append(header::SET_COOKIE, c.clone());
                }
                r
            }
            Err(e) => failed(e),
        }
    }
}

/// A fragment for htmx to swap in, or the error.
fn part(body: Result<Markup, NodeError>) -> Response {
    body.map_or_else(failed, html)
}

/// Why a form could not be read.
enum FormFault {
    /// Over the body limit: 413, as the API answers.
    TooLarge,
    /// It did not parse: each form says so in its own words.
    Unreadable,
}

fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, FormFault> {
    match form {
        Ok(Form(f)) => Ok(f),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(FormFault::TooLarge),
        Err(_) => Err(FormFault::Unreadable),
    }
}

fn too_large() -> Response {
    text_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the form is larger than the node accepts",
    )
}

fn now() -> u64 {
    crate::state::now_ms()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            Bytes::from_static(body),
        )
            .into_response(),
        None => text_error(StatusCode::NOT_FOUND, "no such file"),
    }
}

async fn login_page(page: Page) -> Response {
    page.full(
        page.t(T::LogIn),
        Nav::None,
        Ok(views::login(&page.ctx, false)),
    )
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    v: String,
}

/// A one-time link from `qyvol dashboard` (`/login/CODE?v=VERIFIER`): opens a session and goes
/// to its overview.
async fn login(
    State(dash): State<Dash>,
    Path(code): Path<String>,
    Query(link): Query<LinkQuery>,
    page: Page,
) -> Response {
    if !dash.node.logins().redeem(&code, &link.v) {
        let mut r = page.full(
            page.t(T::LogIn),
            Nav::None,
            Ok(views::login(&page.ctx, true)),
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    match dash.open_session() {
        Ok(id) => Redirect::to(&format!("/s/{id}/")).into_response(),
        Err(e) => failed(e),
    }
}

async fn logout(
    State(dash): State<Dash>,
    axum::Extension(sess): axum::Extension<Sess>,
) -> Response {
    dash.end_session(&sess.id);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("hx-redirect", HeaderValue::from_static("/login"));
    r
}

fn overview(dash: &Dashboard, ctx: &Ctx) -> Result<Markup, NodeError> {
    let info = dash.node.info()?;
    let (events, _) = dash.node.events();
    Ok(views::overview(
        ctx,
        &info,
        &dash.node.series().node(),
        &events,
        now(),
    ))
}

async fn overview_page(State(dash): State<Dash>, page: Page) -> Response {
    page.full(
        page.t(T::Overview),
        Nav::Overview,
        overview(&dash, &page.ctx),
    )
}

async fn overview_part(State(dash): State<Dash>, page: Page) -> Response {
    part(overview(&dash, &page.ctx))
}

fn apps_table(dash: &Dashboard, ctx: &Ctx, q: &AppsQuery) -> Result<Markup, NodeError> {
    let all = dash.node.list(true)?;
    let any = !all.is_empty();
    let shown = q.apply(all, now());
    Ok(views::apps_table(ctx, q, &shown, any, now()))
}

async fn apps_page(State(dash): State<Dash>, page: Page, Query(q): Query<AppsQuery>) -> Response {
    let body = apps_table(&dash, &page.ctx, &q).map(|t| views::apps_page(&page.ctx, &q, t));
    page.full(page.t(T::Apps), Nav::Apps, body)
}

async fn apps_part(State(dash): State<Dash>, page: Page, Query(q): Query<AppsQuery>) -> Response {
    part(apps_table(&dash, &page.ctx, &q))
}

fn status(dash: &Dashboard, ctx: &Ctx, name: &str) -> Result<Markup, NodeError> {
    let app = dash.node.view(name)?;
    let (events, _) = dash.node.events();
    let mine: Vec<_> = events.into_iter().filter(|e| e.app == name).collect();
    Ok(views::app_status(ctx, &app, &mine, now()))
}

async fn app_page(State(dash): State<Dash>, page: Page, Path(name): Path<String>) -> Response {
    let body = dash.node.view(&name).and_then(|app| {
        let status = status(&dash, &page.ctx, &name)?;
        Ok(views::app_page(&page.ctx, &app, status))
    });
    page.full(&name, Nav::Apps, body)
}

async fn status_part(State(dash): State<Dash>, page: Page, Path(name): Path<String>) -> Response {
    part(status(&dash, &page.ctx, &name))
}

async fn charts_part(State(dash): State<Dash>, page: Page, Path(name): Path<String>) -> Response {
    part(dash.node.exists(&name).and_then(|exists| {
        if exists {
            Ok(views::charts(
                &page.ctx,
                &dash.node.series().of(&name),
                now(),
            ))
        } else {
            Err(NodeError::NotFound(name))
        }
    }))
}

/// The app's log as server-sent events: its last lines, then each new one. Each event is
/// JSON `{time, stream, text}` with control characters shown escaped; the page inserts it as
/// text, never as markup.
async fn log_stream(
    State(dash): State<Dash>,
    Path(name): Path<String>,
    axum::Extension(sess): axum::Extension<Sess>,
    headers: HeaderMap,
) -> Response {
    // The app this stream is about: one removed and deployed again under its name is another.
    let created = match dash.node.view(&name) {
        Ok(app) => app.created,
        Err(e) => return failed(e),
    };
    let node = dash.node.clone();
    // A reconnecting EventSource says where it was.
    let since = headers
        .get("last-event-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| ms.saturating_add(1));
    let tail = if since.is_some() { None } else { Some(500) };
    let Ok(permit) = dash.streams.clone().try_acquire_owned() else {
        return text_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("{STREAMS_AT_ONCE} logs are being followed: close a page first"),
        );
    };
    let Some((lines, mut cursor)) = dash.node.logs().read_off_thread(&name, tail, since).await
    else {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the log could not be read",
        );
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let dash = dash.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let event = |l: &crate::LogLine| {
            let data = serde_json::json!({
                "time": l.time,
                "stream": l.stream,
                "text": qyvol_common::escape_controls(&l.text),
            });
            Bytes::from(format!("id: {}\ndata: {data}\n\n", l.unix_ms()))
        };
        for l in &lines {
            if tx.send(event(l)).await.is_err() {
                return;
            }
        }
        let mut idle = 0u32;
        for round in 0u64.. {
            // Ends with its app, and with its session (logged out, or expired).
            if round % 5 == 4
                && (!node.still_deployed(&name, created) || dash.session(&sess.id).is_none())
            {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = tx.closed() => return,
            }
            let Some((c, lines)) = cursor.poll_off_thread().await else {
                return;
            };
            cursor = c;
            idle = if lines.is_empty() { idle + 1 } else { 0 };
            for l in &lines {
                if tx.send(event(l)).await.is_err() {
                    return;
                }
            }
            // A comment now and then, so a closed page is noticed and its task ends.
            if idle >= 75 {
                idle = 0;
                if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() {
                    return;
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::new(crate::answer::Channel(rx)),
    )
        .into_response()
}

async fn act(
    State(dash): State<Dash>,
    Path((name, action)): Path<(String, String)>,
    page: Page,
) -> Response {
    let node = &dash.node;
    let done = match action.as_str() {
        "start" => node.start(&name).await.map(drop),
        "stop" => node.stop(&name).await.map(drop),
        "restart" => node.restart(&name).await.map(drop),
        "remove" => node.remove(&name, true).await,
        _ => return text_error(StatusCode::NOT_FOUND, "no such action"),
    };
    if let Err(e) = done {
        return failed(e);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let (k, v) = if action == "remove" {
        ("hx-redirect", page.ctx.to("/apps"))
    } else {
        ("hx-trigger", "qyvol-changed".to_string())
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(k, v);
    }
    r
}

fn store(dash: &Dashboard) -> Result<qyvol_store::Store, NodeError> {
    qyvol_store::Store::open(&dash.node.home().store())
        .map_err(|e| NodeError::Internal(e.to_string()))
}

fn images(dash: &Dashboard) -> Result<Vec<qyvol_store::ImageEntry>, NodeError> {
    store(dash)?
        .list()
        .map_err(|e| NodeError::Internal(e.to_string()))
}

async fn images_page(State(dash): State<Dash>, page: Page) -> Response {
    let body = images(&dash)
        .map(|list| views::images_page(&page.ctx, views::images_table(&page.ctx, &list)));
    page.full(page.t(T::Images), Nav::Images, body)
}

async fn images_part(State(dash): State<Dash>, page: Page) -> Response {
    part(images(&dash).map(|list| views::images_table(&page.ctx, &list)))
}

#[derive(Deserialize)]
struct RefForm {
    reference: String,
}

/// An error shown where the form's answer goes (422 is swapped in by htmx, see the page's
/// htmx settings).
fn form_error(text: &str) -> Response {
    let mut r = html(views::error(text));
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

async fn pull(
    State(dash): State<Dash>,
    page: Page,
    form: Result<Form<RefForm>, FormRejection>,
) -> Response {
    let f = match read_form(form) {
        Ok(f) => f,
        Err(FormFault::TooLarge) => return too_large(),
        Err(FormFault::Unreadable) => return form_error("give an image reference to pull"),
    };
    let reference = match qyvol_store::parse_reference(f.reference.trim()) {
        Ok(r) => r,
        Err(e) => return form_error(&format!("`{}`: {e}", f.reference.trim())),
    };
    let Ok(slot) = dash.pulling.clone().try_acquire_owned() else {
        return text_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("{PULLS_AT_ONCE} pulls are running: try again when one has ended"),
        );
    };
    let job = Arc::new(Pull {
        reference: qyvol_store::canonical(&reference),
        total: AtomicU64::new(0),
        done: AtomicU64::new(0),
        outcome: Mutex::new(None),
    });
    let id = dash.next_pull.fetch_add(1, Ordering::Relaxed);
    {
        let mut pulls = dash.pulls.lock().unwrap_or_else(|p| p.into_inner());
        while pulls.len() >= MAX_PULLS {
            pulls.pop_first();
        }
        pulls.insert(id, job.clone());
    }
    let home = dash.node.home().clone();
    let progress: Arc<dyn qyvol_store::Progress> = job.clone();
    let worker = job.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = crate::deploy::pull(&home, &reference, false, Some(progress))
            .map_err(|e| e.to_string());
        *worker.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        drop(slot);
    });
    html(views::pull(&page.ctx, id, &job.reference, &view_of(&job)))
}

fn view_of(job: &Pull) -> PullView {
    PullView {
        total: job.total.load(Ordering::Relaxed),
        done: job.done.load(Ordering::Relaxed),
        outcome: job
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    }
}

async fn pull_part(State(dash): State<Dash>, page: Page, Path(id): Path<u64>) -> Response {
    let job = dash
        .pulls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(job) = job else {
        return text_error(StatusCode::NOT_FOUND, "no such pull");
    };
    let view = view_of(&job);
    let finished = view.outcome.is_some();
    let mut r = html(views::pull(&page.ctx, id, &job.reference, &view));
    if finished {
        r.headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("qyvol-images"));
    }
    r
}

async fn remove_image(
    State(dash): State<Dash>,
    form: Result<Form<RefForm>, FormRejection>,
) -> Response {
    let f = match read_form(form) {
        Ok(f) => f,
        Err(FormFault::TooLarge) => return too_large(),
        Err(FormFault::Unreadable) => {
            return text_error(StatusCode::BAD_REQUEST, "name the image to remove");
        }
    };
    let removed = match (qyvol_store::parse_reference(&f.reference), store(&dash)) {
        (Ok(r), Ok(store)) => store.remove(&r).map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    match removed {
        Ok(_) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert("hx-trigger", HeaderValue::from_static("qyvol-images"));
            r
        }
        Err(e) => text_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &qyvol_common::escape_controls(&e),
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeployQuery {
    image: String,
}

async fn deploy_page(
    State(dash): State<Dash>,
    page: Page,
    Query(q): Query<DeployQuery>,
) -> Response {
    let body = images(&dash).map(|list| views::deploy_page(&page.ctx, &list, &q.image));
    page.full(page.t(T::Deploy), Nav::Deploy, body)
}

/// Deploys an image from the store or an uploaded bundle or wasm, with the form's name and
/// restart policy. The upload is written to a private temporary file beside the node's state
/// and deleted once its module is stored; like any bundle, its own manifest grants nothing.
async fn deploy(State(dash): State<Dash>, page: Page, mut form: Multipart) -> Response {
    let mut req = DeployRequest::default();
    let mut upload: Option<(tempfile::NamedTempFile, String)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return form_error(&format!("the form could not be read: {}", e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                if file_name.is_empty() {
                    continue;
                }
                let ext = if file_name.ends_with(".qyvc") {
                    ".qyvc"
                } else if file_name.ends_with(".wasm") {
                    ".wasm"
                } else {
                    return form_error("upload a `.qyvc` bundle or a `.wasm` file");
                };
                match save_upload(&dash, field, ext).await {
                    Ok(tmp) => upload = Some((tmp, file_name)),
                    Err(e) => return form_error(&e),
                }
            }
            "image" | "name" | "restart" => {
                let value = match small_text(field).await {
                    Ok(v) => v.trim().to_string(),
                    Err(e) => return form_error(&e),
                };
                if value.is_empty() {
                    continue;
                }
                match name.as_str() {
                    "image" => req.source = value,
                    "name" => req.name = Some(value),
                    _ => req.restart = Some(value),
                }
            }
            _ => {}
        }
    }
    let label = match &upload {
        Some((tmp, file_name)) => {
            req.source = tmp.path().display().to_string();
            let shown: String = file_name.chars().take(100).collect();
            Some(format!("upload:{}", qyvol_common::escape_controls(&shown)))
        }
        None if req.source.is_empty() => return form_error(page.t(T::NoSource)),
        // The form deploys images of the local store, nothing else: not a path on the node's
        // machine (its manifest's grants would count), not a pull.
        None => match images(&dash) {
            Ok(list) if list.iter().any(|i| i.reference == req.source) => None,
            Ok(_) => {
                return form_error(&format!(
                    "`{}` is not an image in the node's store: pull it first",
                    req.source
                ));
            }
            Err(e) => return failed(e),
        },
    };
    let result = dash.node.deploy_labelled(req, label).await;
    drop(upload);
    match result {
        Ok(view) => {
            let mut r = StatusCode::CREATED.into_response();
            let to = page.ctx.to(&format!("/apps/{}", views::encode(&view.name)));
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        }
        Err(e) => form_error(&e.to_string()),
    }
}

/// A text field of at most [`MAX_FIELD`] bytes, read as it arrives.
async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_FIELD {
                    return Err(format!("a form field may be at most {MAX_FIELD} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(e.body_text()),
        }
    }
    String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8 text".to_string())
}

async fn save_upload(
    dash: &Dashboard,
    mut field: axum::extract::multipart::Field<'_>,
    ext: &str,
) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    let dir = dash.node.paths().uploads();
    qyvol_common::create_private_dir(&dir).map_err(|e| e.to_string())?;
    let mut tmp = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(ext)
        .tempfile_in(&dir)
        .map_err(|e| e.to_string())?;
    let mut size = 0usize;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len();
                if size > MAX_UPLOAD {
                    return Err(format!("an upload may be at most {MAX_UPLOAD} bytes"));
                }
                tmp.write_all(&chunk).map_err(|e| e.to_string())?;
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the upload was cut short: {}", e.body_text())),
        }
    }
    tmp.flush().map_err(|e| e.to_string())?;
    Ok(tmp)
}
