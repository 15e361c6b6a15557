//! A compose file (`qyvol-compose.yaml`): several apps started, called and updated as one
//! project. Each app names its source (a manifest, bundle, wasm or image reference, as
//! `deploy` takes) and the operator's grants for it. Parsed strictly, with every error at its
//! line and column; `depends_on` and `calls` must name apps of the file, and `depends_on` may
//! not loop, so the apps come out in an order where each follows what it depends on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{ErrorKind, ManifestError};
use crate::state::ConfigKey;
use crate::types::{AppName, ByteSize, DurationSpec};

/// The file `qyvol up` reads when none is named.
pub const COMPOSE_FILE: &str = "qyvol-compose.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompose {
    #[serde(default)]
    version: Option<Spanned<u32>>,
    name: Spanned<AppName>,
    apps: Spanned<BTreeMap<AppName, Spanned<RawApp>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    source: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    config: BTreeMap<ConfigKey, String>,
    /// Secret name → the file holding its value (relative to the compose file).
    #[serde(default)]
    secrets: BTreeMap<ConfigKey, String>,
    #[serde(default)]
    keyvalue: Vec<AppName>,
    /// `HOST:GUEST[:ro]` or `VOLUME:GUEST[:ro]`.
    #[serde(default)]
    mounts: Vec<String>,
    #[serde(default)]
    allow_net: Vec<String>,
    #[serde(default)]
    calls: Vec<Spanned<AppName>>,
    #[serde(default)]
    depends_on: Vec<Spanned<AppName>>,
    #[serde(default)]
    restart: Option<String>,
    #[serde(default)]
    health: Option<String>,
    #[serde(default)]
    health_interval: Option<DurationSpec>,
    #[serde(default)]
    memory: Option<ByteSize>,
    #[serde(default)]
    timeout: Option<DurationSpec>,
    /// Sources and build inputs `--watch` follows (relative to the compose file); the
    /// source's folder when not given.
    #[serde(default)]
    watch: Vec<String>,
}

/// A project: its name and its apps, each after those it depends on.
#[derive(Debug, Clone)]
pub struct Compose {
    pub path: PathBuf,
    pub name: AppName,
    pub apps: Vec<ComposeApp>,
}

/// One app of a project, with paths made absolute against the compose file's folder.
#[derive(Debug, Clone, Default)]
pub struct ComposeApp {
    pub name: String,
    /// An absolute path, or an image reference as written.
    pub source: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub config: Vec<(ConfigKey, String)>,
    pub secrets: Vec<(ConfigKey, PathBuf)>,
    pub keyvalue: Vec<String>,
    pub mounts: Vec<String>,
    pub allow_net: Vec<String>,
    pub calls: Vec<String>,
    pub depends_on: Vec<String>,
    pub restart: Option<String>,
    pub health: Option<String>,
    pub health_interval: Option<DurationSpec>,
    pub memory: Option<ByteSize>,
    pub timeout: Option<DurationSpec>,
    /// Files and folders whose changes rebuild and redeploy it under `--watch`.
    pub watch: Vec<PathBuf>,
}

impl Compose {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = crate::manifest::read_text(path)?;
        let raw: RawCompose = crate::yaml::from_str(&text).map_err(|e| {
            let err = ManifestError::new(ErrorKind::BadManifest, path, e.message);
            match e.location {
                Some(at) => err.at(&at),
                None => err,
            }
        })?;
        let fail = |msg: String, at: &serde_saphyr::Location| {
            ManifestError::new(ErrorKind::BadManifest, path, msg).at(at)
        };
        if let Some(v) = &raw.version
            && v.value != 1
        {
            return Err(fail(
                format!(
                    "compose version {} is not supported: this Qyvol reads version 1",
                    v.value
                ),
                &v.referenced,
            ));
        }
        if raw.name.value.as_str().contains('-') {
            return Err(fail(
                format!(
                    "the project name `{}` has a `-`: a project's name is lowercase letters and digits (its apps are named PROJECT-APP, which must say which project they belong to)",
                    raw.name.value
                ),
                &raw.name.referenced,
            ));
        }
        if raw.apps.value.is_empty() {
            return Err(fail("`apps` lists no app".into(), &raw.apps.referenced));
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let names: Vec<String> = raw.apps.value.keys().map(ToString::to_string).collect();
        for (name, app) in &raw.apps.value {
            for other in app.value.calls.iter().chain(&app.value.depends_on) {
                if !names.contains(&other.value.to_string()) {
                    return Err(fail(
                        format!(
                            "`{name}` names `{}`, which is not an app of this file (its apps: {})",
                            other.value,
                            names.join(", ")
                        ),
                        &other.referenced,
                    ));
                }
                if other.value == *name {
                    return Err(fail(format!("`{name}` names itself"), &other.referenced));
                }
            }
        }
        let order = order(&raw.apps.value).map_err(|cycle| {
            fail(
                format!("`depends_on` goes round in a circle: {}", cycle.join(" → ")),
                &raw.apps.referenced,
            )
        })?;
        let apps = order
            .into_iter()
            .map(|name| {
                let raw_app = &raw.apps.value[&name];
                resolve(&dir, raw.name.value.as_str(), &name, &raw_app.value)
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            name: raw.name.value,
            apps,
        })
    }
}

/// The apps with each after the ones it depends on (by name among equals), or a cycle.
fn order(apps: &BTreeMap<AppName, Spanned<RawApp>>) -> Result<Vec<AppName>, Vec<String>> {
    let mut done: Vec<AppName> = Vec::new();
    while done.len() < apps.len() {
        let next = apps.iter().find(|(name, app)| {
            !done.contains(name) && app.value.depends_on.iter().all(|d| done.contains(&d.value))
        });
        match next {
            Some((name, _)) => done.push(name.clone()),
            None => {
                return Err(apps
                    .keys()
                    .filter(|n| !done.contains(n))
                    .map(ToString::to_string)
                    .collect());
            }
        }
    }
    Ok(done)
}

fn resolve(dir: &Path, project: &str, name: &AppName, raw: &RawApp) -> ComposeApp {
    let joined = dir.join(&raw.source);
    // A path when something is there (or it reads like one); an image reference otherwise.
    let is_path = joined.exists() || raw.source.starts_with('.') || raw.source.starts_with('/');
    let source = if is_path {
        joined.display().to_string()
    } else {
        raw.source.clone()
    };
    let watch = if raw.watch.is_empty() {
        is_path
            .then(|| joined.parent().map(Path::to_path_buf))
            .flatten()
            .into_iter()
            .collect()
    } else {
        raw.watch.iter().map(|w| dir.join(w)).collect()
    };
    let mounts = raw
        .mounts
        .iter()
        .map(|m| match m.split_once(':') {
            // A relative host path is relative to the compose file; a volume is the project's
            // own (`data` is `PROJECT-data`, as Docker's compose scopes them).
            Some((host, rest)) if host.starts_with('.') => {
                format!("{}:{rest}", dir.join(host).display())
            }
            Some((host, rest)) if AppName::try_from(host.to_string()).is_ok() => {
                format!("{project}-{host}:{rest}")
            }
            _ => m.clone(),
        })
        .collect();
    ComposeApp {
        name: name.to_string(),
        source,
        args: raw.args.clone(),
        env: raw
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        config: raw
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secrets: raw
            .secrets
            .iter()
            .map(|(k, f)| (k.clone(), dir.join(f)))
            .collect(),
        keyvalue: raw.keyvalue.iter().map(ToString::to_string).collect(),
        mounts,
        allow_net: raw.allow_net.clone(),
        calls: raw.calls.iter().map(|c| c.value.to_string()).collect(),
        depends_on: raw.depends_on.iter().map(|c| c.value.to_string()).collect(),
        restart: raw.restart.clone(),
        health: raw.health.clone(),
        health_interval: raw.health_interval,
        memory: raw.memory,
        timeout: raw.timeout,
        watch,
    }
}
