//! Dashboard sessions: opened by a one-time login link, carried in the path (never a cookie),
//! checked with their CSRF token by the gate every request passes, and ended by logging out.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{Page, failed, text_error};
use super::text::T;
use super::views::{self, Nav};
use super::{Dash, Dashboard, Sess};
use crate::NodeError;

/// How long a login lasts.
const SESSION_TIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past this the oldest is logged out.
const MAX_SESSIONS: usize = 64;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) struct Session {
    csrf: String,
    expires: std::time::Instant,
}

fn random_hex() -> Result<String, NodeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NodeError::internal)?;
    Ok(hex::encode(bytes))
}

impl Dashboard {
    /// The live session `id` names.
    pub(super) fn session(&self, id: &str) -> Option<Sess> {
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
pub(super) async fn gate(State(dash): State<Dash>, mut req: Request, next: Next) -> Response {
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

pub(super) async fn login_page(page: Page) -> Response {
    page.full(
        page.t(T::LogIn),
        Nav::None,
        Ok(views::login(&page.ctx, false)),
    )
}

#[derive(Deserialize)]
pub(super) struct LinkQuery {
    #[serde(default)]
    v: String,
}

/// A one-time link from `qyvol dashboard` (`/login/CODE?v=VERIFIER`): opens a session and goes
/// to its overview.
pub(super) async fn login(
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

pub(super) async fn logout(
    State(dash): State<Dash>,
    axum::Extension(sess): axum::Extension<Sess>,
) -> Response {
    dash.end_session(&sess.id);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("hx-redirect", HeaderValue::from_static("/login"));
    r
}
