//! Parsing the YAML Qyvol reads (manifests, the trust policy) with bounded resources (depth,
//! aliases, nodes, events, one document, no duplicate keys), and turning the parser's messages
//! into ones about YAML, with a did-you-mean for misspelt names.

use serde_saphyr::DuplicateKeyPolicy;

/// A YAML document that could not be read as `T`: what is wrong, in YAML's terms, and where.
#[derive(Debug)]
pub struct YamlError {
    pub message: String,
    pub location: Option<serde_saphyr::Location>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(
                f,
                "{} (line {}, column {})",
                self.message,
                at.line(),
                at.column()
            ),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads `text` as one YAML document of type `T`, within the budget every Qyvol file gets.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 16,
            max_aliases: 64,
            max_anchors: 64,
            max_nodes: 20_000,
            max_events: 100_000,
            max_documents: 1,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| YamlError {
        message: yaml_message(&e),
        location: e.location(),
    })
}

/// The parser's message without its location suffix (we print the location ourselves), reworded
/// where the parser speaks of Rust rather than YAML, plus a did-you-mean for unknown names.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let rendered = e.render_with_options(options);
    let msg = match rendered.rfind(" at line ") {
        Some(i) => &rendered[..i],
        None => &rendered,
    };
    if msg.starts_with("cannot deserialize null") {
        return "expected a value, found null (in YAML `~` and an empty value mean null: quote the text if you meant it)".into();
    }
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return format!("duplicate key `{key}`: each key may appear only once");
    }
    if let Some(detail) = msg.strip_prefix("budget breached: ") {
        return format!(
            "the YAML is too large or uses too many aliases ({detail}): keep manifests small and plain"
        );
    }
    if msg == "expected sequence start" {
        return "expected a list, like `[a, b]`".into();
    }
    if msg == "expected mapping start" {
        return "expected a mapping, like `{ key: value }`".into();
    }
    if msg.contains("recursion limit exceeded") || msg.contains("depth") {
        return format!("{msg}: the manifest is nested too deeply");
    }
    let mut out = msg.to_string();
    if let Some(hint) = did_you_mean(msg) {
        out.push_str(&format!("; did you mean `{hint}`?"));
    }
    out
}

/// For "unknown field `x`, expected one of a, b" (serde's wording), the closest expected name.
fn did_you_mean(msg: &str) -> Option<&str> {
    if !(msg.starts_with("unknown field") || msg.starts_with("unknown variant")) {
        return None;
    }
    let unknown = msg.split('`').nth(1)?;
    let (_, expected) = msg.split_once("expected ")?;
    let expected = expected.trim_start_matches("one of ");
    expected
        .split([',', ' '])
        .map(|c| c.trim_matches('`'))
        .filter(|c| !c.is_empty() && *c != "or")
        .map(|c| (strsim::jaro_winkler(unknown, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
