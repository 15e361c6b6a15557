//! What the guest gets: the manifest's grants, then the operator's flags, under the policy of
//! the environment (`--environment` or the manifest's), which first refuses what the manifest
//! asks for beyond it. A bundle's or image's manifest reaches here with no mounts and no network
//! (they are requests): only the operator's flags grant those.

use std::path::PathBuf;

use qyvol_common::{
    ByteSize, DurationSpec, Environment, GuestPath, Manifest, NetworkGrant, PolicyViolation,
};
use qyvol_runtime::serve::Reuse;
use qyvol_runtime::{DenialSink, Limits, MountGrant, RunRequest};

use crate::LaunchError;
use crate::trust::PrecompiledPolicy;

/// What the operator says on the command line (or, for the node, in a deploy request): trusted,
/// and applied on top of the manifest.
#[derive(Debug, Clone)]
pub struct Operator {
    /// `K=V` sets a variable; `K` alone copies it from the host.
    pub env: Vec<(String, Option<String>)>,
    pub mounts: Vec<MountFlag>,
    /// Network grants added to the manifest's (`--allow-net`).
    pub network: Vec<NetworkGrant>,
    pub memory: Option<ByteSize>,
    pub timeout: Option<DurationSpec>,
    pub fuel: Option<u64>,
    pub environment: Option<Environment>,
    /// Let a manifest's entrypoint and mounts point outside its folder.
    pub allow_outside: bool,
    pub max_module_size: ByteSize,
    pub compile_timeout: DurationSpec,
    /// Whether a bundle's precompiled code may run.
    pub precompiled: PrecompiledPolicy,
    /// The trust policy `.qyvc` files answer to (`QYVOL_HOME/policy.yaml`); `None` takes any
    /// bundle (the containerd shim's, staged from an image the cluster admitted). Images in the
    /// store always answer to the store's.
    pub policy: Option<std::path::PathBuf>,
    /// Whether loopback, link-local and private addresses need a grant naming them, whatever
    /// the manifest and environment say (the node forces it for every guest it runs).
    pub block_private: Option<bool>,
    /// The guest's program name (its `argv[0]`); the app's name when `None`.
    pub argv0: Option<String>,
    /// Key-value buckets, variables and secrets.
    pub state: crate::StateGrants,
}

impl Default for Operator {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            mounts: Vec::new(),
            network: Vec::new(),
            memory: None,
            timeout: None,
            fuel: None,
            environment: None,
            allow_outside: false,
            max_module_size: ByteSize(qyvol_runtime::DEFAULT_MAX_MODULE_SIZE),
            compile_timeout: DurationSpec(std::time::Duration::from_secs(300)),
            precompiled: PrecompiledPolicy::default(),
            policy: None,
            block_private: None,
            argv0: None,
            state: crate::StateGrants::default(),
        }
    }
}

/// A `--mount HOST:GUEST[:ro|:rw]` flag.
#[derive(Debug, Clone)]
pub struct MountFlag {
    pub host: PathBuf,
    pub guest: GuestPath,
    /// `Some(true)` for `:ro`, `Some(false)` for `:rw`, `None` when not said.
    pub readonly: Option<bool>,
}

impl std::str::FromStr for MountFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (rest, readonly) = match s.rsplit_once(':') {
            Some((rest, "ro")) => (rest, Some(true)),
            Some((rest, "rw")) => (rest, Some(false)),
            _ => (s, None),
        };
        let (host, guest) = rest
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not HOST:GUEST[:ro], e.g. `./data:/data:ro`"))?;
        if host.is_empty() {
            return Err(format!("`{s}` has no host folder"));
        }
        Ok(Self {
            host: host.into(),
            guest: guest.parse()?,
            readonly,
        })
    }
}

/// The value of variable `key` in this process's environment, for `--env K` (`run`) and
/// `deploy -e K`/`--env-file` (the CLI sends the value: the node never copies its own).
pub fn from_caller(key: &str) -> Result<String, LaunchError> {
    std::env::var(key).map_err(|_| {
        LaunchError::Usage(format!(
            "`--env {key}` copies `{key}` from the host, but it is not set there"
        ))
    })
}

/// The guest's arguments, environment, folders, network and limits. Refused connections and
/// binds are reported to `denials`.
pub fn request(
    manifest: &Manifest,
    op: &Operator,
    args: Vec<String>,
    denials: DenialSink,
) -> Result<RunRequest, LaunchError> {
    let policy = &op.environment.unwrap_or(manifest.environment).policy();
    manifest.check_policy(policy)?;
    let violation = |grant: String, hint: &str| PolicyViolation {
        environment: policy.environment.as_str(),
        grant,
        hint: hint.into(),
    };

    let mut env = manifest.env.clone();
    for (key, value) in &op.env {
        let value = match value {
            Some(v) => v.clone(),
            None => from_caller(key)?,
        };
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value));
    }

    let mut mounts: Vec<MountGrant> = manifest
        .mounts
        .iter()
        .map(|m| MountGrant {
            host: m.host.clone(),
            guest: m.guest.as_str().into(),
            readonly: m.readonly.unwrap_or(policy.untrusted),
            beneath: m.beneath.clone(),
        })
        .collect();
    for m in &op.mounts {
        if policy.untrusted && m.readonly == Some(false) {
            return Err(violation(
                format!(
                    "a writable mount (`--mount {}:{}:rw`)",
                    m.host.display(),
                    m.guest.as_str()
                ),
                "drop `:rw`: mounts are read-only here",
            )
            .into());
        }
        let host = m.host.canonicalize().map_err(|e| {
            LaunchError::Missing(format!("mount host folder `{}`: {e}", m.host.display()))
        })?;
        mounts.retain(|x| x.guest != m.guest.as_str());
        mounts.push(MountGrant {
            host,
            guest: m.guest.as_str().into(),
            readonly: m.readonly.unwrap_or(policy.untrusted),
            beneath: None,
        });
    }

    let mut network = manifest.network.clone();
    for grant in &op.network {
        if !policy.allows_network(grant.kind) {
            return Err(violation(
                format!("the network grant `--allow-net {grant}`"),
                "this environment allows no such grant; choose `--environment native` (or `edge` to connect out)",
            )
            .into());
        }
        if !network.contains(grant) {
            network.push(grant.clone());
        }
    }

    let limits = limits(manifest, op);
    let mut all_args = manifest.args.clone();
    all_args.extend(args);
    let mut req = RunRequest {
        argv0: op
            .argv0
            .clone()
            .unwrap_or_else(|| manifest.name.to_string()),
        args: all_args,
        env,
        mounts,
        limits,
        network,
        block_private: op
            .block_private
            .or(manifest.block_private)
            .unwrap_or(policy.block_private),
        denials,
        ..RunRequest::default()
    };
    crate::state::apply(manifest, &op.state, &mut req)?;
    Ok(req)
}

/// The limits a run gets: the operator's, else the manifest's, else the policy's caps.
pub fn limits(manifest: &Manifest, op: &Operator) -> Limits {
    let policy = op.environment.unwrap_or(manifest.environment).policy();
    Limits {
        memory: op
            .memory
            .or(manifest.limits.memory)
            .or(policy.memory_cap)
            .map(|s| s.0),
        timeout: op
            .timeout
            .or(manifest.limits.timeout)
            .or(policy.timeout_cap)
            .map(|d| d.0),
        fuel: op.fuel.or(manifest.limits.fuel),
        compile: Some(op.compile_timeout.0),
        // Set by the node for its apps (`deploy --memory-total`); a single run has one instance.
        memory_total: None,
    }
}

/// The engine settings `manifest` gets with no overriding flags from `qyvol run` (a command) or
/// `qyvol serve` (a handler), for a guest speaking `wasi`: what `qyvol build` precompiles for.
pub fn expected_config(
    manifest: &Manifest,
    wasi: qyvol_runtime::WasiGeneration,
) -> qyvol_runtime::EngineConfig {
    qyvol_runtime::EngineConfig::decide(
        crate::runner::Runner::Foreground.purpose(manifest.runtime),
        &limits(manifest, &Operator::default()),
        wasi,
    )
}

/// The largest request body a handler accepts when neither the manifest nor the operator says.
pub const DEFAULT_MAX_BODY: ByteSize = ByteSize(10 * 1024 * 1024);

/// The largest request body a handler accepts: the manifest's `http.max_body`, else the
/// operator's `--max-body`. A bundle's or image's manifest may only lower it: a larger body is
/// memory the host spends on untrusted clients.
pub fn max_body(manifest: &Manifest, operator: ByteSize) -> ByteSize {
    match manifest.http.max_body {
        Some(asked) if manifest.from_image => ByteSize(asked.0.min(operator.0)),
        Some(asked) => asked,
        None => operator,
    }
}

/// How many requests one instance of a WASI 0.3 handler takes: the manifest's `http.reuse`
/// and `http.concurrent_reuse`, else the operator's (`qyvol serve --reuse`,
/// `--concurrent-reuse`; a fresh instance per request when unset). A bundle's or image's
/// manifest may only ask for less: state kept between requests is a way for one client's data
/// to reach another's, which the operator alone decides to allow. Only 0.3 handlers are reused
/// (`wasi` is what the guest speaks): a manifest asking it of another is refused.
pub fn reuse(
    manifest: &Manifest,
    wasi: qyvol_runtime::WasiGeneration,
    operator: Reuse,
) -> Result<Reuse, LaunchError> {
    let asked = manifest.http.reuse.is_some() || manifest.http.concurrent_reuse.is_some();
    if wasi != qyvol_runtime::WasiGeneration::P3 {
        if asked {
            return Err(LaunchError::Usage(format!(
                "`{}` sets `http.reuse` or `http.concurrent_reuse`, which only WASI 0.3 handlers take, and it is not one: remove them (it gets a fresh instance per request)",
                manifest.name,
            )));
        }
        return Ok(Reuse::FRESH);
    }
    let pick = |asked: Option<u32>, operator: u32| match asked {
        Some(asked) if manifest.from_image => asked.min(operator),
        Some(asked) => asked,
        None => operator,
    };
    let requests = pick(manifest.http.reuse, operator.requests).max(1);
    let concurrent = pick(manifest.http.concurrent_reuse, operator.concurrent).max(1);
    Ok(Reuse {
        requests,
        concurrent: concurrent.min(requests),
    })
}
