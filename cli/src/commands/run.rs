//! `qyvol run FILE [ARGS]...`: runs a manifest or a bare module, with the manifest's grants
//! extended or overridden by flags, and exits with the guest's code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qyvol_common::{
    ByteSize, DurationSpec, Environment, NetworkGrant, Requests, RuntimeKind, parse_env_pair,
};
use qyvol_launch::{CodeTrust, MountFlag, Operator, PrecompiledPolicy};
use qyvol_runtime::Outcome;

use crate::exit::{self, Code, Failure};
use crate::i18n::{Msg, lang};
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

    /// Compiler: auto maps Cranelift's cached code, or starts a big module on Winch while
    /// Cranelift compiles it in the background; cranelift or winch compile with that one only
    #[arg(long, value_enum, value_name = "NAME", default_value_t = CompilerArg::Auto)]
    compiler: CompilerArg,

    /// Allow plain HTTP to a registry that is not on loopback (when FILE is pulled)
    #[arg(long)]
    insecure: bool,

    /// The program name the guest sees as its first argument (default: the app's name)
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,

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

/// `--compiler`: which compiler makes the code a run maps.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompilerArg {
    Auto,
    Cranelift,
    Winch,
}

impl From<CompilerArg> for qyvol_runtime::Compiler {
    fn from(c: CompilerArg) -> Self {
        match c {
            CompilerArg::Auto => Self::Auto,
            CompilerArg::Cranelift => Self::Cranelift,
            CompilerArg::Winch => Self::Winch,
        }
    }
}

/// What the operator grants on the command line, on top of the manifest.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// Set an environment variable for the module (K=V), or copy K from the host
    #[arg(short = 'e', long = "env", value_name = "K=V", value_parser = parse_env_pair)]
    pub(crate) env: Vec<(String, Option<String>)>,

    /// Mount a host folder in the module; `:ro` makes it read-only
    #[arg(long, value_name = "HOST:GUEST[:ro]")]
    pub(crate) mount: Vec<MountFlag>,

    /// Let the module connect to HOST:PORT (or listen, with `listen HOST:PORT`)
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) allow_net: Vec<NetworkGrant>,

    /// Memory limit for the module, e.g. 64MiB
    #[arg(long, value_name = "SIZE")]
    pub(crate) memory: Option<ByteSize>,

    /// Time limit for the run, e.g. 30s
    #[arg(long, value_name = "DUR")]
    pub(crate) timeout: Option<DurationSpec>,

    /// Fuel limit (roughly, wasm instructions)
    #[arg(long, value_name = "N")]
    pub(crate) fuel: Option<u64>,

    /// Trust policy: native, sandbox or edge
    #[arg(long, value_name = "ENV")]
    pub(crate) environment: Option<Environment>,

    /// Let the manifest's entrypoint and mounts point outside its folder
    #[arg(long)]
    pub(crate) allow_outside: bool,

    /// Run a bundle's or image's precompiled native code even if this machine did not build it
    #[arg(long, conflicts_with = "no_precompiled")]
    pub(crate) allow_precompiled: bool,

    /// Never run a bundle's precompiled code, even one built here: compile its wasm
    #[arg(long)]
    pub(crate) no_precompiled: bool,

    /// Largest module accepted for compilation
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub(crate) max_module_size: ByteSize,

    /// Longest time compilation may take before the module is refused
    #[arg(long, value_name = "DUR", default_value = "5m")]
    pub(crate) compile_timeout: DurationSpec,

    /// Grant a key-value bucket (wasi:keyvalue) that keeps its data between runs
    #[arg(long, value_name = "NAME", value_parser = super::state::parse_bucket)]
    pub(crate) keyvalue: Vec<qyvol_common::AppName>,

    /// Set a variable the module reads through wasi:config
    #[arg(long, value_name = "NAME=VALUE", value_parser = qyvol_common::parse_config_pair)]
    pub(crate) config: Vec<(qyvol_common::ConfigKey, String)>,

    /// Give a secret, read from FILE (`-`: stdin), that the module reads through wasi:config
    #[arg(long, value_name = "NAME=FILE", value_parser = super::state::parse_secret_flag)]
    pub(crate) secret: Vec<(qyvol_common::ConfigKey, PathBuf)>,
}

impl GrantArgs {
    pub(crate) fn operator(&self) -> Result<Operator, Failure> {
        Ok(Operator {
            env: self.env.clone(),
            mounts: self.mount.clone(),
            network: self.allow_net.clone(),
            memory: self.memory,
            timeout: self.timeout,
            fuel: self.fuel,
            environment: self.environment,
            allow_outside: self.allow_outside,
            max_module_size: self.max_module_size,
            compile_timeout: self.compile_timeout,
            precompiled: match (self.allow_precompiled, self.no_precompiled) {
                (true, _) => PrecompiledPolicy::Allow,
                (_, true) => PrecompiledPolicy::Ignore,
                _ => PrecompiledPolicy::BuiltHere,
            },
            policy: qyvol_common::Home::open().ok().map(|h| h.trust_policy()),
            block_private: None,
            argv0: None,
            state: super::state::grants(&self.keyvalue, &self.config, &self.secret)?,
        })
    }
}

impl RunCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: self.quiet };
        ui.status(Msg::Running);
        let cache = (!self.no_cache).then(super::cache::open).transpose()?;
        let op = Operator {
            argv0: self.argv0.clone(),
            ..self.grants.operator()?
        };
        let insecure = self.insecure;
        let opened = qyvol_launch::open(&self.file, &op, cache.as_ref(), &mut |r| {
            super::registry::pull(r, insecure, &ui).map(drop)
        })?;
        let manifest = &opened.manifest;
        ui.status(Msg::LoadingModule(manifest.name.as_str()));
        ui.status(Msg::ExpectedPath(&sanitize(
            &manifest.entrypoint.display().to_string(),
        )));
        let not_served = || {
            Failure::new(
                Code::BadManifest,
                Msg::BadManifest,
                Msg::NotServed.text(crate::i18n::lang()),
            )
        };
        if manifest.runtime == RuntimeKind::WasiHttp {
            return Err(not_served());
        }
        requests_not_granted(&ui, &manifest.requested, &op);
        let launch = qyvol_launch::prepare(
            opened,
            &op,
            cache.as_ref(),
            self.args,
            crate::ui::denial_sink(),
            qyvol_launch::Runner::Foreground,
        )?;
        // A bare `.wasm` is known to be a handler only once it is loaded.
        if launch.manifest.runtime == RuntimeKind::WasiHttp {
            return Err(not_served());
        }
        code_trust(&ui, launch.code);
        key_value_store(&ui, &launch.request);
        let wasm = &launch.wasm;
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
            compiler: self.compiler.into(),
        };
        let outcome = qyvol_runtime::run(wasm, &launch.request, launch.engine, how)?;
        Ok(report(&ui, outcome))
    }
}

/// Tells the operator what a bundle's or image's manifest asked for and did not get (packaged
/// code grants itself nothing), with the flags that would grant it.
pub(crate) fn requests_not_granted(ui: &Ui, requested: &Requests, op: &Operator) {
    for m in &requested.mounts {
        let mode = if m.readonly == Some(false) { "" } else { ":ro" };
        // The bundle wrote both paths: escaped, like all text a module controls.
        let guest = sanitize(m.guest.as_str());
        ui.alert(Msg::MountRequested(
            &sanitize(&m.host),
            &guest,
            &format!("--mount HOST:{guest}{mode}"),
        ));
    }
    for grant in &requested.network {
        let text = sanitize(&grant.to_string());
        ui.alert(Msg::NetworkRequested(
            &text,
            &format!("--allow-net '{text}'"),
        ));
    }
    for bucket in requested
        .keyvalue
        .iter()
        .filter(|b| !op.state.keyvalue.contains(b))
    {
        ui.alert(Msg::BucketRequested(bucket.as_str()));
    }
}

/// Says whose key-value store a run's granted buckets are in: the app's name decides it, and a
/// package names itself, so the operator sees which app's data they are granting.
pub(crate) fn key_value_store(ui: &Ui, req: &qyvol_runtime::RunRequest) {
    if let Some(kv) = &req.keyvalue {
        ui.status(Msg::KvStore(
            &kv.app,
            &kv.buckets.join(", "),
            &sanitize(&kv.store.path().display().to_string()),
        ));
    }
}

/// Says when a bundle's precompiled code is passed over for its wasm.
pub(crate) fn code_trust(ui: &Ui, code: Option<CodeTrust>) {
    if code == Some(CodeTrust::Untrusted) {
        ui.status(Msg::PrecompiledUntrusted);
    }
}

fn report(ui: &Ui, outcome: Outcome) -> ExitCode {
    // The code and the words are the runtime's (the node and the shim give the same); here,
    // where to say them, with a trap's backtrace.
    let code = exit::guest(outcome.exit_code());
    match &outcome {
        Outcome::Exited(0) => ui.status(Msg::Completed),
        Outcome::Exited(code) => ui.status(Msg::ExitedWith(*code)),
        _ => {}
    }
    if let Some(why) = outcome.explain(lang()) {
        ui.alert(Msg::Said(&why));
    }
    if let Outcome::Trapped { backtrace, .. } = &outcome
        && !backtrace.is_empty()
    {
        ui.alert(Msg::Backtrace);
        for (i, frame) in backtrace.iter().enumerate() {
            ui.alert(Msg::Frame(i, &sanitize(frame)));
        }
    }
    code
}
