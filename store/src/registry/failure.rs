//! Why a transfer from a registry failed, worded for the operator with what to do next.

use qyvol_common::DurationSpec;

#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("{0}; is the registry running and reachable?")]
    Unreachable(String),
    #[error("the registry refused the request ({0}); log in with `qyvol login {1}`")]
    Unauthorized(String, String),
    /// The connection failed after it was made (TLS, protocol, a redirect refused).
    #[error("{0}")]
    Http(String),
    /// The registry answered with an error status.
    #[error("{0}")]
    Status(String),
    /// The registry has no such manifest or blob (404).
    #[error("{0}")]
    NotFound(String),
    #[error(
        "the registry did not send the {what} within {timeout}: it is stalled or too slow (set QYVOL_REGISTRY_TIMEOUT to wait longer)"
    )]
    Deadline {
        what: &'static str,
        timeout: DurationSpec,
    },
    #[error("the registry sent less than {} in {window}: the transfer stalled (set QYVOL_REGISTRY_TIMEOUT to wait longer)", bytes(*.need))]
    Stalled { need: u64, window: DurationSpec },
    #[error("the registry announces a manifest of {0} bytes, more than the 4 MiB limit")]
    ManifestAnnounced(u64),
    #[error("the manifest is larger than 4 MiB: cut off")]
    ManifestTooLarge,
    #[error("the registry announces {announced} bytes, more than the descriptor's {size}")]
    BlobAnnounced { announced: u64, size: u64 },
    #[error("the registry sent more than the descriptor's {0} bytes")]
    BlobTooLarge(u64),
    #[error("cannot write it into the store: {0}")]
    Store(std::io::Error),
}

impl FetchError {
    /// The registry could not be talked to at all, or not in time.
    pub(super) fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Http(_) | Self::Deadline { .. } | Self::Stalled { .. }
        )
    }
}

fn bytes(n: u64) -> String {
    if n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = cause.source();
    }
    text
}

impl From<reqwest::Error> for FetchError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_connect() {
            Self::Unreachable(chain(&e))
        } else {
            Self::Http(chain(&e))
        }
    }
}
