//! The `.qyv` manifest, version 1: YAML parsed with bounded resources into typed fields, then
//! resolved against the manifest's folder. Every error names the file, line and column.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::yaml::parse;

use crate::error::{ErrorKind, ManifestError};
use crate::file::{FileError, open_regular};
use crate::folder::{FolderError, open_mount};
use crate::network::{GrantKind, NetworkGrant, Route};
use crate::policy::{Environment, Policy, PolicyViolation};
use crate::types::{AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind, check_env};

/// What FILE may be, for errors about a folder, FIFO or device given instead.
const FILE_HINT: &str = "give a .qyv, .wasm or .qyvc file";

/// Manifests larger than this are refused before parsing.
pub const MANIFEST_MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    #[serde(default)]
    pub(crate) version: Option<Spanned<u32>>,
    name: AppName,
    entrypoint: Spanned<String>,
    runtime: RuntimeKind,
    #[serde(default)]
    environment: Environment,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    mounts: Vec<Spanned<RawMount>>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    build: Option<RawBuild>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    http: Option<Spanned<RawHttp>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    allow: Vec<NetworkGrant>,
    #[serde(default)]
    block_private: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    route: Option<Route>,
    #[serde(default)]
    max_body: Option<ByteSize>,
}

/// How an HTTP handler (`runtime: wasi-http`) is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    /// Where it is mounted; every path (`/...`) when the manifest names no route.
    pub route: Route,
    /// The largest request body it accepts; `None` for the server's default.
    pub max_body: Option<ByteSize>,
}

impl Default for HttpSpec {
    fn default() -> Self {
        Self {
            route: Route::any(),
            max_body: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: String,
    #[serde(default)]
    output: Option<String>,
}

/// How `qyvol build` produces the wasm: a shell command run in the manifest's folder, and the
/// file it writes (the entrypoint when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub command: String,
    pub output: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    host: Spanned<String>,
    guest: GuestPath,
    #[serde(default)]
    readonly: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<ByteSize>,
    timeout: Option<DurationSpec>,
    fuel: Option<u64>,
}

/// A host folder made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute host path without symlinks: the manifest's folder joined with the written
    /// path, or with `--allow-outside` the written path canonicalised.
    pub host: PathBuf,
    pub guest: GuestPath,
    /// `None`: not said; writable under `native`, read-only under `sandbox` and `edge`.
    pub readonly: Option<bool>,
    /// The folder `host` must be opened beneath (the manifest's, canonical); `None` with
    /// `--allow-outside`. See [`crate::open_mount`].
    pub beneath: Option<PathBuf>,
}

/// A mount a bundle's or image's manifest asks for: shown to the operator, granted only by
/// them (`--mount`), so its host path is never resolved on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedMount {
    pub host: String,
    pub guest: GuestPath,
    pub readonly: Option<bool>,
}

/// As `--mount` writes it: `HOST:GUEST:ro|rw` (read-only unless it asks to write).
impl std::fmt::Display for RequestedMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = if self.readonly == Some(false) {
            "rw"
        } else {
            "ro"
        };
        write!(f, "{}:{}:{mode}", self.host, self.guest.as_str())
    }
}

/// What a bundle's or image's own manifest asks of the host. Packaged code is untrusted: its
/// manifest may limit itself (limits, args, env, route apply) but grants nothing, so these
/// are requests the operator may grant with flags or a `.qyv` of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub mounts: Vec<RequestedMount>,
    pub network: Vec<NetworkGrant>,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty() && self.network.is_empty()
    }
}

/// A module that comes packaged rather than as a `.wasm`: a manifest the operator wrote may
/// name a `.qyvc` bundle or an image reference as its entrypoint, and grant it what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packaged {
    Bundle(PathBuf),
    /// An image reference, as written (parsed by the store).
    Image(String),
}

/// Resource limits; `None` means unlimited (before a policy fills in its defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolvedLimits {
    pub memory: Option<ByteSize>,
    pub timeout: Option<DurationSpec>,
    pub fuel: Option<u64>,
}

/// A loaded, validated manifest with every path resolved.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The `.qyv` file, or `None` for a bare `.wasm` run without a manifest.
    pub source: Option<PathBuf>,
    pub name: AppName,
    /// The entrypoint as the user sees it: the manifest's folder joined with the written path.
    pub entrypoint: PathBuf,
    pub runtime: RuntimeKind,
    pub environment: Environment,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub limits: ResolvedLimits,
    pub build: Option<BuildSpec>,
    /// What the guest may reach or bind on the network; nothing when empty.
    pub network: Vec<NetworkGrant>,
    /// `network.block_private`: refuse connections to loopback, link-local and private
    /// addresses that no address grant names. `None`: the environment decides.
    pub block_private: Option<bool>,
    /// How it is served, for `runtime: wasi-http`.
    pub http: HttpSpec,
    /// The module is a bundle or an image this (operator's) manifest names as its entrypoint.
    pub packaged: Option<Packaged>,
    /// Grants a bundle's or image's own manifest asked for and was not given.
    pub requested: Requests,
    /// This is a bundle's or image's own manifest (untrusted: it may limit, not loosen).
    pub from_image: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Let the entrypoint and mounts point outside the manifest's folder.
    pub allow_outside: bool,
    /// Don't require the entrypoint to exist yet (`qyvol build` is about to make it).
    pub unbuilt: bool,
}

impl Manifest {
    /// Reads, parses and resolves the manifest at `path`.
    pub fn load(path: &Path, options: LoadOptions) -> Result<Self, ManifestError> {
        let text = read_bounded(path)?;
        let raw = parse(path, &text)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        resolve(path, dir, raw, options)
    }

    /// The manifest stored in a bundle or an image: its module is the wasm layer. Its mounts
    /// and network grants become [`Requests`]: packaged code grants itself nothing on the host.
    pub fn from_bundle(bundle: &Path, text: &[u8]) -> Result<Self, ManifestError> {
        let text = std::str::from_utf8(text).map_err(|e| {
            ManifestError::new(
                ErrorKind::BadManifest,
                bundle,
                format!("the bundled manifest is not UTF-8: {e}"),
            )
        })?;
        let mut raw = parse(bundle, text)?;
        let requested = Requests {
            mounts: std::mem::take(&mut raw.mounts)
                .into_iter()
                .map(|m| RequestedMount {
                    host: m.value.host.value,
                    guest: m.value.guest,
                    readonly: m.value.readonly,
                })
                .collect(),
            network: std::mem::take(&mut raw.network.allow),
        };
        raw.build = None;
        let options = LoadOptions {
            unbuilt: true,
            allow_outside: true,
        };
        let mut manifest = resolve(bundle, Path::new("."), raw, options)?;
        manifest.entrypoint = bundle.to_path_buf();
        manifest.requested = requested;
        manifest.from_image = true;
        // It may tighten the guard against private addresses, never loosen it.
        if manifest.block_private == Some(false) {
            manifest.block_private = None;
        }
        Ok(manifest)
    }

    /// A manifest for a bare `.wasm` file: native environment, no grants, no limits.
    pub fn for_wasm(path: &Path) -> Result<Self, ManifestError> {
        check_wasm_file(path, FILE_HINT)
            .map_err(|(kind, msg)| ManifestError::new(kind, path, msg))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("module");
        let cleaned: String = stem
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(AppName::MAX_LEN)
            .collect();
        let name = AppName::try_from(cleaned.trim_matches('-').to_string())
            .or_else(|_| AppName::try_from("module".to_string()))
            .map_err(|e| ManifestError::new(ErrorKind::BadManifest, path, e))?;
        Ok(Self {
            source: None,
            name,
            entrypoint: path.to_path_buf(),
            runtime: RuntimeKind::Wasi,
            environment: Environment::Native,
            args: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            limits: ResolvedLimits::default(),
            build: None,
            network: Vec::new(),
            block_private: None,
            http: HttpSpec::default(),
            packaged: None,
            requested: Requests::default(),
            from_image: false,
        })
    }

    /// Refuses what the policy does not allow; call before adding the operator's CLI grants.
    pub fn check_policy(&self, policy: &Policy) -> Result<(), PolicyViolation> {
        let violation = |grant: String, hint: &str| PolicyViolation {
            environment: policy.environment.as_str(),
            grant,
            hint: hint.to_string(),
        };
        if policy.untrusted
            && let Some(m) = self.mounts.iter().find(|m| m.readonly == Some(false))
        {
            {
                return Err(violation(
                    format!(
                        "a writable mount (`{}` on `{}`)",
                        m.host.display(),
                        m.guest.as_str()
                    ),
                    "remove `readonly: false` or use `environment: native`",
                ));
            }
        }
        if let Some(grant) = self.network.iter().find(|g| !policy.allows_network(g.kind)) {
            let hint = match (policy.environment, grant.kind) {
                (Environment::Edge, _) => {
                    "edge handlers are reached through `qyvol serve` and may only connect out; use `environment: native` for a program that listens"
                }
                (_, GrantKind::Listen) => {
                    "untrusted code gets no network; use `environment: native` for a program that listens"
                }
                (_, GrantKind::Connect) => {
                    "untrusted code gets no network; use `environment: edge` or `native` to let it connect"
                }
            };
            return Err(violation(format!("the network grant `{grant}`"), hint));
        }
        if policy.block_private && self.block_private == Some(false) {
            return Err(violation(
                "`network.block_private: false`".into(),
                "untrusted code reaches loopback and private addresses only through grants naming them by address (e.g. `10.0.0.5:5432`); remove the setting, or use `environment: native`",
            ));
        }
        if let (Some(cap), Some(asked)) = (policy.memory_cap, self.limits.memory)
            && asked > cap
        {
            {
                return Err(violation(
                    format!("a memory limit of {asked}"),
                    &format!("ask for at most {cap}"),
                ));
            }
        }
        if let (Some(cap), Some(asked)) = (policy.timeout_cap, self.limits.timeout)
            && asked > cap
        {
            {
                return Err(violation(
                    format!("a time limit of {asked}"),
                    &format!("ask for at most {cap}"),
                ));
            }
        }
        Ok(())
    }
}

fn read_bounded(path: &Path) -> Result<String, ManifestError> {
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

fn resolve(
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
    let http = match raw.http {
        Some(h) if raw.runtime != RuntimeKind::WasiHttp => {
            return Err(fail(
                ErrorKind::BadManifest,
                "`http` only applies to `runtime: wasi-http` (HTTP handlers served by `qyvol serve`)".into(),
                &h.referenced,
            ));
        }
        Some(h) => HttpSpec {
            route: h.value.route.unwrap_or_else(Route::any),
            max_body: h.value.max_body,
        },
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
