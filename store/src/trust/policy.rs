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

use super::{PublicKey, TrustError};

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
    /// For `.qyvc` files: `require` and `keys` as a rule's (no scope).
    #[serde(default)]
    bundles: Option<BundlesFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundlesFile {
    require: Require,
    #[serde(default)]
    keys: Vec<PathBuf>,
    #[serde(default, rename = "allowPrecompiled")]
    allow_precompiled: bool,
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
    /// Precompiled code signed by these keys runs without `--allow-precompiled`.
    #[serde(default, rename = "allowPrecompiled")]
    allow_precompiled: bool,
}

/// The policy file's text: a regular file of at most 1 MiB.
fn read_policy(path: &Path) -> std::io::Result<String> {
    let bytes = qyvol_common::read_regular(path, 1 << 20)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

/// An IPv4 literal in any form `inet_aton` takes (`127.1`, `2130706433`, `0x7f.1`), dotted.
fn ipv4_literal(host: &str) -> Option<String> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let number = |p: &str| -> Option<u64> {
        if let Some(hex) = p.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()
        } else {
            p.parse().ok()
        }
    };
    let values: Vec<u64> = parts.iter().map(|p| number(p)).collect::<Option<_>>()?;
    let (last, init) = values.split_last()?;
    let mut addr: u64 = 0;
    for (i, v) in init.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= v << (24 - 8 * i);
    }
    let room = 32 - 8 * init.len();
    if *last >= 1 << room {
        return None;
    }
    addr |= last;
    Some(std::net::Ipv4Addr::from(u32::try_from(addr).ok()?).to_string())
}

/// The one spelling of a registry host the policy compares: lowercase, no leading zeros or
/// HTTPS's default port, and Docker Hub's aliases as `docker.io` (the name its signatures use).
pub fn normal_registry(registry: &str) -> String {
    let lower = registry.to_ascii_lowercase();
    let (host, port) = match lower.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(443) => (h.to_string(), None),
            Ok(n) => (h.to_string(), Some(n)),
            Err(_) => (lower.clone(), None),
        },
        _ => (lower.clone(), None),
    };
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => ipv4_literal(other).unwrap_or(host),
    };
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// `registry/name` with the registry in its normal spelling.
pub fn normal_repository(registry: &str, repository: &str) -> String {
    format!("{}/{repository}", normal_registry(registry))
}

/// One rule, its keys loaded.
#[derive(Debug)]
pub struct Rule {
    pub scope: String,
    pub require: Require,
    pub keys: Vec<PublicKey>,
    /// The signers' precompiled code may run (their signature covers the manifest, which
    /// names the precompiled layer's digest).
    pub allow_precompiled: bool,
}

#[derive(Debug)]
pub struct Policy {
    /// Where it was read from (named in refusals); `None` for the built-in default.
    pub path: Option<PathBuf>,
    pub default: Require,
    pub rules: Vec<Rule>,
    /// What `.qyvc` files need; accept anything when absent.
    pub bundles: Option<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `source` names the path.
    #[error("cannot read the trust policy: {source}")]
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

impl Rule {
    fn decision(&self) -> Decision<'_> {
        match self.require {
            Require::Anything => Decision::Accept,
            Require::Reject => Decision::Reject(self.scope.clone()),
            Require::SignedBy => Decision::SignedBy(self),
        }
    }
}

impl Policy {
    /// The policy at `path`, or accept-anything when there is no file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = match read_policy(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: None,
                    default: Require::Anything,
                    rules: Vec::new(),
                    bundles: None,
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
        // The same budgeted parser as manifests: duplicate keys are errors, not a last one wins.
        let file: File = qyvol_common::yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.default == Require::SignedBy {
            return Err(invalid(
                "the default may be insecureAcceptAnything or reject; signedBy needs a rule with a scope and keys".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let rule = |scope: String, require: Require, keys: &[PathBuf], allow_precompiled: bool| {
            match (require, keys.is_empty()) {
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
            if allow_precompiled && require != Require::SignedBy {
                return Err(invalid(format!(
                    "the rule for `{scope}` allows precompiled code but names no signers (signedBy)"
                )));
            }
            let keys = keys
                .iter()
                .map(|k| {
                    PublicKey::load(&base.join(k)).map_err(|source| PolicyError::Key {
                        path: path.to_path_buf(),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Rule {
                scope,
                require,
                keys,
                allow_precompiled,
            })
        };
        let mut rules: Vec<Rule> = Vec::new();
        for r in file.rules {
            let scope = normal_scope(&r.scope).ok_or_else(|| {
                invalid(format!(
                    "a rule's scope `{}` is not a registry or repository (write it like `localhost:5000/team`, without a scheme, tag or digest)",
                    qyvol_common::escape_controls(&r.scope)
                ))
            })?;
            if rules.iter().any(|x| x.scope == scope) {
                return Err(invalid(format!("two rules have the scope `{scope}`")));
            }
            rules.push(rule(scope, r.require, &r.keys, r.allow_precompiled)?);
        }
        let bundles = file
            .bundles
            .map(|b| rule("bundles".into(), b.require, &b.keys, b.allow_precompiled))
            .transpose()?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            default: file.default,
            rules,
            bundles,
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
            Some(r) => r.decision(),
            None if self.default == Require::Anything => Decision::Accept,
            None => Decision::Reject("default".into()),
        }
    }

    /// What the policy says of a `.qyvc` file.
    pub fn decide_bundle(&self) -> Decision<'_> {
        self.bundles
            .as_ref()
            .map_or(Decision::Accept, Rule::decision)
    }
}

/// A scope as written, in the spelling [`Policy::decide`] compares: a registry, or a registry
/// and repository path, lowercase; `None` when it cannot be one (a scheme, a tag, a digest).
fn normal_scope(scope: &str) -> Option<String> {
    let scope = scope.trim().trim_end_matches('/');
    let (registry, path) = scope.split_once('/').unwrap_or((scope, ""));
    // A registry first (a name with a dot or a port, `localhost`, an address), as the
    // references it must match are written; no wildcard, no scheme, no tag or digest.
    let host_ok = |h: &str| {
        !h.is_empty()
            && !h.starts_with(['.', '-'])
            && !h.ends_with(['.', '-'])
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    let registry_ok = match registry.rsplit_once(':') {
        _ if registry.starts_with('[') => registry.split_once(']').is_some_and(|(ip, rest)| {
            ip[1..].parse::<std::net::Ipv6Addr>().is_ok()
                && (rest.is_empty()
                    || rest
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0)))
        }),
        Some((h, p)) => {
            host_ok(h)
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n > 0)
        }
        None => {
            host_ok(registry)
                && (registry.contains('.') || registry.eq_ignore_ascii_case("localhost"))
        }
    };
    // Repository components as Docker writes them.
    let path_ok = path.is_empty()
        || path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if !registry_ok || !path_ok {
        return None;
    }
    let registry = normal_registry(registry);
    Some(if path.is_empty() {
        registry
    } else {
        format!("{registry}/{}", path.to_ascii_lowercase())
    })
}

/// The verdict of the policy at `path` on `bundle`: refused, or admitted and whether its
/// signers' precompiled code may run.
pub fn admit_bundle(
    path: &Path,
    bundle: &crate::bundle::Bundle,
) -> Result<bool, crate::StoreError> {
    use crate::bundle::ImageSource as _;
    let policy = Policy::load(path).map_err(|e| crate::StoreError::Policy(e.to_string()))?;
    let refuse = |why: &str| {
        crate::StoreError::Untrusted(format!(
            "the bundle `{}` is refused by the trust policy `{}` (its `bundles` rule): {why}",
            bundle.location().display(),
            path.display()
        ))
    };
    match policy.decide_bundle() {
        Decision::Accept => Ok(false),
        Decision::Reject(_) => Err(refuse("it rejects every bundle")),
        Decision::SignedBy(rule) => {
            let Some(signature) = bundle.signature() else {
                return Err(refuse(
                    "it has no signature; build it with `qyvol build --sign KEY` or change the rule",
                ));
            };
            super::check(
                signature,
                &rule.keys,
                super::Subject::Bundle,
                bundle.image_digest(),
            )
            .map(|_| rule.allow_precompiled)
            .map_err(|m| refuse(&format!("its signature is {m}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `default` twice: read by the manifests' parser, it is an error, not a last-one-wins
    /// (which had made this policy accept anything).
    #[test]
    fn a_policy_with_a_key_given_twice_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "default: reject\ndefault: insecureAcceptAnything\n").expect("write");
        let err = Policy::load(&path)
            .expect_err("a duplicate key")
            .to_string();
        assert!(
            err.contains("duplicate key `default`: each key may appear only once"),
            "{err}"
        );
    }

    #[test]
    fn every_spelling_of_a_registry_is_one_name() {
        for (written, normal) in [
            ("LOCALHOST:05000", "localhost:5000"),
            ("registry.lan:443", "registry.lan"),
            ("Registry.LAN", "registry.lan"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("[::1]:5000", "[::1]:5000"),
        ] {
            assert_eq!(normal_registry(written), normal, "{written}");
        }
        assert_eq!(
            normal_scope("LOCALHOST:05000/Team/").as_deref(),
            Some("localhost:5000/team")
        );
        for (written, normal) in [
            ("127.1:5000", "127.0.0.1:5000"),
            ("2130706433:5000", "127.0.0.1:5000"),
            ("0x7f.0.0.01:5000", "127.0.0.1:5000"),
        ] {
            assert_eq!(normal_registry(written), normal, "{written}");
        }
        for wrong in [
            "https://localhost:5000",
            "localhost:5000/team:1",
            "localhost:5000/team@sha256:00",
            "",
            "a b",
            "localhost:5000/team/*",
            "*.localhost",
            "team/unsigned",
            "localhost.:5000",
            "localhost:99999",
            "localhost:abc",
            ":5000",
            "localhost%3a5000",
            "ⅼocalhost:5000",
            "localhost:5000/team/../x",
            "localhost:5000#x",
        ] {
            assert_eq!(normal_scope(wrong), None, "{wrong}");
        }
    }
}
