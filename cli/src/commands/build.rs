//! `qyvol build [app.qyv] [-o app.qyvc]`: builds the module (the manifest's `build.command`, or
//! cargo when a `Cargo.toml` sits beside the manifest), compiles it for this host, and writes
//! the compiled bundle.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;
use qyvol_common::{ByteSize, LoadOptions, Manifest, RuntimeKind};
use qyvol_runtime::WasmKind;
use qyvol_store::bundle::{self, BundleParts, Precompiled};

use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::{CompileSpinner, Ui, sanitize};

/// Build a compiled bundle (.qyvc) from a manifest
#[derive(Debug, Args)]
pub struct BuildCommand {
    /// The .qyv manifest
    #[arg(value_name = "MANIFEST", default_value = "app.qyv")]
    manifest: PathBuf,

    /// Where to write the bundle (default: `<name>.qyvc` beside the manifest)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Store the bundle in the local store under this reference (repeatable)
    #[arg(short = 't', long = "tag", value_name = "REF")]
    tags: Vec<String>,

    /// Leave out precompiled native code (a smaller, host-independent bundle)
    #[arg(long)]
    no_precompile: bool,

    /// Don't print Qyvol's status lines
    #[arg(short, long)]
    quiet: bool,

    /// Sign the bundle's manifest with this private key, kept in the bundle (the password on
    /// stdin or in QYVOL_KEY_PASSWORD)
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

impl BuildCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: self.quiet };
        // The key first: a wrong password must not cost a compilation.
        let signer = self.sign.as_deref().map(super::keys::signer).transpose()?;
        let tags = self
            .tags
            .iter()
            .map(|t| qyvol_store::parse_reference(t))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = Manifest::load(
            &self.manifest,
            LoadOptions {
                unbuilt: true,
                ..LoadOptions::default()
            },
        )?;
        let dir = self
            .manifest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let wasm_path = if let Some(build) = &manifest.build {
            ui.status(Msg::BuildRunning(&build.command));
            shell(&build.command, dir)?;
            if !build.output.is_file() {
                return Err(Failure::new(
                    Code::MissingFile,
                    Msg::MissingFile,
                    format!(
                        "`build.command` finished but did not produce `{}` (`build.output`): fix the command or the path",
                        build.output.display()
                    ),
                ));
            }
            build.output.clone()
        } else if dir.join("Cargo.toml").is_file() {
            let target = if manifest.runtime == RuntimeKind::WasiHttp {
                "wasm32-wasip2"
            } else {
                "wasm32-wasip1"
            };
            ui.status(Msg::BuildRunning(&format!(
                "cargo build --release --target {target}"
            )));
            cargo_build(dir, target)?
        } else {
            manifest.entrypoint.clone()
        };

        let cache = super::cache::open()?;
        let wasm = qyvol_runtime::load(
            &wasm_path,
            qyvol_runtime::DEFAULT_MAX_MODULE_SIZE,
            Some(&cache),
        )?;
        let precompiled = if self.no_precompile {
            None
        } else {
            let spinner = CompileSpinner::new(self.quiet);
            let how = qyvol_runtime::Compilation {
                cache: Some(&cache),
                progress: spinner
                    .as_ref()
                    .map(|s| s as &dyn qyvol_runtime::CompileProgress),
                // A bundle carries optimised code.
                compiler: qyvol_runtime::Compiler::Cranelift,
            };
            let config = qyvol_launch::grants::expected_config(&manifest, wasm.info.wasi);
            let (code, engine) = qyvol_runtime::precompile(&wasm, config, how)?;
            // Remembered so that a run of this bundle (or of the image it becomes) trusts this
            // exact code as Qyvol's own, and nothing else claiming to be it.
            let layer = qyvol_common::Digest::of(&code);
            cache
                .record_built(&layer, &wasm.info.sha256, &engine, wasm.info.kind)
                .map_err(|e| Failure::internal(format!("cannot write the compile cache: {e}")))?;
            Some(Precompiled {
                code,
                platform: qyvol_runtime::platform(),
                engine,
                wasmtime: qyvol_runtime::WASMTIME_VERSION.into(),
            })
        };
        let wasm_bytes = std::fs::read(&wasm_path).map_err(|e| {
            Failure::new(
                Code::MissingFile,
                Msg::MissingFile,
                format!("`{}`: {e}", wasm_path.display()),
            )
        })?;
        let qyv = std::fs::read(&self.manifest).map_err(Failure::internal)?;
        // With only `-t`, the bundle goes straight into the store, as `docker build -t` does.
        let store = if tags.is_empty() {
            None
        } else {
            Some(super::images::store()?)
        };
        let scratch = match (&store, &self.output) {
            (Some(store), None) => Some(
                tempfile::NamedTempFile::new_in(store.root().join("tmp"))
                    .map_err(Failure::internal)?,
            ),
            _ => None,
        };
        let out = match (&scratch, self.output) {
            (Some(tmp), _) => tmp.path().to_path_buf(),
            (None, Some(o)) => o,
            (None, None) => dir.join(format!("{}.qyvc", manifest.name)),
        };
        let parts = BundleParts {
            name: manifest.name.as_str(),
            qyv: &qyv,
            wasm: &wasm_bytes,
            os: if wasm.info.kind == WasmKind::Component {
                "wasip2"
            } else {
                "wasip1"
            },
            precompiled,
        };
        bundle::write_signed(&out, &parts, signer.as_ref())
            .map_err(|e| Failure::internal(format!("cannot write `{}`: {e}", out.display())))?;
        if let Some(store) = &store {
            let bundle = qyvol_store::bundle::Bundle::open(&out)?;
            for tag in &tags {
                store.import(&bundle, tag)?;
                ui.status(Msg::Stored(&sanitize(&qyvol_store::canonical(tag))));
            }
        }
        if scratch.is_none() {
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            ui.status(Msg::BundleWritten(
                &sanitize(&out.display().to_string()),
                &ByteSize(size).to_string(),
            ));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Runs the manifest's build command in its folder, its output streaming through.
fn shell(command: &str, dir: &Path) -> Result<(), Failure> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .status()
        .map_err(|e| Failure::internal(format!("cannot start `sh -c {command}`: {e}")))?;
    if !status.success() {
        return Err(Failure::new(
            Code::Internal,
            Msg::BuildFailed,
            format!("`{command}` exited with {status}"),
        ));
    }
    Ok(())
}

/// Builds the cargo package beside the manifest for `target`; returns its wasm.
fn cargo_build(dir: &Path, target: &str) -> Result<PathBuf, Failure> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| {
            Failure::internal(format!("cannot run `rustc`: {e}; install Rust with rustup"))
        })?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib").join(target).is_dir() {
        return Err(Failure::new(
            Code::Internal,
            Msg::BuildFailed,
            format!(
                "the Rust target `{target}` is not installed: run `rustup target add {target}`"
            ),
        ));
    }
    let manifest_path = dir.join("Cargo.toml");
    let meta = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .output()
        .map_err(|e| Failure::internal(format!("cannot run `cargo metadata`: {e}")))?;
    if !meta.status.success() {
        return Err(Failure::new(
            Code::Internal,
            Msg::BuildFailed,
            String::from_utf8_lossy(&meta.stderr).trim().to_string(),
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&meta.stdout).map_err(Failure::internal)?;
    let canonical = manifest_path.canonicalize().map_err(Failure::internal)?;
    // A command is a `bin` target; an HTTP handler (wasip2) may also be a `cdylib` library,
    // whose wasm is named after the library with `-` turned into `_`.
    let targets: Vec<&serde_json::Value> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["manifest_path"].as_str().map(PathBuf::from).as_deref() == Some(canonical.as_path())
        })
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .collect();
    let of_kind = |kind: &str| {
        targets.iter().find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == kind))
        })
    };
    let artifact = match (of_kind("bin"), of_kind("cdylib")) {
        (Some(t), _) => t["name"].as_str().map(str::to_string),
        (None, Some(t)) if target == "wasm32-wasip2" => {
            t["name"].as_str().map(|n| n.replace('-', "_"))
        }
        _ => None,
    }
    .ok_or_else(|| {
        Failure::new(
            Code::Internal,
            Msg::BuildFailed,
            format!(
                "`{}` has no binary target to build (or, for `runtime: wasi-http`, a `cdylib` library)",
                manifest_path.display()
            ),
        )
    })?;
    let target_dir = meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| Failure::internal("cargo metadata has no target_directory"))?;
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(&manifest_path)
        .status()
        .map_err(|e| Failure::internal(format!("cannot run `cargo build`: {e}")))?;
    if !status.success() {
        return Err(Failure::new(
            Code::Internal,
            Msg::BuildFailed,
            format!("`cargo build --target {target}` failed"),
        ));
    }
    Ok(target_dir
        .join(target)
        .join("release")
        .join(format!("{artifact}.wasm")))
}
