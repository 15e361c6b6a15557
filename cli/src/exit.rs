//! Exit codes, like `docker run`'s: the guest's own code when it exits, and a documented code
//! for each way Qyvol itself can stop it or refuse to start it (README's table and docs/exit-codes.md).

use std::process::ExitCode;

use crate::i18n::Msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// The node refused the call (no such app, a name taken, a module it cannot deploy).
    Refused = 1,
    /// Invalid flags or arguments (clap's own code).
    Usage = 2,
    /// The file is not WebAssembly, or the module is invalid or needs imports Qyvol lacks.
    NotWasm = 65,
    /// A file or folder that was named does not exist, or is not a regular file.
    MissingFile = 66,
    /// The environment's policy refused a grant, Qyvol never grants it (a mount on procfs), or
    /// `QYVOL_HOME` is open to other users.
    Denied = 77,
    /// The manifest is malformed or invalid, or the mounts cannot go together.
    BadManifest = 78,
    /// The time limit passed or the fuel ran out.
    Timeout = qyvol_runtime::EXIT_TIMEOUT,
    /// No node answers (`qyvol node -d` starts one).
    Unavailable = 69,
    /// Qyvol failed for a reason of its own.
    Internal = 125,
    /// The guest trapped.
    Trap = qyvol_runtime::EXIT_TRAP,
    /// The guest exceeded its memory (or table) limit.
    Memory = qyvol_runtime::EXIT_MEMORY,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> Self {
        ExitCode::from(c as u8)
    }
}

/// The exit code for a guest's exit status, as a Unix shell would see it.
pub fn guest(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

/// An error that ends the command: its code, a localised headline and the detail.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub headline: Option<Msg<'static>>,
    pub detail: String,
}

impl Failure {
    pub fn new(code: Code, headline: Msg<'static>, detail: impl std::fmt::Display) -> Self {
        Self {
            code,
            headline: Some(headline),
            detail: detail.to_string(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self {
            code: Code::Internal,
            headline: None,
            detail: detail.to_string(),
        }
    }
}

impl From<qyvol_common::ManifestError> for Failure {
    fn from(e: qyvol_common::ManifestError) -> Self {
        use qyvol_common::ErrorKind as K;
        let (code, headline) = match e.kind {
            K::BadManifest => (Code::BadManifest, Msg::BadManifest),
            K::MissingFile => (Code::MissingFile, Msg::MissingFile),
            K::NotWasm => (Code::NotWasm, Msg::NotWasm),
            K::Denied => (Code::Denied, Msg::DeniedGrant),
            K::NotAFile => (Code::MissingFile, Msg::NotAFile),
        };
        Self::new(code, headline, e)
    }
}

impl From<qyvol_runtime::RuntimeError> for Failure {
    fn from(e: qyvol_runtime::RuntimeError) -> Self {
        use qyvol_common::FolderError;
        use qyvol_runtime::RuntimeError as E;
        match &e {
            E::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Self::new(Code::MissingFile, Msg::MissingFile, e)
            }
            E::Read { .. }
            | E::TooLarge { .. }
            | E::Invalid { .. }
            | E::UnsupportedImport { .. }
            | E::Compile { .. }
            | E::CompileTimeout { .. } => Self::new(Code::NotWasm, Msg::InvalidModule, e),
            E::MountFolder { problem, .. } => match problem {
                FolderError::Missing => Self::new(Code::MissingFile, Msg::MissingFile, e),
                FolderError::Procfs => Self::new(Code::Denied, Msg::DeniedGrant, e),
                _ => Self::new(Code::BadManifest, Msg::BadMount, e),
            },
            E::MountOverlap(_) => Self::new(Code::BadManifest, Msg::BadMount, e),
            E::Mount { .. } => Self::internal(e),
            E::NotAFile(_) => Self::new(Code::MissingFile, Msg::NotAFile, e),
            E::Serve(_) => Self::new(Code::BadManifest, Msg::BadManifest, e),
            E::Engine(_) => Self::internal(e),
        }
    }
}

impl From<qyvol_common::PolicyViolation> for Failure {
    fn from(e: qyvol_common::PolicyViolation) -> Self {
        Self::new(Code::Denied, Msg::DeniedGrant, e)
    }
}

impl From<qyvol_store::bundle::BundleError> for Failure {
    fn from(e: qyvol_store::bundle::BundleError) -> Self {
        use qyvol_store::bundle::BundleError as E;
        match &e {
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Failure::new(Code::MissingFile, Msg::MissingFile, e)
            }
            E::Io { .. } | E::Format { .. } | E::Digest { .. } => {
                Failure::new(Code::NotWasm, Msg::BadBundle, e)
            }
            E::NotAFile(_) => Failure::new(Code::MissingFile, Msg::NotAFile, e),
        }
    }
}

impl From<qyvol_launch::LaunchError> for Failure {
    fn from(e: qyvol_launch::LaunchError) -> Self {
        use qyvol_launch::LaunchError as E;
        match e {
            E::Manifest(e) => e.into(),
            E::Runtime(e) => e.into(),
            E::Bundle(e) => e.into(),
            E::Store(e) => e.into(),
            E::Policy(e) => e.into(),
            E::Home(e) => e.into(),
            E::Usage(why) => Failure::new(Code::Usage, Msg::BadFlag, why),
            E::KeyValue(why) => Failure::new(Code::Unavailable, Msg::KvUnavailable, why),
            E::Missing(why) => Failure::new(Code::MissingFile, Msg::MissingFile, why),
            E::NotRunnable(why) => Failure::new(Code::NotWasm, Msg::NotRunnable, why),
            E::Internal(why) => Failure::internal(why),
        }
    }
}

impl From<qyvol_common::HomeError> for Failure {
    fn from(e: qyvol_common::HomeError) -> Self {
        use qyvol_common::HomeError as E;
        match &e {
            E::WritableByOthers { .. } | E::NotYours { .. } => {
                Self::new(Code::Denied, Msg::UnsafeHome, e)
            }
            E::NotAFolder { .. } => Self::new(Code::BadManifest, Msg::UnusableHome, e),
            E::Create { .. } => Self::new(Code::Internal, Msg::UnusableHome, e),
        }
    }
}

impl From<qyvol_node::client::ClientError> for Failure {
    fn from(e: qyvol_node::client::ClientError) -> Self {
        use qyvol_node::client::ClientError;
        match &e {
            ClientError::Unreachable { .. } => Failure::new(
                Code::Unavailable,
                Msg::NoNode,
                format!("{e}; start one with `qyvol node -d` (or name another with `--node URL`)"),
            ),
            ClientError::Api { status: 401, .. } => Failure::new(
                Code::Refused,
                Msg::NodeRefused,
                format!("{e} (pass the node's token with `--token` or QYVOL_TOKEN)"),
            ),
            ClientError::Api { .. } => Failure::new(Code::Refused, Msg::NodeRefused, e),
            ClientError::Impostor { .. } => Failure::new(Code::Denied, Msg::NotTheNode, e),
            ClientError::Protocol(_) => Failure::internal(e),
        }
    }
}

impl From<qyvol_node::NodeError> for Failure {
    fn from(e: qyvol_node::NodeError) -> Self {
        use qyvol_node::NodeError;
        match e {
            NodeError::Launch(l) => l.into(),
            NodeError::Conflict(_) | NodeError::BadRequest(_) => {
                Failure::new(Code::Usage, Msg::BadFlag, e)
            }
            other => Failure::internal(other),
        }
    }
}
