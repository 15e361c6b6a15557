//! The shape of the source a newcomer reads: no file over [`MAX_LINES`] lines of code (a file's
//! own `#[cfg(test)] mod tests` does not count), and no import cycle between the modules of a
//! crate, read from the `crate::` and `super::` paths each file names. Quick to run alone:
//! `cargo test -p qyvol-common --test layout`.

#![expect(
    clippy::expect_used,
    reason = "a source that cannot be read should fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository's root (this crate's parent folder).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The crates whose sources are checked (test guests and examples are tiny programs).
const CRATES: [&str; 7] = [
    "cli", "common", "runtime", "store", "launch", "node", "shim",
];

/// What a newcomer reads in one sitting.
const MAX_LINES: usize = 450;

/// A module's path inside its crate (`[]` for the crate root).
type Module = Vec<String>;

/// Which modules each module names.
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read the source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A file's code without its unit tests: everything before `#[cfg(test)]` followed by
/// `mod tests`.
fn code_of(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == "#[cfg(test)]"
            && text[offset + line.len()..]
                .trim_start()
                .starts_with("mod tests")
        {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// A file's module path inside its crate (`[]` for the crate root).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The names a crate root re-exports (`pub use a::b::{C, D as E};`) and the module each comes
/// from.
fn reexports(root: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (_, rest) in root
        .match_indices("pub use ")
        .map(|(i, _)| root.split_at(i + 8))
    {
        let Some((stmt, _)) = rest.split_once(';') else {
            continue;
        };
        let stmt: String = stmt.chars().filter(|c| !c.is_whitespace()).collect();
        let (prefix, names) = match stmt.split_once("::{") {
            Some((prefix, names)) => (prefix.to_string(), names.trim_end_matches('}').to_string()),
            None => match stmt.rsplit_once("::") {
                Some((prefix, name)) => (prefix.to_string(), name.to_string()),
                None => continue,
            },
        };
        let module: Vec<String> = prefix
            .split("::")
            .filter(|s| !s.is_empty() && *s != "crate")
            .map(String::from)
            .collect();
        for name in names
            .split(',')
            .filter(|n| !n.is_empty() && !n.contains('{'))
        {
            let shown = name.rsplit_once("as").map_or(name, |(_, alias)| alias);
            out.insert(shown.to_string(), module.clone());
        }
    }
    out
}

/// `code` with every path group written out: `use crate::{a, b::{c, d}}` becomes
/// `crate::a crate::b::c crate::b::d`, so each name in a group counts with its prefix.
fn expand_groups(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("::{") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let prefix = &rest[start..at];
        out.push_str(&rest[..start]);
        let body = &rest[at + 3..];
        let mut depth = 1;
        let end = body
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(body.len(), |(i, _)| i);
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in body[..end].chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let item = if item == "self" { "" } else { item };
            let joined = if item.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}::{item}")
            };
            out.push(' ');
            out.push_str(&expand_groups(&joined));
            out.push(' ');
        }
        rest = body.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The modules `code` (the code of module `me`) names through `crate::` and `super::` paths,
/// each resolved to the deepest module of `known` it reaches (through the crate root's
/// re-exports, `reexported`).
fn named(
    code: &str,
    me: &[String],
    known: &BTreeSet<Vec<String>>,
    reexported: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    // Paths in comments (doc links) are not imports.
    let code: String = code
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let code = expand_groups(&code);
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("crate::") || w.starts_with("super::"))
        .collect();
    for word in words {
        let mut path: Vec<String> = Vec::new();
        let mut segments = word.split("::").filter(|s| !s.is_empty()).peekable();
        match segments.next() {
            Some("crate") => {}
            Some("super") => {
                path = me.to_vec();
                path.pop();
                while segments.peek() == Some(&"super") {
                    segments.next();
                    path.pop();
                }
            }
            _ => continue,
        }
        let mut deepest = path.clone();
        if path.is_empty()
            && let Some(module) = segments.peek().and_then(|s| reexported.get(*s))
        {
            deepest = module.clone();
        }
        for s in segments {
            path.push(s.to_string());
            if known.contains(&path) {
                deepest = path.clone();
            }
        }
        out.insert(deepest);
    }
    out
}

/// The cycles (strongly connected groups of two or more modules) of `edges`.
fn cycles(edges: &Graph) -> Vec<Vec<Module>> {
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<_, _> = edges.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut found: Vec<Vec<Vec<String>>> = Vec::new();
    for m in edges.keys() {
        let group: Vec<Vec<String>> = edges
            .keys()
            .filter(|n| n == &m || (reached[m].contains(*n) && reached[*n].contains(m)))
            .cloned()
            .collect();
        if group.len() > 1 && !found.contains(&group) {
            found.push(group);
        }
    }
    found
}

/// For each checked crate: its modules and which modules each names. A module naming its own
/// ancestors (the crate root's shared error types, a parent's items) is how Rust nests
/// modules, not a cycle, so those names are left out.
fn module_graphs() -> Vec<(String, Graph)> {
    let root = repo_root();
    CRATES
        .iter()
        .map(|krate| {
            let src = root.join(krate).join("src");
            let files = sources(&src);
            let known: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
            let root_file = ["lib.rs", "main.rs"]
                .iter()
                .map(|f| src.join(f))
                .find(|f| f.is_file())
                .expect("a crate root");
            let root_text = std::fs::read_to_string(root_file).expect("read the crate root");
            let reexported = reexports(code_of(&root_text));
            let mut edges = BTreeMap::new();
            for file in &files {
                let me = module_of(&src, file);
                let text = std::fs::read_to_string(file).expect("read a source");
                let targets = named(code_of(&text), &me, &known, &reexported)
                    .into_iter()
                    .filter(|t| !me.starts_with(t))
                    .collect();
                edges.insert(me, targets);
            }
            (krate.to_string(), edges)
        })
        .collect()
}

#[test]
fn no_source_file_is_over_450_lines_of_code() {
    let root = repo_root();
    let mut long = Vec::new();
    for krate in CRATES {
        for file in sources(&root.join(krate).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read a source");
            let lines = code_of(&text).lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines})",
                    file.strip_prefix(&root).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(long.is_empty(), "split along their seams: {long:#?}");
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut found = Vec::new();
    for (krate, edges) in module_graphs() {
        for group in cycles(&edges) {
            let names: Vec<String> = group.iter().map(|m| m.join("::")).collect();
            found.push(format!("{krate}: {}", names.join(" ⇄ ")));
        }
    }
    assert!(
        found.is_empty(),
        "move what they share into a leaf module: {found:#?}"
    );
}

/// The checker itself: a cycle it must see, and nesting it must not call one.
#[test]
fn the_cycle_check_sees_a_sibling_cycle_and_not_a_child_using_its_parent() {
    let m = |s: &str| -> Vec<String> {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    let known: BTreeSet<_> = ["", "a", "b", "b::c"].map(m).into_iter().collect();
    assert_eq!(
        named(
            "use crate::b::c::Thing; use super::super::a; use crate::Error;",
            &m("b::c"),
            &known,
            &BTreeMap::from([("Error".to_string(), m("b"))]),
        ),
        BTreeSet::from([m("b::c"), m("a"), m("b")])
    );
    let graph = |pairs: &[(&str, &str)]| {
        let mut edges: Graph = BTreeMap::new();
        for (from, to) in pairs {
            edges.entry(m(from)).or_default().insert(m(to));
            edges.entry(m(to)).or_default();
        }
        edges
    };
    assert_eq!(cycles(&graph(&[("a", "b::c"), ("b::c", "a")])).len(), 1);
    assert!(cycles(&graph(&[("a", "b"), ("b", "b::c")])).is_empty());
    assert_eq!(
        named(
            "use crate::{a, b::{self, c}};",
            &m("x"),
            &known,
            &BTreeMap::new()
        ),
        BTreeSet::from([m("a"), m("b"), m("b::c")])
    );
    assert_eq!(
        code_of("fn x() {}\n#[cfg(test)]\nmod tests {\n    use crate::y;\n}\n"),
        "fn x() {}\n"
    );
}
