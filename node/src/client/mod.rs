//! A client of a node's API, for the CLI (and anything else): the local node through its Unix
//! socket, or another through `http://HOST:PORT` with its token.
//!
//! Here: where a node is and what a call can fail with; `calls` sends the calls and reads
//! their answers, `proof` has the server prove it holds the token before a signed request.

mod calls;
mod proof;

use std::path::PathBuf;

use bytes::Bytes;
use hyper::StatusCode;

/// Where a node's API is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp {
        /// `host:port`.
        authority: String,
        token: Option<String>,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "{}", p.display()),
            Self::Tcp { authority, .. } => write!(f, "http://{authority}"),
        }
    }
}

impl Endpoint {
    /// `http://HOST:PORT` (or `HOST:PORT`), or `unix:PATH`.
    pub fn parse(text: &str, token: Option<String>) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(Self::Unix(path.into()));
        }
        if text.starts_with("https://") {
            return Err(format!(
                "`{text}`: the node speaks plain HTTP; put a TLS proxy in front and use it, or an SSH tunnel to `http://127.0.0.1:PORT`"
            ));
        }
        let authority = text
            .strip_prefix("http://")
            .unwrap_or(text)
            .trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            return Err(format!(
                "`{text}` is not a node address: write `http://HOST:PORT`"
            ));
        }
        Ok(Self::Tcp {
            authority: authority.to_string(),
            token,
        })
    }
}

/// Why a call did not get an answer from the node's logic.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the endpoint.
    #[error("no node answers at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The node answered with an error.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The server at the endpoint did not prove it holds the node's token, so the token was
    /// not sent: another program may be listening on that port.
    #[error(
        "the server at {endpoint} did not prove it holds your token ({reason}); the token was not \
         sent: check the token, the address, and that the node is running there (another \
         program may be listening on that port)"
    )]
    Impostor { endpoint: String, reason: String },
    #[error("{0}")]
    Protocol(String),
}

/// A connected client; each call opens a connection (the API is local and cheap).
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
}

/// A response: its status and body.
pub type Answer = (StatusCode, Bytes);

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether anything listens at the endpoint (no request is sent).
    pub async fn listening(&self) -> bool {
        match &self.endpoint {
            Endpoint::Unix(path) => tokio::net::UnixStream::connect(path).await.is_ok(),
            Endpoint::Tcp { authority, .. } => tokio::net::TcpStream::connect(authority.as_str())
                .await
                .is_ok(),
        }
    }
}
