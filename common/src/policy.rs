//! Environments are policies over one engine: how much the host trusts the code it runs.
//! `native` takes the manifest's grants as written; `sandbox` (untrusted code) and `edge` (HTTP
//! handlers) refuse writable mounts and cap limits, and a manifest asking for more is refused
//! before anything runs.

use std::time::Duration;

use serde::Deserialize;

use crate::types::{ByteSize, DurationSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The manifest's grants as written; no default limits.
    #[default]
    Native,
    /// Untrusted code: read-only mounts, no network, bounded memory and time.
    Sandbox,
    /// HTTP handlers at the edge: no writable filesystem, bounded memory and time per run.
    Edge,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Sandbox => "sandbox",
            Self::Edge => "edge",
        }
    }

    pub fn policy(self) -> Policy {
        match self {
            Self::Native => Policy {
                environment: self,
                untrusted: false,
                block_private: false,
                memory_cap: None,
                timeout_cap: None,
            },
            Self::Sandbox => Policy {
                environment: self,
                untrusted: true,
                block_private: true,
                memory_cap: Some(ByteSize::mib(256)),
                timeout_cap: Some(DurationSpec(Duration::from_secs(10))),
            },
            Self::Edge => Policy {
                environment: self,
                untrusted: true,
                block_private: true,
                memory_cap: Some(ByteSize::mib(128)),
                timeout_cap: Some(DurationSpec(Duration::from_secs(5))),
            },
        }
    }
}

impl Policy {
    /// Whether a network grant of this kind may be asked for: `native` allows any, `edge`
    /// outbound connections only (handlers are reached through the server, they don't
    /// listen), `sandbox` none.
    pub fn allows_network(&self, kind: crate::network::GrantKind) -> bool {
        match self.environment {
            Environment::Native => true,
            Environment::Edge => kind == crate::network::GrantKind::Connect,
            Environment::Sandbox => false,
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Self::Native),
            "sandbox" => Ok(Self::Sandbox),
            "edge" => Ok(Self::Edge),
            _ => Err(format!(
                "`{s}` is not an environment: use `native`, `sandbox` or `edge`"
            )),
        }
    }
}

/// What an environment allows a manifest to ask for.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub environment: Environment,
    /// Every mount is read-only and a manifest asking for a writable one is refused.
    pub untrusted: bool,
    /// Connections to loopback, link-local and private addresses need a grant naming them by
    /// address (a name grant resolving there is refused), and a manifest may not turn this off.
    pub block_private: bool,
    /// The most memory a manifest may ask for, and the default when it asks for none.
    pub memory_cap: Option<ByteSize>,
    /// The longest time limit a manifest may ask for, and the default when it asks for none.
    pub timeout_cap: Option<DurationSpec>,
}

/// A grant the manifest asks for that its environment does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment `{environment}` does not allow {grant}: {hint}")]
pub struct PolicyViolation {
    pub environment: &'static str,
    pub grant: String,
    pub hint: String,
}
