//! The API's streamed answers, as JSON lines: an app's log (followed, when asked) and the
//! node's events.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::Api;
use crate::NodeError;
use crate::answer::Channel;

#[derive(Deserialize)]
pub(super) struct LogsQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<usize>,
    /// Unix milliseconds.
    since: Option<u64>,
}

/// The app's lines as JSON lines (`{"time","stream","text"}`); with `follow`, new lines as
/// they are written, until the client goes away or the app is removed (as `docker logs -f`
/// ends with its container).
pub(super) async fn logs(
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
pub(super) async fn events(State(api): State<Api>) -> Response {
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
