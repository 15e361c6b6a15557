//! The API's calls answered whole: apps listed, deployed, inspected, stopped, started,
//! restarted and removed; the node's overview, metrics and stop; the proof and login links.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Api, MAX_BODY, refuse};
use crate::{DeployRequest, NodeError};

pub(super) async fn metrics(State(api): State<Api>) -> Result<Response, NodeError> {
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
pub(super) struct ListQuery {
    #[serde(default)]
    all: bool,
    /// At most this many apps (1 to [`MAX_PAGE`]); all of them when absent.
    limit: Option<usize>,
    /// The apps whose names sort after this one (the last name of the previous page).
    after: Option<String>,
}

/// The most apps one page of the list holds.
const MAX_PAGE: usize = 1000;

/// The apps, by name. With `limit`, a page of them, and when more follow, a `Link` header
/// (`rel="next"`, RFC 8288) to the next page, as GitHub's API pages.
pub(super) async fn list(
    State(api): State<Api>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, NodeError> {
    let Query(q) = q.map_err(|e| {
        NodeError::BadRequest(format!(
            "the list's query: {}; `limit` is a number of apps (1 to {MAX_PAGE}), `after` an app's name, `all` true or false",
            e.body_text()
        ))
    })?;
    let Some(limit) = q.limit else {
        return Ok(Json(api.node.list(q.all)?).into_response());
    };
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(NodeError::BadRequest(format!(
            "`limit` must be 1 to {MAX_PAGE} apps a page; follow the `Link` header for the next"
        )));
    }
    // One more than asked says whether a next page exists.
    let mut apps = api.node.list_page(q.all, q.after.as_deref(), limit + 1)?;
    let more = apps.len() > limit;
    apps.truncate(limit);
    let mut response = Json(&apps).into_response();
    if let Some(last) = apps.last().filter(|_| more) {
        // An app's name is letters, digits and `-`: nothing in it needs encoding.
        let next = format!(
            "</api/v1/apps?limit={limit}&after={}{}>; rel=\"next\"",
            last.name,
            if q.all { "&all=true" } else { "" }
        );
        if let Ok(value) = header::HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

pub(super) async fn deploy(
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

pub(super) async fn inspect(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.view(&name)?).into_response())
}

#[derive(Deserialize)]
pub(super) struct RemoveQuery {
    #[serde(default)]
    force: bool,
    /// Keep the app's key-value buckets (`rm --keep-data`).
    #[serde(default)]
    keep_data: bool,
}

pub(super) async fn remove(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, NodeError> {
    api.node.remove_keeping(&name, q.force, q.keep_data).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn stop(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.stop(&name).await?).into_response())
}

pub(super) async fn start(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.start(&name).await?).into_response())
}

pub(super) async fn restart(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.restart(&name).await?).into_response())
}

pub(super) async fn rollback(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.rollback(&name).await?).into_response())
}

pub(super) async fn info(State(api): State<Api>) -> Result<Response, NodeError> {
    Ok(Json(api.node.info()?).into_response())
}

pub(super) async fn shutdown(State(api): State<Api>) -> Response {
    api.node.request_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct ProofQuery {
    nonce: String,
}

/// The node's proof that it holds the token, with a challenge for this connection's next
/// request (see `access`).
pub(super) async fn proof(
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
pub(super) struct LinkRequest {
    /// The SHA-256 of the value the link is opened with (`?v=`).
    verifier: String,
}

/// A one-time link that opens a dashboard session.
pub(super) async fn login_link(
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
