//! One module per subcommand, each an `XCommand` with `execute`.

pub mod build;
pub mod bundled;
pub mod cache;
pub mod completions;
pub mod images;
pub mod inspect;
pub mod registry;
pub mod run;
pub mod serve;

use std::path::Path;

use crate::exit::Failure;

/// `QYVOL_HOME`, created if missing and refused if other users could write to it.
pub fn home() -> Result<qyvol_common::Home, Failure> {
    Ok(qyvol_common::Home::open()?)
}

/// Whether `path` is a regular file starting with the wasm magic bytes (a module or component,
/// whatever its name).
pub fn is_wasm_file(path: &Path) -> bool {
    qyvol_common::read_head::<4>(path).is_some_and(|magic| &magic == qyvol_common::WASM_MAGIC)
}
