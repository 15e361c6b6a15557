//! What the API and the dashboard answer alike: the HTTP status of a node error, and a body
//! streamed from a channel (logs, events).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use bytes::Bytes;

use crate::NodeError;

/// The HTTP status and code of an error, for the API and the dashboard alike.
pub(crate) fn status_of(e: &NodeError) -> (StatusCode, &'static str) {
    match e {
        NodeError::NotFound(_) | NodeError::Missing(_) => (StatusCode::NOT_FOUND, "not-found"),
        NodeError::Exists(_) => (StatusCode::CONFLICT, "exists"),
        NodeError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        NodeError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
        NodeError::Launch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot-deploy"),
        NodeError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy"),
        NodeError::State(_) | NodeError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

/// A body fed by a channel, one chunk per message, ended when the sender is dropped.
pub(crate) struct Channel(pub(crate) tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}
