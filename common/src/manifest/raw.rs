//! A manifest as written: the YAML's shape before any path is resolved or grant checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{FILE_HINT, MANIFEST_MAX_BYTES};
use crate::error::{ErrorKind, ManifestError};
use crate::file::{FileError, open_regular};
use crate::network::{NetworkGrant, Route};
use crate::policy::Environment;
use crate::state::{ConfigKey, KvLimits};
use crate::types::{AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind};
use crate::yaml::from_str;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    #[serde(default)]
    pub(crate) version: Option<Spanned<u32>>,
    pub(super) name: AppName,
    pub(super) entrypoint: Spanned<String>,
    pub(super) runtime: RuntimeKind,
    #[serde(default)]
    pub(super) environment: Environment,
    #[serde(default)]
    pub(super) args: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) mounts: Vec<Spanned<RawMount>>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) build: Option<RawBuild>,
    #[serde(default)]
    pub(super) network: RawNetwork,
    #[serde(default)]
    pub(super) http: Option<Spanned<RawHttp>>,
    /// Key-value buckets: granted in the operator's manifest, requested in a packaged one.
    #[serde(default)]
    pub(super) keyvalue: Option<Spanned<Vec<AppName>>>,
    /// `wasi:config` variables; a null value is one the operator must give.
    #[serde(default)]
    pub(super) config: Option<Spanned<BTreeMap<ConfigKey, Option<String>>>>,
    /// Names of the secrets the operator must give.
    #[serde(default)]
    pub(super) secrets: Option<Spanned<Vec<ConfigKey>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub(super) allow: Vec<NetworkGrant>,
    #[serde(default)]
    pub(super) block_private: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default)]
    pub(super) route: Option<Route>,
    #[serde(default)]
    pub(super) max_body: Option<ByteSize>,
    #[serde(default)]
    pub(super) reuse: Option<u32>,
    #[serde(default)]
    pub(super) concurrent_reuse: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub(super) command: String,
    #[serde(default)]
    pub(super) output: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMount {
    pub(super) host: Spanned<String>,
    pub(super) guest: GuestPath,
    #[serde(default)]
    pub(super) readonly: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) memory: Option<ByteSize>,
    pub(super) timeout: Option<DurationSpec>,
    pub(super) fuel: Option<u64>,
    #[serde(default)]
    pub(super) keyvalue: KvLimits,
}

pub(super) fn read_bounded(path: &Path) -> Result<String, ManifestError> {
    let missing = |e: std::io::Error| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::MissingFile
        } else {
            ErrorKind::BadManifest
        };
        ManifestError::new(kind, path, format!("cannot read the manifest: {e}"))
    };
    let (file, _) = open_regular(path).map_err(|e| match e {
        FileError::Open { source, .. } => missing(source),
        FileError::NotAFile { kind, .. } => ManifestError::new(
            ErrorKind::NotAFile,
            path,
            format!("{kind}, not a file: {FILE_HINT}"),
        ),
    })?;
    let mut bytes = Vec::new();
    file.take(MANIFEST_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(missing)?;
    if bytes.len() as u64 > MANIFEST_MAX_BYTES {
        return Err(ManifestError::new(
            ErrorKind::BadManifest,
            path,
            format!(
                "the manifest is larger than {}; a manifest describes a module, it does not contain one",
                ByteSize(MANIFEST_MAX_BYTES)
            ),
        ));
    }
    if bytes.starts_with(crate::WASM_MAGIC) {
        return Err(ManifestError::new(
            ErrorKind::BadManifest,
            path,
            "this is a WebAssembly binary, not a manifest: give it a `.wasm` extension to run it directly",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        ManifestError::new(
            ErrorKind::BadManifest,
            path,
            format!("the manifest is not UTF-8 text: {e}"),
        )
    })
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<RawManifest, ManifestError> {
    let raw: RawManifest = from_str(text).map_err(|e| {
        let mut err = ManifestError::new(ErrorKind::BadManifest, path, e.message);
        if let Some(loc) = e.location {
            err = err.at(&loc);
        }
        err
    })?;
    if let Some(v) = &raw.version
        && v.value != 1
    {
        {
            return Err(ManifestError::new(
                ErrorKind::BadManifest,
                path,
                format!(
                    "manifest version {} is not supported: this Qyvol reads version 1",
                    v.value
                ),
            )
            .at(&v.referenced));
        }
    }
    check_state(path, &raw)?;
    Ok(raw)
}

/// `field` lists at most [`super::MAX_STATE_NAMES`] names (each a `what`), none twice.
fn names_once<T: PartialEq + std::fmt::Display>(
    field: &str,
    what: &str,
    list: &Spanned<Vec<T>>,
) -> Result<(), String> {
    let names = &list.value;
    if names.len() > super::MAX_STATE_NAMES {
        return Err(format!(
            "`{field}` lists {} names; a manifest may list at most {}",
            names.len(),
            super::MAX_STATE_NAMES
        ));
    }
    match names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
    {
        Some((_, dup)) => Err(format!("{what} `{dup}` is listed twice in `{field}`")),
        None => Ok(()),
    }
}

/// Lists of buckets, variables and secrets are short, without repeats, and values are
/// within [`crate::MAX_CONFIG_VALUE`]: a manifest cannot make the host open thousands of
/// stores or keep megabytes of settings per instance.
fn check_state(path: &Path, raw: &RawManifest) -> Result<(), ManifestError> {
    let fail = |msg: String, at: &serde_saphyr::Location| {
        ManifestError::new(ErrorKind::BadManifest, path, msg).at(at)
    };
    let too_many = |field: &str, n: usize| {
        format!(
            "`{field}` lists {n} names; a manifest may list at most {}",
            super::MAX_STATE_NAMES
        )
    };
    if let Some(k) = &raw.keyvalue {
        names_once("keyvalue", "bucket", k).map_err(|m| fail(m, &k.referenced))?;
    }
    if let Some(s) = &raw.secrets {
        names_once("secrets", "secret", s).map_err(|m| fail(m, &s.referenced))?;
    }
    if let Some(c) = &raw.config {
        if c.value.len() > super::MAX_STATE_NAMES {
            return Err(fail(too_many("config", c.value.len()), &c.referenced));
        }
        for (key, value) in &c.value {
            if let Some(v) = value {
                crate::state::config_value(key, v.clone().into_bytes())
                    .map_err(|e| fail(e, &c.referenced))?;
            }
            if raw.secrets.as_ref().is_some_and(|s| s.value.contains(key)) {
                return Err(fail(
                    format!(
                        "`{key}` is both a variable (`config`) and a secret (`secrets`): give it one place"
                    ),
                    &c.referenced,
                ));
            }
        }
    }
    Ok(())
}
