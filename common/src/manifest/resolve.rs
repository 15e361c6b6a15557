//! From a raw manifest to a [`Manifest`](super::Manifest): paths resolved beneath its folder,
//! the entrypoint checked, mounts opened, grants and limits read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::raw::RawManifest;
use super::{
    BuildSpec, HttpSpec, LoadOptions, Manifest, Mount, Packaged, Requests, ResolvedLimits,
    StateSpec,
};
use crate::error::{ErrorKind, ManifestError};
use crate::file::{FileError, open_regular};
use crate::folder::{FolderError, open_mount};
use crate::network::Route;
use crate::state::KvQuotas;
use crate::types::{RuntimeKind, check_env};

pub(super) fn resolve(
    path: &Path,
    dir: &Path,
    raw: RawManifest,
    options: LoadOptions,
) -> Result<Manifest, ManifestError> {
    let canonical_dir = dir.canonicalize().map_err(|e| {
        ManifestError::new(
            ErrorKind::MissingFile,
            path,
            format!("cannot resolve the manifest's folder: {e}"),
        )
    })?;
    let inside = |p: &Path| options.allow_outside || p.starts_with(&canonical_dir);
    let outside_hint =
        "paths must stay inside the manifest's folder; pass `--allow-outside` to permit it";

    let entry = &raw.entrypoint;
    let fail = |kind, msg: String, loc| ManifestError::new(kind, path, msg).at(loc);
    check_path_text(&entry.value)
        .map_err(|m| fail(ErrorKind::BadManifest, m, &entry.referenced))?;
    let entrypoint = dir.join(&entry.value);
    let packaged = if options.unbuilt {
        None
    } else {
        packaged_entry(&entry.value, &entrypoint)
    };
    if let Some(Packaged::Bundle(_)) | None = &packaged
        && !options.unbuilt
    {
        if packaged.is_none() {
            check_wasm_file(&entrypoint, "point `entrypoint` at a .wasm file")
                .map_err(|(kind, m)| fail(kind, m, &entry.referenced))?;
        }
        let canonical_entry = entrypoint.canonicalize().map_err(|e| {
            fail(
                ErrorKind::MissingFile,
                format!("cannot resolve `{}`: {e}", entrypoint.display()),
                &entry.referenced,
            )
        })?;
        if !inside(&canonical_entry) {
            return Err(fail(
                ErrorKind::BadManifest,
                format!(
                    "entrypoint `{}` is outside the manifest's folder: {outside_hint}",
                    entry.value
                ),
                &entry.referenced,
            ));
        }
    }

    let mut mounts = Vec::with_capacity(raw.mounts.len());
    for m in &raw.mounts {
        let host = &m.value.host;
        check_path_text(&host.value)
            .map_err(|msg| fail(ErrorKind::BadManifest, msg, &host.referenced))?;
        let (resolved, beneath) =
            mount_host(dir, &canonical_dir, &host.value, options.allow_outside).map_err(|e| {
                let (kind, hint) = match e {
                    FolderError::Missing => (ErrorKind::MissingFile, "; create it or fix `host`"),
                    FolderError::Outside => (
                        ErrorKind::BadManifest,
                        "; pass `--allow-outside` to permit it",
                    ),
                    FolderError::Procfs => (ErrorKind::Denied, ""),
                    _ => (ErrorKind::BadManifest, ""),
                };
                let msg = format!("mount host `{}`: {e}{hint}", host.value);
                fail(kind, msg, &host.referenced)
            })?;
        if mounts.iter().any(|x: &Mount| x.guest == m.value.guest) {
            return Err(fail(
                ErrorKind::BadManifest,
                format!("guest path `{}` is mounted twice", m.value.guest.as_str()),
                &m.referenced,
            ));
        }
        mounts.push(Mount {
            host: resolved,
            guest: m.value.guest.clone(),
            readonly: m.value.readonly,
            beneath,
        });
    }

    let mut env = Vec::with_capacity(raw.env.len());
    for (k, v) in raw.env {
        check_env(&k, &v).map_err(|m| {
            ManifestError::new(ErrorKind::BadManifest, path, format!("in `env`: {m}"))
        })?;
        env.push((k, v));
    }
    if raw.args.iter().any(|a| a.contains('\0')) {
        return Err(ManifestError::new(
            ErrorKind::BadManifest,
            path,
            "an entry of `args` contains a NUL byte",
        ));
    }

    let build = match raw.build {
        Some(b) => {
            if b.command.trim().is_empty() {
                return Err(ManifestError::new(
                    ErrorKind::BadManifest,
                    path,
                    "`build.command` is empty",
                ));
            }
            let output = b
                .output
                .as_deref()
                .map_or_else(|| entrypoint.clone(), |o| dir.join(o));
            Some(BuildSpec {
                command: b.command,
                output,
            })
        }
        None => None,
    };
    let state = StateSpec {
        keyvalue: raw.keyvalue.map(|k| k.value).unwrap_or_default(),
        quotas: KvQuotas::default().with(&raw.limits.keyvalue, true),
        config: raw
            .config
            .map(|c| c.value.into_iter().collect())
            .unwrap_or_default(),
        secrets: raw.secrets.map(|s| s.value).unwrap_or_default(),
    };
    let http = match raw.http {
        Some(h) if raw.runtime != RuntimeKind::WasiHttp => {
            return Err(fail(
                ErrorKind::BadManifest,
                "`http` only applies to `runtime: wasi-http` (HTTP handlers served by `qyvol serve`)".into(),
                &h.referenced,
            ));
        }
        Some(h) => {
            for (key, value) in [
                ("reuse", h.value.reuse),
                ("concurrent_reuse", h.value.concurrent_reuse),
            ] {
                if value == Some(0) {
                    return Err(fail(
                        ErrorKind::BadManifest,
                        format!(
                            "`http.{key}` counts requests per instance: at least 1 (1 is a fresh instance per request)"
                        ),
                        &h.referenced,
                    ));
                }
            }
            HttpSpec {
                route: h.value.route.unwrap_or_else(Route::any),
                max_body: h.value.max_body,
                reuse: h.value.reuse,
                concurrent_reuse: h.value.concurrent_reuse,
            }
        }
        None => HttpSpec::default(),
    };
    Ok(Manifest {
        source: Some(path.to_path_buf()),
        name: raw.name,
        entrypoint,
        runtime: raw.runtime,
        environment: raw.environment,
        args: raw.args,
        env,
        mounts,
        limits: ResolvedLimits {
            memory: raw.limits.memory,
            timeout: raw.limits.timeout,
            fuel: raw.limits.fuel,
        },
        build,
        network: raw.network.allow,
        block_private: raw.network.block_private,
        http,
        packaged,
        requested: Requests::default(),
        from_image: false,
        state,
    })
}

/// An entrypoint that names a `.qyvc` bundle, or an image reference (no such file, and it reads
/// like `registry/name:tag` or `name@sha256:...`).
fn packaged_entry(text: &str, joined: &Path) -> Option<Packaged> {
    if crate::is_bundle_file(joined) {
        return Some(Packaged::Bundle(joined.to_path_buf()));
    }
    let reference_like = !joined.exists()
        && (text.contains(':') || text.contains('@'))
        && !text.starts_with(['.', '/'])
        && !text.ends_with(".wasm");
    reference_like.then(|| Packaged::Image(text.to_string()))
}

/// Where a mount's folder is, and what it must stay beneath: the manifest's folder joined with
/// the written path, opened beneath that folder following no symlink; with `--allow-outside`,
/// the written path canonicalised. The folder is opened here only to report a problem at its
/// line: the runtime opens it again the same way, and that handle is what the guest gets.
fn mount_host(
    dir: &Path,
    canonical_dir: &Path,
    written: &str,
    allow_outside: bool,
) -> Result<(PathBuf, Option<PathBuf>), FolderError> {
    if allow_outside {
        let host = dir.join(written).canonicalize().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                FolderError::Missing
            } else {
                FolderError::Io(e)
            }
        })?;
        open_mount(&host, None)?;
        return Ok((host, None));
    }
    // `components` drops `.`; `..` stays for the kernel to resolve (and keep beneath).
    let host: PathBuf = canonical_dir.join(written).components().collect();
    open_mount(&host, Some(canonical_dir))?;
    Ok((host, Some(canonical_dir.to_path_buf())))
}

fn check_path_text(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    if p.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    Ok(())
}

/// Checks that `path` is a readable regular file that starts like a WebAssembly binary.
/// `hint` says what to give instead of a folder, FIFO or device.
pub(crate) fn check_wasm_file(path: &Path, hint: &str) -> Result<(), (ErrorKind, String)> {
    let (mut file, _) = open_regular(path).map_err(|e| match e {
        FileError::NotAFile { .. } => (ErrorKind::NotAFile, format!("{e}: {hint}")),
        FileError::Open { ref source, .. } => {
            let kind = if source.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::MissingFile
            } else {
                ErrorKind::NotWasm
            };
            (kind, e.to_string())
        }
    })?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap_or(0);
    if n < 4 || &magic != crate::WASM_MAGIC {
        return Err((
            ErrorKind::NotWasm,
            format!(
                "`{}` is not a WebAssembly binary (it does not start with `\\0asm`)",
                path.display()
            ),
        ));
    }
    Ok(())
}
