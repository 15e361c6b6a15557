//! What ended a run, in words, for whoever tells a person: `qyvol run` on stderr, the shim in
//! the container's log. One text per way a run ends, in both languages, beside the one exit
//! code each way gives ([`Outcome::exit_code`]).

use qyvol_common::{ByteSize, DurationSpec, Lang, escape_controls};

use crate::limits::Resource;
use crate::request::Outcome;

impl Outcome {
    /// Why the run ended when it was not the guest's own exit, with what would let it go on;
    /// `None` for an exit. Text the guest controls (a trap's message) is escaped.
    pub fn explain(&self, lang: Lang) -> Option<String> {
        use Lang::{En, Es};
        Some(match (self, lang) {
            (Self::Exited(_), _) => return None,
            (Self::Stopped, Es) => "⏹ El módulo fue detenido".into(),
            (Self::Stopped, En) => "⏹ The module was stopped".into(),
            (Self::Trapped { trap, .. }, Es) => {
                format!(
                    "💥 El módulo se detuvo por un trap: {}",
                    escape_controls(trap)
                )
            }
            (Self::Trapped { trap, .. }, En) => {
                format!("💥 The module trapped: {}", escape_controls(trap))
            }
            (Self::TimedOut(t), Es) => format!(
                "⏱ Se superó el límite de tiempo de {}: el módulo fue detenido (sube `limits.timeout` o usa `--timeout`)",
                DurationSpec(*t)
            ),
            (Self::TimedOut(t), En) => format!(
                "⏱ The time limit of {} passed: the module was stopped (raise `limits.timeout` or pass `--timeout`)",
                DurationSpec(*t)
            ),
            (Self::FuelExhausted(fuel), Es) => format!(
                "⛽ El módulo agotó su combustible ({fuel}): sube `limits.fuel` o usa `--fuel`"
            ),
            (Self::FuelExhausted(fuel), En) => format!(
                "⛽ The module ran out of fuel ({fuel}): raise `limits.fuel` or pass `--fuel`"
            ),
            (Self::LimitExceeded { resource, limit }, lang) => limit_text(*resource, *limit, lang),
        })
    }
}

fn limit_text(resource: Resource, limit: u64, lang: Lang) -> String {
    use Lang::{En, Es};
    let size = ByteSize(limit);
    match (resource, lang) {
        (Resource::Memory, Es) => format!(
            "🧠 Se superó el límite de memoria de {size}: el módulo fue detenido (sube `limits.memory` o usa `--memory`)"
        ),
        (Resource::Memory, En) => format!(
            "🧠 The memory limit of {size} was exceeded: the module was stopped (raise `limits.memory` or pass `--memory`)"
        ),
        (Resource::Table, Es) => format!(
            "🧠 Una tabla del módulo superó el límite de {limit} elementos: el módulo fue detenido"
        ),
        (Resource::Table, En) => format!(
            "🧠 A table of the module grew past the limit of {limit} elements: the module was stopped"
        ),
        (Resource::AppMemory, Es) => format!(
            "las instancias de la app juntas llegaron a su memoria máxima de {size} (sube `--memory-total` al desplegarla)"
        ),
        (Resource::AppMemory, En) => format!(
            "the app's instances together reached their memory total of {size} (raise `--memory-total` when deploying it)"
        ),
        (Resource::NodeMemory, Es) => format!(
            "las instancias de todas las apps juntas llegaron a la memoria máxima del nodo, {size} (sube `qyvol node --memory-total`)"
        ),
        (Resource::NodeMemory, En) => format!(
            "the instances of all apps together reached the node's memory total of {size} (raise `qyvol node --memory-total`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim once said "table elements" for an app's shared memory total: each resource has
    /// its own words, in each language.
    #[test]
    fn each_way_a_run_ends_has_its_own_words_in_both_languages() {
        let ends = [
            Outcome::Stopped,
            Outcome::Trapped {
                trap: "boom\u{1b}[2J".into(),
                backtrace: Vec::new(),
            },
            Outcome::TimedOut(std::time::Duration::from_secs(2)),
            Outcome::FuelExhausted(5),
            Outcome::LimitExceeded {
                resource: Resource::Memory,
                limit: 1 << 20,
            },
            Outcome::LimitExceeded {
                resource: Resource::Table,
                limit: 10,
            },
            Outcome::LimitExceeded {
                resource: Resource::AppMemory,
                limit: 1 << 20,
            },
            Outcome::LimitExceeded {
                resource: Resource::NodeMemory,
                limit: 1 << 20,
            },
        ];
        for lang in [Lang::Es, Lang::En] {
            let texts: Vec<String> = ends
                .iter()
                .map(|o| o.explain(lang).expect("a text"))
                .collect();
            let distinct: std::collections::HashSet<_> = texts.iter().collect();
            assert_eq!(distinct.len(), texts.len(), "{texts:#?}");
            assert!(!texts[1].contains('\u{1b}'), "{}", texts[1]);
        }
        assert_eq!(Outcome::Exited(3).explain(Lang::En), None);
        assert!(
            Outcome::FuelExhausted(5)
                .explain(Lang::En)
                .is_some_and(|t| t.contains("(5)"))
        );
        let app = Outcome::LimitExceeded {
            resource: Resource::AppMemory,
            limit: 1 << 20,
        };
        assert!(
            app.explain(Lang::En)
                .is_some_and(|t| t.contains("--memory-total"))
        );
    }
}
