//! `qyvol kv`'s and `qyvol volume`'s calls. Key-value: a deployed app's buckets, their keys, and one key read, written or
//! deleted; keys travel percent-encoded in the path; values as JSON (`text`, or `hex` for
//! bytes that are not UTF-8). Volumes: listed, created, inspected, removed.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Api;
use crate::NodeError;

pub(super) async fn buckets(
    State(api): State<Api>,
    Path(app): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.kv_buckets(&app)?).into_response())
}

#[derive(Deserialize)]
pub(super) struct KeysQuery {
    /// The key this page starts after (the last page's `next`).
    #[serde(default)]
    after: Option<String>,
}

pub(super) async fn keys(
    State(api): State<Api>,
    Path((app, bucket)): Path<(String, String)>,
    Query(q): Query<KeysQuery>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.kv_keys(&app, &bucket, q.after.as_deref())?).into_response())
}

pub(super) async fn get(
    State(api): State<Api>,
    Path((app, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.kv_get(&app, &bucket, &key)?).into_response())
}

/// A value to write: text, or bytes in hex.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Put {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    hex: Option<String>,
}

pub(super) async fn put(
    State(api): State<Api>,
    Path((app, bucket, key)): Path<(String, String, String)>,
    body: Result<Json<Put>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, NodeError> {
    let Json(put) =
        body.map_err(|e| NodeError::BadRequest(format!("the value: {}", e.body_text())))?;
    let value = match (put.text, put.hex) {
        (Some(t), None) => t.into_bytes(),
        (None, Some(h)) => {
            hex::decode(h).map_err(|e| NodeError::BadRequest(format!("`hex`: {e}")))?
        }
        _ => {
            return Err(NodeError::BadRequest(
                "give the value as `text` or as `hex`, one of them".into(),
            ));
        }
    };
    // A write waits for the disk: off the async workers.
    tokio::task::spawn_blocking(move || api.node.kv_put(&app, &bucket, &key, value))
        .await
        .map_err(NodeError::internal)??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn delete(
    State(api): State<Api>,
    Path((app, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, NodeError> {
    tokio::task::spawn_blocking(move || api.node.kv_delete(&app, &bucket, &key))
        .await
        .map_err(NodeError::internal)??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn volumes(State(api): State<Api>) -> Result<Response, NodeError> {
    Ok(Json(api.node.volumes()?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewVolume {
    name: String,
}

pub(super) async fn create_volume(
    State(api): State<Api>,
    body: Result<Json<NewVolume>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, NodeError> {
    let Json(v) =
        body.map_err(|e| NodeError::BadRequest(format!("the volume: {}", e.body_text())))?;
    Ok((
        StatusCode::CREATED,
        Json(api.node.create_volume(&v.name, false)?),
    )
        .into_response())
}

pub(super) async fn volume(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    Ok(Json(api.node.volume(&name)?).into_response())
}

pub(super) async fn remove_volume(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, NodeError> {
    api.node.remove_volume(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
