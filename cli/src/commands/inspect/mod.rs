//! `qyvol inspect FILE`: what a manifest's module or a bare `.wasm` is, without running it.

mod bundle;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qyvol_common::ByteSize;
use qyvol_runtime::{WasiGeneration, WasmKind};

use crate::exit::Failure;
use crate::i18n::{Msg, lang};
use crate::ui::{out, sanitize};

/// Describe a .qyv manifest or a .wasm file without running it
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// The .qyv manifest or .wasm module
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Print JSON for scripts
    #[arg(long)]
    json: bool,

    /// Largest module accepted
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    max_module_size: ByteSize,

    /// What it may do when run as is: its grants under its environment next to what its
    /// module imports (FILE may also be a bundle or an image reference)
    #[arg(long)]
    policy: bool,

    #[command(flatten)]
    node: super::node::NodeArgs,
}

impl InspectCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        // A word that is no file and could be an app's name (no `.`, `/` or `:`) is a
        // deployed app, as `docker inspect NAME` is a container.
        if self.file.symlink_metadata().is_err()
            && let Some(name) = self.file.to_str()
            && qyvol_common::AppName::try_from(name.to_string()).is_ok()
        {
            return super::node::inspect_app(name, self.json, &self.node);
        }
        if self.policy {
            return inspect_policy(&self.file, self.json);
        }
        if qyvol_common::is_bundle_file(&self.file) {
            return bundle::inspect_bundle(&self.file, self.json);
        }
        // Inspecting reads but never runs, so paths outside the manifest's folder are fine.
        let op = qyvol_launch::Operator {
            allow_outside: true,
            max_module_size: self.max_module_size,
            ..qyvol_launch::Operator::default()
        };
        // An image is inspected as stored: nothing is pulled to look at it.
        let opened = qyvol_launch::open(&self.file, &op, None, &mut |r| {
            Err(Failure::from(qyvol_launch::LaunchError::from(
                qyvol_store::StoreError::NotFound(qyvol_store::canonical(r)),
            )))
        })?;
        let (path, wasm) = match opened.image {
            Some(image) => (image.source.location().to_path_buf(), image.wasm),
            None => (
                opened.manifest.entrypoint.clone(),
                qyvol_runtime::load(&opened.manifest.entrypoint, self.max_module_size.0, None)?,
            ),
        };
        // Valid as a run would judge it: by the engine, not by a reading of its own.
        qyvol_runtime::validate(&wasm)?;
        // A bare module has no manifest to show.
        let manifest = opened.manifest.source.is_some().then_some(opened.manifest);
        let info = &wasm.info;
        let wasi = match info.wasi {
            WasiGeneration::Preview1 => "preview1",
            WasiGeneration::Preview0 => "preview0",
            WasiGeneration::P2 => "0.2",
            WasiGeneration::P3 => "0.3",
            WasiGeneration::None => "-",
        };
        if self.json {
            let doc = serde_json::json!({
                "file": path,
                "manifest": manifest.as_ref().map(|m| serde_json::json!({
                    "path": m.source,
                    "name": m.name.as_str(),
                    "environment": m.environment.as_str(),
                    "runtime": match m.runtime {
                        qyvol_common::RuntimeKind::Wasi => "wasi",
                        qyvol_common::RuntimeKind::WasiHttp => "wasi-http",
                    },
                    "route": (m.runtime == qyvol_common::RuntimeKind::WasiHttp)
                        .then(|| m.http.route.to_string()),
                    "network": m.network.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "keyvalue": m.state.keyvalue.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
                    "config": m.state.config.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                    "secrets": m.state.secrets.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                })),
                "kind": info.kind,
                "wasi": info.wasi,
                "worlds": info.worlds(),
                "size": info.size,
                "sha256": info.sha256,
                "imports": info.imports,
                "exports": info.exports,
            });
            out(&serde_json::to_string_pretty(&doc).map_err(Failure::internal)?);
            return Ok(ExitCode::SUCCESS);
        }
        let l = lang();
        let label = |f: &'static str| Msg::Field(f).text(l);
        let kind = match info.kind {
            WasmKind::CoreModule => Msg::KindCore.text(l),
            WasmKind::Component => Msg::KindComponent.text(l),
        };
        if let Some(m) = &manifest {
            out(&format!("{:<14}{}", format!("{}:", label("name")), m.name));
            if m.runtime == qyvol_common::RuntimeKind::WasiHttp {
                out(&format!(
                    "{:<14}{}",
                    format!("{}:", label("route")),
                    m.http.route
                ));
            }
            if !m.network.is_empty() {
                let grants: Vec<_> = m.network.iter().map(ToString::to_string).collect();
                out(&format!(
                    "{:<14}{}",
                    format!("{}:", label("network")),
                    grants.join(", ")
                ));
            }
            // Names only: a variable's value may be a setting the operator keeps to themselves.
            let names = |f: &'static str, list: Vec<&str>| {
                if !list.is_empty() {
                    out(&format!(
                        "{:<14}{}",
                        format!("{}:", label(f)),
                        list.join(", ")
                    ));
                }
            };
            names(
                "keyvalue",
                m.state.keyvalue.iter().map(|b| b.as_str()).collect(),
            );
            names(
                "config",
                m.state.config.iter().map(|(k, _)| k.as_str()).collect(),
            );
            names(
                "secrets",
                m.state.secrets.iter().map(|k| k.as_str()).collect(),
            );
        }
        out(&format!(
            "{:<14}{}",
            format!("{}:", label("file")),
            sanitize(&path.display().to_string())
        ));
        out(&format!("{:<14}{kind}", format!("{}:", label("kind"))));
        match info.worlds().join(", ") {
            worlds if worlds.is_empty() => out(&format!("{:<14}{wasi}", "wasi:")),
            worlds => out(&format!("{:<14}{wasi} ({})", "wasi:", sanitize(&worlds))),
        }
        out(&format!(
            "{:<14}{} ({} B)",
            format!("{}:", label("size")),
            human(info.size),
            info.size
        ));
        out(&format!("{:<14}{}", "sha256:", info.sha256));
        out(&format!("{} ({}):", label("imports"), info.imports.len()));
        for i in &info.imports {
            out(&format!("  - {} [{}]", sanitize(&i.to_string()), i.kind));
        }
        out(&format!("{} ({}):", label("exports"), info.exports.len()));
        for e in &info.exports {
            out(&format!("  - {} [{}]", sanitize(&e.name), e.kind));
        }
        Ok(ExitCode::SUCCESS)
    }
}

pub(super) fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

/// `inspect --policy`: the grants a plain `qyvol run FILE` would give, beside the imports.
fn inspect_policy(file: &std::path::Path, json: bool) -> Result<ExitCode, Failure> {
    use qyvol_launch::describe::Note;
    let cache = super::cache::open()?;
    // A plain run's operator: no flags, the home's trust policy.
    let op = qyvol_launch::Operator {
        policy: super::home().ok().map(|h| h.trust_policy()),
        ..qyvol_launch::Operator::default()
    };
    let ui = crate::ui::Ui { quiet: true };
    let opened = qyvol_launch::open(file, &op, Some(&cache), &mut |r| {
        super::registry::pull(r, false, &ui).map(drop)
    })?;
    let launch = qyvol_launch::prepare(
        opened,
        &op,
        Some(&cache),
        Vec::new(),
        qyvol_runtime::DenialSink::default(),
        qyvol_launch::Runner::Foreground,
    )?;
    let policy = qyvol_launch::describe::describe(&launch);
    if json {
        out(&serde_json::to_string_pretty(&policy).map_err(Failure::internal)?);
        return Ok(ExitCode::SUCCESS);
    }
    let l = lang();
    let none = || Msg::PolicyNone.text(l);
    let list = |items: &[String]| {
        if items.is_empty() {
            none()
        } else {
            items
                .iter()
                .map(|i| sanitize(i))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    out(&Msg::PolicyOf(&sanitize(&policy.name), &policy.environment).text(l));
    let folders: Vec<String> = policy
        .folders
        .iter()
        .map(|f| {
            let mode = if f.writable {
                Msg::PolicyWritable
            } else {
                Msg::PolicyReadOnly
            };
            format!("{} ({}, {})", f.guest, mode.text(l), f.host)
        })
        .collect();
    out(&format!(
        "  {}: {}",
        Msg::PolicyFolders.text(l),
        list(&folders)
    ));
    out(&format!(
        "  {}: {}",
        Msg::PolicyConnect.text(l),
        list(&policy.connect)
    ));
    out(&format!(
        "  {}: {}",
        Msg::PolicyListen.text(l),
        list(&policy.listen)
    ));
    out(&format!(
        "  {}: {}",
        Msg::PolicyVariables.text(l),
        list(&policy.variables)
    ));
    let limits = [
        policy.memory.map(|m| format!("memory {}", ByteSize(m))),
        policy.timeout_ms.map(|t| {
            format!(
                "time {}",
                qyvol_common::DurationSpec(std::time::Duration::from_millis(t))
            )
        }),
        policy.fuel.map(|f| format!("fuel {f}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    out(&format!(
        "  {}: {}",
        Msg::PolicyLimits.text(l),
        list(&limits)
    ));
    if !policy.requested_folders.is_empty() || !policy.requested_network.is_empty() {
        let asked: Vec<String> = policy
            .requested_folders
            .iter()
            .chain(&policy.requested_network)
            .cloned()
            .collect();
        out(&format!(
            "  {}: {}",
            Msg::PolicyRequested.text(l),
            list(&asked)
        ));
    }
    let uses = policy.uses;
    let imports: Vec<String> = [
        (uses.filesystem, ("sistema de archivos", "filesystem")),
        (uses.sockets, ("sockets", "sockets")),
        (uses.http_outgoing, ("HTTP saliente", "outgoing HTTP")),
        (uses.environment, ("entorno", "environment")),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, (es, en))| match l {
        crate::i18n::Lang::Es => es.to_string(),
        crate::i18n::Lang::En => en.to_string(),
    })
    .collect();
    out(&format!(
        "  {}: {}",
        Msg::PolicyImports.text(l),
        list(&imports)
    ));
    for note in &policy.notes {
        let text = match note {
            Note::NetworkImportedNotGranted => Msg::NoteNetworkImported,
            Note::NetworkGrantedNotImported => Msg::NoteNetworkGranted,
            Note::FilesystemImportedNotGranted => Msg::NoteFilesystemImported,
            Note::FoldersGrantedNotImported => Msg::NoteFoldersGranted,
            Note::VariablesSetNotImported => Msg::NoteVariablesSet,
        };
        out(&format!("  ⚠ {}", text.text(l)));
    }
    Ok(ExitCode::SUCCESS)
}
