//! The one catalogue of Qyvol's user-facing text, in Spanish (the default, the seed's language)
//! and English. Every message the CLI prints is a [`Msg`] rendered here; clap's help for flags
//! is written in English in the doc comments and overridden from [`help_es`] in Spanish.
//! The language is `qyvol_common::Lang`, read as the dashboard and the shim read it; the
//! messages are in `messages` and their texts in `text`,
//! clap's Spanish help and each command's examples in `help`.

mod help;
mod messages;
mod text;

pub use help::{examples, help_es};
pub use messages::Msg;
pub use qyvol_common::Lang;

/// The language for this process, as every part of Qyvol reads it (`Lang::of_process`).
pub fn lang() -> Lang {
    Lang::of_process()
}
