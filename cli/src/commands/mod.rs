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

/// Whether `path` starts with the wasm magic bytes (a module or component, whatever its name).
pub fn is_wasm_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == qyvol_common::WASM_MAGIC
}
