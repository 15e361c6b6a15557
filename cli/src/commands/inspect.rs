//! `qyvol inspect FILE`: what a manifest's module or a bare `.wasm` is, without running it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qyvol_common::{ByteSize, LoadOptions, Manifest};
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
}

impl InspectCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        // Inspecting reads but never runs, so paths outside the manifest's folder are fine.
        let manifest = if super::is_wasm_file(&self.file) {
            None
        } else {
            Some(Manifest::load(
                &self.file,
                LoadOptions {
                    allow_outside: true,
                },
            )?)
        };
        let path = manifest
            .as_ref()
            .map_or(self.file.clone(), |m| m.entrypoint.clone());
        let wasm = qyvol_runtime::load(&path, self.max_module_size.0, None)?;
        let info = &wasm.info;
        let wasi = match info.wasi {
            WasiGeneration::Preview1 => "preview1",
            WasiGeneration::Preview0 => "preview0",
            WasiGeneration::P2 => "0.2",
            WasiGeneration::None => "-",
        };
        if self.json {
            let doc = serde_json::json!({
                "file": path,
                "manifest": manifest.as_ref().map(|m| serde_json::json!({
                    "path": m.source,
                    "name": m.name.as_str(),
                    "environment": m.environment.as_str(),
                })),
                "kind": info.kind,
                "wasi": info.wasi,
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
        }
        out(&format!(
            "{:<14}{}",
            format!("{}:", label("file")),
            sanitize(&path.display().to_string())
        ));
        out(&format!("{:<14}{kind}", format!("{}:", label("kind"))));
        out(&format!("{:<14}{wasi}", "wasi:"));
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

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}
