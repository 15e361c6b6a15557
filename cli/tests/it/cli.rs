//! The command line itself: help with examples, version, completions, bad flags.

use crate::fixture::{qyvol, stderr, stdout};

#[test]
fn version_names_the_package_version() {
    let out = qyvol().arg("--version").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        format!("qyvol {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Subcommands answer `--version` in both languages, as clap's propagated flag does.
    for lang in ["es", "en"] {
        let out = qyvol()
            .env("QYVOL_LANG", lang)
            .args(["serve", "--version"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{lang}: {}", stderr(&out));
        assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
    }
}

/// The lines of `text` under the line `heading`, up to the first that is not indented.
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect()
}

/// The commands `qyvol --help` lists, without clap's own `help` (help has no example to give).
fn listed_commands(lang: &str) -> Vec<String> {
    let out = qyvol()
        .env("QYVOL_LANG", lang)
        .arg("--help")
        .output()
        .expect("run");
    let heading = if lang == "es" {
        "Comandos:"
    } else {
        "Commands:"
    };
    section(&stdout(&out), heading)
        .iter()
        // Each command starts a line; its wrapped help continues further in.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands = listed_commands("es");
    assert_eq!(commands, listed_commands("en"));
    assert!(commands.len() >= 13, "{commands:?}");
    for cmd in &commands {
        for (lang, heading) in [("es", "Ejemplos:"), ("en", "Examples:")] {
            let out = qyvol()
                .env("QYVOL_LANG", lang)
                .args([cmd, "--help"])
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(0), "{cmd}");
            let help = stdout(&out);
            let examples = section(&help, heading);
            assert!(!examples.is_empty(), "{lang} {cmd}: no examples in {help}");
            for example in examples {
                assert!(
                    example.contains(&format!("qyvol {cmd}")),
                    "{lang} {cmd}: `{example}` is not an example of it"
                );
            }
        }
    }
}

#[test]
fn the_command_list_is_spanish_down_to_help() {
    let es = stdout(&qyvol().arg("--help").output().expect("run"));
    assert!(es.contains("Comandos:"), "{es}");
    assert!(es.contains("serve"), "{es}");
    assert!(!es.contains("Print this message"), "{es}");
    assert!(es.contains("Muestra la ayuda de un comando"), "{es}");
}

#[test]
fn run_help_is_localised() {
    let es = qyvol().args(["run", "--help"]).output().expect("run");
    insta::assert_snapshot!("run_help_es", stdout(&es));
    let en = qyvol()
        .env("QYVOL_LANG", "en")
        .args(["run", "--help"])
        .output()
        .expect("run");
    insta::assert_snapshot!("run_help_en", stdout(&en));
}

#[test]
fn serve_help_speaks_the_users_language_for_every_flag() {
    let help = |lang: &str| {
        let out = qyvol()
            .env("QYVOL_LANG", lang)
            .args(["serve", "--help"])
            .output()
            .expect("run");
        // flag -> the first words of its help
        stdout(&out)
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let flag = l.split_whitespace().find(|w| w.starts_with("--"))?;
                let text = l.split_once("  ").map(|(_, t)| t.trim().to_string())?;
                Some((flag.trim_end_matches(',').to_string(), text))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (es, en) = (help("es"), help("en"));
    assert!(es.len() >= 15, "{es:?}");
    for (flag, text) in &es {
        let english = en
            .get(flag)
            .unwrap_or_else(|| panic!("{flag} only in Spanish"));
        assert_ne!(text, english, "{flag} has no Spanish help");
    }
    assert!(
        es["--listen"].starts_with("Dirección donde escuchar"),
        "{es:?}"
    );
}

#[test]
fn completions_for_bash_complete_the_subcommands() {
    let out = qyvol().args(["completions", "bash"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let script = stdout(&out);
    assert!(script.contains("complete -F _qyvol"), "{script}");
    assert!(script.contains("inspect"));
    let bad = qyvol().args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn bad_flag_values_say_what_to_write() {
    for (flag, value, hint) in [
        ("--memory", "lots", "64MiB"),
        ("--timeout", "30", "no unit"),
        ("--mount", "nocolon", "HOST:GUEST"),
        ("--mount", "./x:relative", "absolute"),
        ("--environment", "cloud", "native"),
        ("--env", "=x", "not a valid environment variable name"),
    ] {
        let out = qyvol()
            .args(["run", flag, value, "x.wasm"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(
            stderr(&out).contains(hint),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn no_arguments_prints_usage_and_fails() {
    let out = qyvol().output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Uso:") || stderr(&out).contains("Usage:"),
        "{}",
        stderr(&out)
    );
}
