//! Why a request did not get its handler's response, and the answer the client gets instead.

use std::time::Duration;

use hyper::{Response, StatusCode};

use super::{Body, full};
use crate::{Outcome, Resource};

/// Why a request did not get the handler's own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailure {
    /// No app's route matches the path (404).
    NoRoute,
    /// The request body is larger than the app accepts (413).
    BodyTooLarge { limit: u64 },
    /// The request body had not arrived when its time ran out (408).
    BodyTimeout { limit: Duration, received: u64 },
    /// The request body arrived slower than the minimum rate, in bytes per second (408).
    BodyTooSlow {
        rate: u64,
        received: u64,
        elapsed: Duration,
    },
    /// The request is malformed for the handler, e.g. no `Host` (400).
    BadRequest(String),
    /// The handler ended badly: a trap, a limit, an exit code, output that is not a response.
    Handler(Outcome),
    /// The handler broke the protocol (no response, malformed CGI output) (500).
    Protocol(String),
    /// The server is stopping (503).
    ShuttingDown,
    /// Every connection the server keeps open is taken (503, and the connection is closed).
    TooManyConnections { limit: u32 },
    /// The app has as many requests in progress as it may (503).
    AppBusy { limit: u32 },
}

impl RequestFailure {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Handler(Outcome::TimedOut(_) | Outcome::FuelExhausted(_)) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Handler(Outcome::LimitExceeded {
                resource: Resource::AppMemory | Resource::NodeMemory,
                ..
            }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Handler(_) | Self::Protocol(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown | Self::TooManyConnections { .. } | Self::AppBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The status and the short words a client gets, for a probe's report (`500 Internal
    /// Server Error: the handler failed`).
    pub fn describe(&self) -> String {
        format!("{} {}", self.status().as_u16(), self.body().trim_end())
    }

    /// Whether the connection ends with this answer: the client is too slow or one too many.
    fn closes(&self) -> bool {
        matches!(
            self,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } | Self::TooManyConnections { .. }
        )
    }

    /// The short body sent to the client: nothing about the handler's insides.
    fn body(&self) -> String {
        match self {
            Self::NoRoute => "Not Found: no route matches this path\n".into(),
            Self::BodyTooLarge { limit } => format!(
                "Payload Too Large: the body may be at most {} bytes\n",
                limit
            ),
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => {
                "Request Timeout: the body did not arrive in time\n".into()
            }
            Self::BadRequest(why) => format!("Bad Request: {why}\n"),
            Self::Handler(Outcome::TimedOut(_) | Outcome::FuelExhausted(_)) => {
                "Gateway Timeout: the handler ran past its time limit\n".into()
            }
            Self::Handler(Outcome::LimitExceeded {
                resource: Resource::AppMemory | Resource::NodeMemory,
                ..
            }) => "Service Unavailable: the requests in progress use all the memory allowed, try again later\n".into(),
            Self::Handler(_) | Self::Protocol(_) => {
                "Internal Server Error: the handler failed\n".into()
            }
            Self::ShuttingDown => "Service Unavailable: the server is stopping\n".into(),
            Self::TooManyConnections { .. } => {
                "Service Unavailable: too many open connections, try again later\n".into()
            }
            Self::AppBusy { .. } => {
                "Service Unavailable: this app is answering all the requests it may at once, try again later\n".into()
            }
        }
    }
}

/// Why a handler's run, ended without (or before finishing) a response, failed the request.
pub(crate) fn failure_of(outcome: Outcome) -> RequestFailure {
    match outcome {
        Outcome::Exited(0) => {
            RequestFailure::Protocol("the handler returned without setting a response".into())
        }
        Outcome::Exited(code) => RequestFailure::Protocol(format!(
            "the handler exited with code {code} before sending a response"
        )),
        other => RequestFailure::Handler(other),
    }
}

pub(super) fn error_response(f: &RequestFailure) -> Response<Body> {
    use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
    let mut r = Response::new(full(f.body()));
    *r.status_mut() = f.status();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if f.closes() {
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}
