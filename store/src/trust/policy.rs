//! The trust policy, `QYVOL_HOME/policy.yaml`: which images need which keys, by registry or
//! repository prefix, with containers/image's `policy.json` requirement names:
//!
//! ```yaml
//! default: insecureAcceptAnything     # or reject, for what no rule names
//! rules:
//!   - scope: localhost:5000/team      # a registry, or a repository and everything under it
//!     require: signedBy               # insecureAcceptAnything | reject | signedBy
//!     keys: [team.pub]                # relative to this file's folder
//! ```
//!
//! The most specific scope wins. No file means `insecureAcceptAnything` for everything, as
//! before a policy existed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Mismatch, PublicKey, Signature, TrustError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Require {
    #[serde(rename = "insecureAcceptAnything")]
    Anything,
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "signedBy")]
    SignedBy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "anything")]
    default: Require,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

fn anything() -> Require {
    Require::Anything
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    scope: String,
    require: Require,
    #[serde(default)]
    keys: Vec<PathBuf>,
}

/// One rule, its keys loaded.
#[derive(Debug)]
pub struct Rule {
    pub scope: String,
    pub require: Require,
    pub keys: Vec<PublicKey>,
}

#[derive(Debug)]
pub struct Policy {
    /// Where it was read from (named in refusals); `None` for the built-in default.
    pub path: Option<PathBuf>,
    pub default: Require,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the trust policy `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the trust policy `{path}` is wrong: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("the trust policy `{path}`: {source}")]
    Key { path: PathBuf, source: TrustError },
}

/// What the policy says of one image.
#[derive(Debug)]
pub enum Decision<'p> {
    Accept,
    /// `reject`: the rule's scope (or the default's).
    Reject(String),
    /// Signatures by one of these keys are needed.
    SignedBy(&'p Rule),
}

impl Policy {
    /// The policy at `path`, or accept-anything when there is no file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: None,
                    default: Require::Anything,
                    rules: Vec::new(),
                });
            }
            Err(source) => {
                return Err(PolicyError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let invalid = |why: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        let file: File = serde_saphyr::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.default == Require::SignedBy {
            return Err(invalid(
                "the default may be insecureAcceptAnything or reject; signedBy needs a rule with a scope and keys".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut rules = Vec::new();
        for r in file.rules {
            let scope = r.scope.trim_end_matches('/').to_string();
            if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(format!(
                    "a rule's scope `{}` is not a registry or repository (e.g. `localhost:5000/team`)",
                    qyvol_common::escape_controls(&r.scope)
                )));
            }
            match (r.require, r.keys.is_empty()) {
                (Require::SignedBy, true) => {
                    return Err(invalid(format!(
                        "the rule for `{scope}` requires signedBy but lists no keys"
                    )));
                }
                (Require::Anything | Require::Reject, false) => {
                    return Err(invalid(format!(
                        "the rule for `{scope}` lists keys but does not require signedBy"
                    )));
                }
                _ => {}
            }
            let keys = r
                .keys
                .iter()
                .map(|k| {
                    PublicKey::load(&base.join(k)).map_err(|source| PolicyError::Key {
                        path: path.to_path_buf(),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?;
            rules.push(Rule {
                scope,
                require: r.require,
                keys,
            });
        }
        Ok(Self {
            path: Some(path.to_path_buf()),
            default: file.default,
            rules,
        })
    }

    /// What the policy says of the image `repository` (`registry/name`): the rule with the
    /// longest scope that is the registry, the repository, or a parent of it.
    pub fn decide(&self, repository: &str) -> Decision<'_> {
        let covers = |scope: &str| {
            repository == scope
                || repository
                    .strip_prefix(scope)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let rule = self
            .rules
            .iter()
            .filter(|r| covers(&r.scope))
            .max_by_key(|r| r.scope.len());
        match rule {
            Some(r) => match r.require {
                Require::Anything => Decision::Accept,
                Require::Reject => Decision::Reject(r.scope.clone()),
                Require::SignedBy => Decision::SignedBy(r),
            },
            None if self.default == Require::Anything => Decision::Accept,
            None => Decision::Reject("default".into()),
        }
    }

    /// Whether `signatures` satisfy `rule` for the image `repository` at `digest`; the
    /// refusal says what was found.
    pub fn verify(
        rule: &Rule,
        signatures: &[Signature],
        repository: &str,
        digest: &str,
    ) -> Result<PathBuf, String> {
        if signatures.is_empty() {
            return Err("it has no signature".into());
        }
        let mut found = Vec::new();
        for s in signatures {
            match super::check(s, &rule.keys, repository, digest) {
                Ok(k) => return Ok(rule.keys[k].path.clone()),
                Err(m) => found.push(m),
            }
        }
        found.dedup();
        let said: Vec<String> = found.iter().map(Mismatch::to_string).collect();
        Err(format!(
            "none of its {} signatures is valid: {}",
            signatures.len(),
            said.join("; ")
        ))
    }
}
