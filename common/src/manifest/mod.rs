//! The `.qyv` manifest, version 1: YAML parsed with bounded resources into typed fields, then
//! resolved against the manifest's folder. Every error names the file, line and column.

use std::path::{Path, PathBuf};

mod raw;
mod resolve;

use crate::error::{ErrorKind, ManifestError};
use crate::network::{GrantKind, NetworkGrant, Route};
use crate::policy::{Environment, Policy, PolicyViolation};
use crate::state::{ConfigKey, KvQuotas};
use crate::types::{AppName, ByteSize, DurationSpec, GuestPath, RuntimeKind};
use raw::{parse, read_bounded};
pub(crate) use resolve::check_wasm_file;
use resolve::resolve;

/// What FILE may be, for errors about a folder, FIFO or device given instead.
const FILE_HINT: &str = "give a .qyv, .wasm or .qyvc file";

/// Manifests larger than this are refused before parsing.
pub const MANIFEST_MAX_BYTES: u64 = 1024 * 1024;

/// How an HTTP handler (`runtime: wasi-http`) is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    /// Where it is mounted; every path (`/...`) when the manifest names no route.
    pub route: Route,
    /// The largest request body it accepts; `None` for the server's default.
    pub max_body: Option<ByteSize>,
    /// How many requests one instance of a WASI 0.3 handler may take, in all (`reuse`) and
    /// at once (`concurrent_reuse`); `None` for the operator's setting (a fresh instance per
    /// request unless the operator says otherwise).
    pub reuse: Option<u32>,
    pub concurrent_reuse: Option<u32>,
}

impl Default for HttpSpec {
    fn default() -> Self {
        Self {
            route: Route::any(),
            max_body: None,
            reuse: None,
            concurrent_reuse: None,
        }
    }
}

/// How `qyvol build` produces the wasm: a shell command run in the manifest's folder, and the
/// file it writes (the entrypoint when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub command: String,
    pub output: PathBuf,
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

/// What an app keeps and reads besides its files: the buckets it may open (`wasi:keyvalue`),
/// their quotas, and the variables and secrets it reads (`wasi:config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSpec {
    /// Buckets granted by this (operator's) manifest; a packaged one's are [`Requests`].
    pub keyvalue: Vec<AppName>,
    pub quotas: KvQuotas,
    /// Variables with their values; `None` is one the operator must give.
    pub config: Vec<(ConfigKey, Option<String>)>,
    /// Secrets the operator must give.
    pub secrets: Vec<ConfigKey>,
}

/// The most buckets, variables or secrets one manifest may list.
pub const MAX_STATE_NAMES: usize = 64;

/// What a bundle's or image's own manifest asks of the host. Packaged code is untrusted: its
/// manifest may limit itself (limits, args, env, route apply) but grants nothing, so these
/// are requests the operator may grant with flags or a `.qyv` of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub mounts: Vec<RequestedMount>,
    pub network: Vec<NetworkGrant>,
    pub keyvalue: Vec<AppName>,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty() && self.network.is_empty() && self.keyvalue.is_empty()
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
    pub state: StateSpec,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Let the entrypoint and mounts point outside the manifest's folder.
    pub allow_outside: bool,
    /// Don't require the entrypoint to exist yet (`qyvol build` is about to make it).
    pub unbuilt: bool,
}

/// Reads a YAML file Qyvol takes (at most [`MANIFEST_MAX_BYTES`], UTF-8, not a wasm binary).
pub(crate) fn read_text(path: &Path) -> Result<String, ManifestError> {
    read_bounded(path)
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
            keyvalue: raw.keyvalue.take().map(|k| k.value).unwrap_or_default(),
        };
        // Its own quotas may only be lower than the defaults.
        let quotas = KvQuotas::default().with(&raw.limits.keyvalue, false);
        raw.build = None;
        let options = LoadOptions {
            unbuilt: true,
            allow_outside: true,
        };
        let mut manifest = resolve(bundle, Path::new("."), raw, options)?;
        manifest.entrypoint = bundle.to_path_buf();
        manifest.requested = requested;
        manifest.from_image = true;
        manifest.state.quotas = quotas;
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
            state: StateSpec::default(),
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
