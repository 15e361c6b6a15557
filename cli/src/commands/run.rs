//! `qyvol run FILE [ARGS]...`: runs a manifest or a bare module, with the manifest's grants
//! extended or overridden by flags, and exits with the guest's code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qyvol_common::{
    ByteSize, DurationSpec, Environment, GuestPath, LoadOptions, Manifest, RuntimeKind,
    parse_env_pair,
};
use qyvol_runtime::{Limits, MountGrant, Outcome, Resource, RunRequest};

use crate::exit::{self, Code, Failure};
use crate::i18n::Msg;
use crate::ui::{Ui, sanitize};

/// Run a .qyv manifest or a .wasm file
#[derive(Debug, Args)]
pub struct RunCommand {
    #[command(flatten)]
    grants: GrantArgs,

    /// Don't print Qyvol's status lines (the guest's output is untouched)
    #[arg(short, long)]
    quiet: bool,

    /// Don't use the compile cache (for measurements)
    #[arg(long)]
    no_cache: bool,

    /// Allow plain HTTP to a registry that is not on loopback (when FILE is pulled)
    #[arg(long)]
    insecure: bool,

    /// Ignore a bundle's precompiled code and compile from its wasm (for untrusted bundles)
    #[arg(long)]
    no_precompiled: bool,

    /// The .qyv manifest or .wasm module to run
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Arguments for the module (everything after FILE)
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// What the operator grants on the command line, on top of the manifest.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// Set an environment variable for the module (K=V), or copy K from the host
    #[arg(short = 'e', long = "env", value_name = "K=V", value_parser = parse_env_pair)]
    env: Vec<(String, Option<String>)>,

    /// Mount a host folder in the module; `:ro` makes it read-only
    #[arg(long, value_name = "HOST:GUEST[:ro]", value_parser = parse_mount)]
    mount: Vec<CliMount>,

    /// Memory limit for the module, e.g. 64MiB
    #[arg(long, value_name = "SIZE")]
    memory: Option<ByteSize>,

    /// Time limit for the run, e.g. 30s
    #[arg(long, value_name = "DUR")]
    timeout: Option<DurationSpec>,

    /// Fuel limit (roughly, wasm instructions)
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,

    /// Trust policy: native, sandbox or edge
    #[arg(long, value_name = "ENV")]
    pub(crate) environment: Option<Environment>,

    /// Let the manifest's entrypoint and mounts point outside its folder
    #[arg(long)]
    pub(crate) allow_outside: bool,

    /// Largest module accepted for compilation
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub(crate) max_module_size: ByteSize,

    /// Longest time compilation may take before the module is refused
    #[arg(long, value_name = "DUR", default_value = "5m")]
    compile_timeout: DurationSpec,
}

#[derive(Debug, Clone)]
pub struct CliMount {
    host: PathBuf,
    guest: GuestPath,
    /// `Some(true)` for `:ro`, `Some(false)` for `:rw`, `None` when not said.
    readonly: Option<bool>,
}

fn parse_mount(s: &str) -> Result<CliMount, String> {
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
    Ok(CliMount {
        host: host.into(),
        guest: guest.parse()?,
        readonly,
    })
}

impl RunCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: self.quiet };
        ui.status(Msg::Running);
        let options = LoadOptions {
            allow_outside: self.grants.allow_outside,
            ..LoadOptions::default()
        };
        let cache = (!self.no_cache).then(super::cache::open);
        let (manifest, bundle) =
            open_target(&self.file, options, cache.as_ref(), self.insecure, &ui)?;
        ui.status(Msg::LoadingModule(manifest.name.as_str()));
        ui.status(Msg::ExpectedPath(&sanitize(
            &manifest.entrypoint.display().to_string(),
        )));
        if manifest.runtime == RuntimeKind::WasiHttp {
            return Err(Failure::new(
                Code::BadManifest,
                Msg::BadManifest,
                Msg::NotServed.text(crate::i18n::lang()),
            ));
        }
        let request = request(&manifest, &self.grants, self.args, crate::ui::denial_sink())?;

        // A bundle's precompiled code goes through the cache (a scratch one with --no-cache).
        let scratch = match (&bundle, &cache) {
            (Some(_), None) if !self.no_precompiled => {
                Some(tempfile::tempdir().map_err(Failure::internal)?)
            }
            _ => None,
        };
        let scratch_cache = scratch
            .as_ref()
            .map(|d| qyvol_runtime::Cache::new(d.path().to_path_buf(), u64::MAX));
        let cache = cache.or(scratch_cache);
        let wasm = module_of(
            bundle,
            &manifest,
            cache.as_ref(),
            &request.limits,
            !self.no_precompiled,
            self.grants.max_module_size,
        )?;
        ui.status(Msg::Imports);
        for import in &wasm.info.imports {
            ui.status(Msg::ListItem(&sanitize(&import.to_string())));
        }
        ui.status(Msg::Exports);
        for export in &wasm.info.exports {
            ui.status(Msg::ListItem(&sanitize(&export.name)));
        }
        let spinner = crate::ui::CompileSpinner::new(self.quiet);
        let how = qyvol_runtime::Compilation {
            cache: cache.as_ref(),
            progress: spinner
                .as_ref()
                .map(|s| s as &dyn qyvol_runtime::CompileProgress),
            refresh: self.no_precompiled,
        };
        let outcome = qyvol_runtime::run(&wasm, &request, how)?;
        Ok(report(&ui, &request.limits, outcome))
    }
}

/// What FILE names, opened: an image reference (from the local store, pulled when missing, as
/// `docker run` does), a `.qyvc` bundle, a bare `.wasm`, or a `.qyv` manifest. Bundles and
/// images come with their module; for the others it is loaded from the manifest's entrypoint.
pub(crate) fn open_target(
    file: &std::path::Path,
    options: LoadOptions,
    cache: Option<&qyvol_runtime::Cache>,
    insecure: bool,
    ui: &Ui,
) -> Result<(Manifest, Option<super::bundled::Opened>), Failure> {
    if let Some(reference) = image_reference(file) {
        let store = super::images::store()?;
        let image = match store.image(&reference) {
            Err(qyvol_store::StoreError::NotFound(_)) => {
                super::registry::pull(&reference, insecure, ui)?;
                store.image(&reference)?
            }
            other => other?,
        };
        let shown = std::path::PathBuf::from(qyvol_store::canonical(&reference));
        let opened = super::bundled::open_image(
            std::sync::Arc::new(image),
            &shown,
            std::path::Path::new("."),
            options,
            cache,
        )?;
        Ok((opened.manifest.clone(), Some(opened)))
    } else if qyvol_common::bundle::is_bundle_file(file) {
        let opened = super::bundled::open(file, options, cache)?;
        Ok((opened.manifest.clone(), Some(opened)))
    } else if super::is_wasm_file(file) {
        Ok((Manifest::for_wasm(file)?, None))
    } else {
        Ok((Manifest::load(file, options)?, None))
    }
}

/// The module to run: a bundle's or image's (its precompiled code imported into the cache
/// first when `precompiled` and it matches the engine `limits` call for), or the entrypoint's.
pub(crate) fn module_of(
    bundle: Option<super::bundled::Opened>,
    manifest: &Manifest,
    cache: Option<&qyvol_runtime::Cache>,
    limits: &Limits,
    precompiled: bool,
    max_size: ByteSize,
) -> Result<qyvol_runtime::Wasm, Failure> {
    match bundle {
        Some(opened) => {
            if precompiled && let Some(cache) = cache {
                super::bundled::import_precompiled(
                    &opened,
                    cache,
                    qyvol_runtime::EngineConfig::for_limits(limits),
                )?;
            }
            Ok(opened.wasm)
        }
        None => Ok(qyvol_runtime::load(
            &manifest.entrypoint,
            max_size.0,
            cache,
        )?),
    }
}

/// FILE names an image when no such file exists and it reads as a reference (`name:tag`).
fn image_reference(file: &std::path::Path) -> Option<qyvol_store::Reference> {
    if file.exists() {
        return None;
    }
    let text = file.to_str()?;
    (text.contains(':') || text.contains('@'))
        .then(|| qyvol_store::parse_reference(text).ok())
        .flatten()
}

/// The guest's arguments, environment, folders, network and limits: the manifest's, then the
/// flags, under the environment's policy (`--environment` or the manifest's), which first
/// refuses what the manifest asks for beyond it. Refused connections and binds are reported to
/// `denials`.
pub(crate) fn request(
    manifest: &Manifest,
    grants: &GrantArgs,
    args: Vec<String>,
    denials: qyvol_runtime::DenialSink,
) -> Result<RunRequest, Failure> {
    let policy = &grants.environment.unwrap_or(manifest.environment).policy();
    manifest.check_policy(policy)?;
    let mut env = manifest.env.clone();
    for (key, value) in &grants.env {
        let value = match value {
            Some(v) => v.clone(),
            None => std::env::var(key).map_err(|_| {
                Failure::new(
                    Code::Usage,
                    Msg::BadFlag,
                    format!("`--env {key}` copies `{key}` from the host, but it is not set there"),
                )
            })?,
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
        })
        .collect();
    for m in &grants.mount {
        if policy.untrusted && m.readonly == Some(false) {
            return Err(qyvol_common::PolicyViolation {
                environment: policy.environment.as_str(),
                grant: format!(
                    "a writable mount (`--mount {}:{}:rw`)",
                    m.host.display(),
                    m.guest.as_str()
                ),
                hint: "drop `:rw`: mounts are read-only here".into(),
            }
            .into());
        }
        let host = m.host.canonicalize().map_err(|e| {
            Failure::new(
                Code::MissingFile,
                Msg::MissingFile,
                format!("mount host folder `{}`: {e}", m.host.display()),
            )
        })?;
        mounts.retain(|x| x.guest != m.guest.as_str());
        mounts.push(MountGrant {
            host,
            guest: m.guest.as_str().into(),
            readonly: m.readonly.unwrap_or(policy.untrusted),
        });
    }

    let limits = Limits {
        memory: grants
            .memory
            .or(manifest.limits.memory)
            .or(policy.memory_cap)
            .map(|s| s.0),
        timeout: grants
            .timeout
            .or(manifest.limits.timeout)
            .or(policy.timeout_cap)
            .map(|d| d.0),
        fuel: grants.fuel.or(manifest.limits.fuel),
        compile: Some(grants.compile_timeout.0),
    };
    let mut all_args = manifest.args.clone();
    all_args.extend(args);
    Ok(RunRequest {
        argv0: manifest.name.to_string(),
        args: all_args,
        env,
        mounts,
        limits,
        network: manifest.network.clone(),
        block_private: manifest.block_private.unwrap_or(policy.block_private),
        denials,
    })
}

fn report(ui: &Ui, limits: &Limits, outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Exited(0) => {
            ui.status(Msg::Completed);
            ExitCode::SUCCESS
        }
        Outcome::Exited(code) => {
            ui.status(Msg::ExitedWith(code));
            exit::guest(code)
        }
        Outcome::Trapped { trap, backtrace } => {
            ui.alert(Msg::Trapped(&sanitize(&trap)));
            if !backtrace.is_empty() {
                ui.alert(Msg::Backtrace);
                for (i, frame) in backtrace.iter().enumerate() {
                    ui.alert(Msg::Frame(i, &sanitize(frame)));
                }
            }
            Code::Trap.into()
        }
        Outcome::TimedOut(t) => {
            ui.alert(Msg::TimedOut(&DurationSpec(t).to_string()));
            Code::Timeout.into()
        }
        Outcome::LimitExceeded {
            resource: Resource::Memory,
            limit,
        } => {
            ui.alert(Msg::MemoryExceeded(&ByteSize(limit).to_string()));
            Code::Memory.into()
        }
        Outcome::LimitExceeded {
            resource: Resource::Table,
            limit,
        } => {
            ui.alert(Msg::TableExceeded(limit));
            Code::Memory.into()
        }
        Outcome::FuelExhausted(_) => {
            ui.alert(Msg::FuelExhausted(limits.fuel.unwrap_or_default()));
            Code::Timeout.into()
        }
    }
}
