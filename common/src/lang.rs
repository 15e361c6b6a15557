//! The language Qyvol speaks: Spanish by default (the seed's language), English on request. One
//! type and one reading of each request for the CLI, the dashboard and the containerd shim; each
//! keeps its own catalogue of words.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

impl Lang {
    /// The ISO 639-1 code (`es`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::En => "en",
        }
    }

    /// The other language (the dashboard's toggle).
    pub fn other(self) -> Self {
        match self {
            Self::Es => Self::En,
            Self::En => Self::Es,
        }
    }

    /// A language tag or locale (`es`, `en-GB`, `en_US.UTF-8`) by its primary subtag; `None`
    /// for any other language, `C` or `POSIX`.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_', '.', '@']).next()?;
        match primary.to_ascii_lowercase().as_str() {
            "es" => Some(Self::Es),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// From an environment read through `var`: `QYVOL_LANG` first, then the first non-empty of
    /// `LC_ALL`, `LC_MESSAGES`, `LANG` (as gettext reads them). English when that says English,
    /// Spanish otherwise (including `C`, `POSIX` or nothing).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        ["QYVOL_LANG", "LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| var(k).filter(|v| !v.is_empty()))
            .and_then(|v| Self::parse(&v))
            .unwrap_or(Self::Es)
    }

    /// This process's language, read from its environment once.
    pub fn of_process() -> Self {
        static LANG: OnceLock<Lang> = OnceLock::new();
        *LANG.get_or_init(|| Self::from_env(|k| std::env::var(k).ok()))
    }

    /// The first of Spanish or English by weight in an HTTP `Accept-Language` value.
    pub fn from_accept_language(value: &str) -> Option<Self> {
        let mut best: Option<(f32, Self)> = None;
        for part in value.split(',') {
            let mut bits = part.split(';');
            let Some(lang) = bits.next().and_then(Self::parse) else {
                continue;
            };
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_environment_speaks_spanish_unless_it_asks_for_english() {
        assert_eq!(Lang::from_env(env(&[])), Lang::Es);
        assert_eq!(Lang::from_env(env(&[("LANG", "C")])), Lang::Es);
        assert_eq!(Lang::from_env(env(&[("LANG", "POSIX")])), Lang::Es);
        assert_eq!(Lang::from_env(env(&[("LANG", "es_ES.UTF-8")])), Lang::Es);
        assert_eq!(Lang::from_env(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LANG", "fr_FR.UTF-8")])), Lang::Es);
        let order = [("LC_MESSAGES", "en_GB"), ("LANG", "es_ES")];
        assert_eq!(Lang::from_env(env(&order)), Lang::En);
        let order = [("LC_ALL", "es_MX"), ("LC_MESSAGES", "en_GB")];
        assert_eq!(Lang::from_env(env(&order)), Lang::Es);
        let order = [("QYVOL_LANG", "en"), ("LC_ALL", "es_MX")];
        assert_eq!(Lang::from_env(env(&order)), Lang::En);
        let order = [("QYVOL_LANG", "es"), ("LANG", "en_US")];
        assert_eq!(Lang::from_env(env(&order)), Lang::Es);
        let empty = [("QYVOL_LANG", ""), ("LANG", "en_US")];
        assert_eq!(Lang::from_env(env(&empty)), Lang::En);
    }

    #[test]
    fn accept_language_picks_the_heaviest_of_spanish_and_english() {
        let pick = Lang::from_accept_language;
        assert_eq!(pick("fr, en;q=0.5, es;q=0.8"), Some(Lang::Es));
        assert_eq!(pick("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(pick("de, fr"), None);
        assert_eq!(pick(""), None);
    }
}
