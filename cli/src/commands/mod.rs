//! One module per subcommand, each an `XCommand` with `execute`.

pub mod build;
pub mod cache;
pub mod completions;
pub mod images;
pub mod inspect;
mod keys;
pub mod kube;
pub mod node;
pub mod registry;
pub mod run;
pub mod serve;
pub(crate) mod state;
pub mod trust;

use crate::exit::Failure;

/// `QYVOL_HOME`, created if missing and refused if other users could write to it.
pub fn home() -> Result<qyvol_common::Home, Failure> {
    Ok(qyvol_common::Home::open()?)
}
