//! The node's signature on its answer to a signed request (see `access`): a whole answer in a
//! header, a stream's each line and its end in the stream itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use super::refuse;

/// The most of an answer that is signed whole (a list of apps, metrics); streams (logs,
/// events) are signed line by line.
const MAX_SIGNED_ANSWER: usize = 64 * 1024 * 1024;

/// `answer` with its signature for `challenge` (see `access`): whole, or a stream's each line.
pub(super) async fn sign_answer(token: &str, challenge: &str, answer: Response) -> Response {
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
