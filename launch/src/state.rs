//! What a run keeps and reads besides its files: the key-value buckets it may open and the
//! variables and secrets it reads, from the manifest and the operator. Buckets follow the trust
//! rule: the operator's manifest or flags grant them, a packaged manifest only asks. Variables
//! and secrets a manifest declares without a value must be given, or the run is refused with
//! their names.

use std::path::PathBuf;
use std::sync::Arc;

use qyvol_common::{AppName, ConfigKey, Manifest, Secret};
use qyvol_runtime::RunRequest;
use qyvol_runtime::keyvalue::{AppStore, ConfigVars, KeyValue};

use crate::LaunchError;

/// The operator's state grants (flags, or a deploy request's).
#[derive(Debug, Clone, Default)]
pub struct StateGrants {
    /// `--keyvalue NAME`: buckets granted on top of the manifest's.
    pub keyvalue: Vec<AppName>,
    /// `--config K=V`: variables set or overriding the manifest's.
    pub config: Vec<(ConfigKey, String)>,
    /// `--secret NAME=FILE`: secrets, read by the caller from a file or stdin.
    pub secrets: Vec<(ConfigKey, Secret)>,
    /// The folder where each app's key-value file lives (`APP.redb`); `None` when this host
    /// keeps no state (then a run granted buckets is refused).
    pub keyvalue_dir: Option<PathBuf>,
    /// Whose buckets they are, when not the manifest's name (`deploy --name`).
    pub owner: Option<AppName>,
    /// Where writes a quota refused are reported.
    pub refusals: qyvol_runtime::keyvalue::QuotaSink,
}

/// Buckets this run may open: the (operator's) manifest's and the operator's flags'.
pub fn buckets(manifest: &Manifest, op: &StateGrants) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let own = if manifest.from_image {
        &[][..]
    } else {
        &manifest.state.keyvalue[..]
    };
    for b in own.iter().chain(&op.keyvalue) {
        if !names.iter().any(|n| n == b.as_str()) {
            names.push(b.to_string());
        }
    }
    names
}

/// The file an app's buckets live in.
pub fn store_path(dir: &std::path::Path, app: &AppName) -> PathBuf {
    dir.join(format!("{app}.redb"))
}

/// Fills in `req`'s buckets and `wasi:config` values.
pub(crate) fn apply(
    manifest: &Manifest,
    op: &StateGrants,
    req: &mut RunRequest,
) -> Result<(), LaunchError> {
    let names = buckets(manifest, op);
    if !names.is_empty() {
        let dir = op.keyvalue_dir.as_ref().ok_or_else(|| {
            LaunchError::Usage(format!(
                "`{}` is granted key-value buckets, but this host keeps no state",
                manifest.name
            ))
        })?;
        let owner = op.owner.as_ref().unwrap_or(&manifest.name);
        req.keyvalue = Some(KeyValue {
            store: open_store(dir, owner)?,
            buckets: names,
            quotas: manifest.state.quotas,
            app: owner.to_string(),
            refusals: op.refusals.clone(),
        });
    }
    let (variables, secrets) = values(manifest, op)?;
    req.config = ConfigVars::new(variables, &secrets);
    Ok(())
}

/// Variables (the manifest's defaults, then the operator's) and secrets, or an error naming
/// every one the manifest declares and nobody gave.
#[expect(
    clippy::type_complexity,
    reason = "two lists of pairs, named where they are used"
)]
pub fn values(
    manifest: &Manifest,
    op: &StateGrants,
) -> Result<(Vec<(String, String)>, Vec<(String, Secret)>), LaunchError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut missing = Vec::new();
    for (key, default) in &manifest.state.config {
        match op.config.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) => out.push((key.to_string(), v.clone())),
            None => match default {
                Some(v) => out.push((key.to_string(), v.clone())),
                None => missing.push(format!("variable `{key}` (`--config {key}=VALUE`)")),
            },
        }
    }
    for (key, value) in &op.config {
        if !out.iter().any(|(k, _)| k == key.as_str()) {
            out.push((key.to_string(), value.clone()));
        }
    }
    for key in &manifest.state.secrets {
        if !op.secrets.iter().any(|(k, _)| k == key) {
            missing.push(format!(
                "secret `{key}` (`--secret {key}=FILE`, or `=-` for stdin)"
            ));
        }
    }
    let mut secrets = Vec::new();
    for (key, secret) in &op.secrets {
        if out.iter().any(|(k, _)| k == key.as_str()) {
            return Err(LaunchError::Usage(format!(
                "`{key}` is given both as a variable and as a secret: give it once"
            )));
        }
        secrets.push((key.to_string(), secret.clone()));
    }
    if !missing.is_empty() {
        return Err(LaunchError::Usage(format!(
            "`{}` needs {}",
            manifest.name,
            missing.join(", ")
        )));
    }
    Ok((out, secrets))
}

/// A shared handle for the operator's tools (the node's `kv` API): the app's store, opened.
pub fn open_store(dir: &std::path::Path, app: &AppName) -> Result<Arc<AppStore>, LaunchError> {
    AppStore::open(&store_path(dir, app)).map_err(|e| LaunchError::KeyValue(e.to_string()))
}
