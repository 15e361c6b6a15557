//! The one catalogue of Qyvol's user-facing text, in Spanish (the default, the seed's language)
//! and English. Every message the CLI prints is a [`Msg`] rendered here; clap's help for flags
//! is written in English in the doc comments and overridden from [`help_es`] in Spanish.
//! This module decides the language; the messages are in `messages` and their texts in `text`,
//! clap's Spanish help and each command's examples in `help`.

use std::sync::OnceLock;

mod help;
mod messages;
mod text;

pub use help::{examples, help_es};
pub use messages::Msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

static LANG: OnceLock<Lang> = OnceLock::new();

/// The language for this process: `QYVOL_LANG` (`en`/`es`) first, then the first non-empty of
/// `LC_ALL`, `LC_MESSAGES`, `LANG`; an English locale gives English, anything else (including
/// `C`, `POSIX` or nothing) Spanish.
pub fn lang() -> Lang {
    *LANG.get_or_init(|| detect(|k| std::env::var(k).ok()))
}

pub fn detect(var: impl Fn(&str) -> Option<String>) -> Lang {
    let english = |v: &str| v.to_ascii_lowercase().starts_with("en");
    if let Some(v) = var("QYVOL_LANG").filter(|v| !v.is_empty()) {
        return if english(&v) { Lang::En } else { Lang::Es };
    }
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()));
    match locale {
        Some(v) if english(&v) => Lang::En,
        _ => Lang::Es,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn spanish_unless_english_is_asked_for() {
        assert_eq!(detect(env(&[])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "C")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "POSIX")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "es_ES.UTF-8")])), Lang::Es);
        assert_eq!(detect(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(
            detect(env(&[("LC_MESSAGES", "en_GB"), ("LANG", "es_ES")])),
            Lang::En
        );
        assert_eq!(
            detect(env(&[("LC_ALL", "es_MX"), ("LC_MESSAGES", "en_GB")])),
            Lang::Es
        );
        assert_eq!(
            detect(env(&[("QYVOL_LANG", "en"), ("LC_ALL", "es_MX")])),
            Lang::En
        );
        assert_eq!(
            detect(env(&[("QYVOL_LANG", "es"), ("LANG", "en_US")])),
            Lang::Es
        );
    }
}
