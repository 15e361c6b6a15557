//! One module per subcommand, each an `XCommand` with `execute`.

pub mod build;
pub mod cache;
pub mod completions;
pub mod images;
pub mod inspect;
pub mod registry;
pub mod run;
pub mod serve;

pub use qyvol_launch::is_wasm_file;
