//! Registry credentials: Qyvol's own `QYVOL_HOME/auth.json`, written by `qyvol login`, then
//! the Docker client's `config.json` (`DOCKER_CONFIG` or `~/.docker`), so existing logins
//! work. Both use Docker's format: `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::StoreError;

/// A user name and password for a registry (Docker's `auth`, or `qyvol login`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

fn docker_config() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("DOCKER_CONFIG")
        .or_else(|| var("HOME").map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"))
}

fn from_file(path: &Path, registry: &str) -> Option<Credentials> {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths
        .get(registry)
        .or_else(|| auths.get(&format!("https://{registry}")))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        username: user.into(),
        password: pass.into(),
    })
}

/// The credentials for `registry`, if any were saved.
pub fn load(home: &Path, registry: &str) -> Option<Credentials> {
    from_file(&home.join("auth.json"), registry)
        .or_else(|| docker_config().and_then(|p| from_file(&p, registry)))
}

/// Saves credentials for `registry` in `QYVOL_HOME/auth.json`, readable only by the user.
pub fn save(home: &Path, registry: &str, creds: &Credentials) -> Result<(), StoreError> {
    let path = home.join("auth.json");
    let io_err = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let mut doc: Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({ "auths": {} }));
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    if !doc["auths"].is_object() {
        doc["auths"] = json!({});
    }
    doc["auths"][registry] = json!({ "auth": encoded });
    std::fs::create_dir_all(home).map_err(io_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(home).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err)?;
    }
    std::io::Write::write_all(
        &mut tmp,
        &serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::Registry(e.to_string()))?,
    )
    .map_err(io_err)?;
    tmp.persist(&path).map_err(|e| StoreError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(())
}
