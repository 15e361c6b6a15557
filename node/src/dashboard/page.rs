//! How the dashboard's handlers answer: a whole page or a fragment for htmx in the request's
//! language, a form read within its limit, and errors as plain text.

use axum::extract::Form;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::text::T;
use super::views::{self, Ctx, Nav};
use super::{Dash, Sess};
use crate::NodeError;

pub(super) fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// A node error as the dashboard shows it: the status the API would give, in plain text.
pub(super) fn failed(e: NodeError) -> Response {
    let (status, _) = crate::answer::status_of(&e);
    text_error(status, &qyvol_common::escape_controls(&e.to_string()))
}

pub(super) fn html(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// What a handler needs to render: the language, the session's CSRF token, the page's path.
/// A `?lang=` picks the language and sets the cookie that keeps it (the toggle).
pub(super) struct Page {
    pub(super) ctx: Ctx,
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
        let lang = super::text::choose(asked, &parts.headers);
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
    pub(super) fn t(&self, t: T) -> &'static str {
        self.ctx.t(t)
    }

    /// A whole page around `body`, or the error that kept it from being made.
    pub(super) fn full(&self, title: &str, nav: Nav, body: Result<Markup, NodeError>) -> Response {
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
pub(super) fn part(body: Result<Markup, NodeError>) -> Response {
    body.map_or_else(failed, html)
}

/// Why a form could not be read.
pub(super) enum FormFault {
    /// Over the body limit: 413, as the API answers.
    TooLarge,
    /// It did not parse: each form says so in its own words.
    Unreadable,
}

pub(super) fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, FormFault> {
    match form {
        Ok(Form(f)) => Ok(f),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(FormFault::TooLarge),
        Err(_) => Err(FormFault::Unreadable),
    }
}

pub(super) fn too_large() -> Response {
    text_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the form is larger than the node accepts",
    )
}

/// An error shown where the form's answer goes (422 is swapped in by htmx, see the page's
/// htmx settings).
pub(super) fn form_error(text: &str) -> Response {
    let mut r = html(views::error(text));
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

pub(super) fn now() -> u64 {
    crate::state::now_ms()
}
