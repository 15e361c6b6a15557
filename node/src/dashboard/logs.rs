//! An app's log followed live on its page, as server-sent events, until the app or the session
//! ends.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::page::{failed, text_error};
use super::{Dash, Sess};

/// Log streams open at once (each reads its app's log when it starts).
pub(super) const STREAMS_AT_ONCE: usize = 64;

/// The app's log as server-sent events: its last lines, then each new one. Each event is
/// JSON `{time, stream, text}` with control characters shown escaped; the page inserts it as
/// text, never as markup.
pub(super) async fn log_stream(
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
