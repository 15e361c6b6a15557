//! What the network grants refused, and where each refusal is reported.

use std::net::SocketAddr;
use std::sync::Arc;

use qyvol_common::GrantKind;

/// A connection, bind, lookup or request the grants did not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: GrantKind,
    /// What the guest asked for: `host:port` (an address for sockets, the URL's authority for
    /// HTTP requests), or the name it looked up.
    pub target: String,
    pub reason: Refusal,
}

/// Why a [`Denial`] happened, so the message can say what would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No grant names the address or host.
    NotGranted,
    /// Only a name grant (or a block as wide as `0.0.0.0/0`) covers it, and this loopback,
    /// link-local or private address is what it resolved to: `block_private` wants a grant
    /// naming the address itself.
    Private(SocketAddr),
    /// An HTTP authority that is not plain `host[:port]`: user info (`user@host`), or a port
    /// that is not a number up to 65535. Checked as one host, it would be reached as another.
    BadAuthority,
    /// A name lookup of a host no grant mentions.
    Lookup,
    /// HTTPS cannot verify any server: no root certificate could be loaded (why).
    NoRootCertificates(String),
}

impl Refusal {
    /// A stable name for logs and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotGranted => "not-granted",
            Self::Private(_) => "private-address",
            Self::BadAuthority => "bad-authority",
            Self::Lookup => "lookup-not-granted",
            Self::NoRootCertificates(_) => "no-root-certificates",
        }
    }
}

type Report = dyn Fn(&Denial) + Send + Sync;

/// Told of each refused connection or bind.
#[derive(Clone, Default)]
pub struct DenialSink(Option<Arc<Report>>);

impl DenialSink {
    pub fn new(f: impl Fn(&Denial) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    pub(super) fn report(&self, kind: GrantKind, target: String, reason: Refusal) {
        tracing::debug!(kind = kind.as_str(), %target, ?reason, "network access denied");
        if let Some(f) = &self.0 {
            f(&Denial {
                kind,
                target,
                reason,
            });
        }
    }
}

impl std::fmt::Debug for DenialSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DenialSink")
    }
}
