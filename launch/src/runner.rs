//! Who runs a target, which decides with the target's kind how its engine is set.

use qyvol_common::RuntimeKind;
use qyvol_runtime::Purpose;

/// Who runs what the operator named, which decides with the target's kind how its engine is
/// set (see [`Runner::purpose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// The operator's own command, until it ends (`qyvol run`, `qyvol serve`).
    Foreground,
    /// A supervisor that may stop it at any time (the node, the containerd shim).
    Supervised,
}

impl Runner {
    /// What drives a guest of `runtime` kind under this runner: handlers are always served;
    /// a command runs to its end in the foreground, and can be stopped under a supervisor.
    pub fn purpose(self, runtime: RuntimeKind) -> Purpose {
        match (runtime, self) {
            (RuntimeKind::WasiHttp, _) => Purpose::Serving,
            (RuntimeKind::Wasi, Runner::Foreground) => Purpose::Command,
            (RuntimeKind::Wasi, Runner::Supervised) => Purpose::Stoppable,
        }
    }
}
