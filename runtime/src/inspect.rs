//! Reads what a wasm binary is (core module or component), which WASI it speaks, and what it
//! imports and exports, with `wasmparser`: no compilation, so it is cheap and safe on any input.
//! It reads the binary's structure only; whether the code is valid is wasmtime's decision, made
//! by the engine that will run it (`compile::validate`, and every compilation), so the two can
//! never disagree about a feature.

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WasmKind {
    CoreModule,
    Component,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WasiGeneration {
    /// `wasi_snapshot_preview1` imports.
    Preview1,
    /// The pre-1.0 `wasi_unstable` snapshot (preview 0).
    Preview0,
    /// WASI 0.2 interfaces (`wasi:cli/...@0.2.x`).
    #[serde(rename = "0.2")]
    P2,
    /// WASI 0.3 interfaces (`wasi:cli/run@0.3.x`, `wasi:http/handler@0.3.x`, ...): async, with
    /// native `stream` and `future`. A component that also speaks 0.2 runs as 0.3.
    #[serde(rename = "0.3")]
    P3,
    /// No WASI imports at all.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The module (`wasi_snapshot_preview1`) for core modules; empty for components.
    pub module: String,
    pub name: String,
    pub kind: String,
}

impl std::fmt::Display for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.module.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}::{}", self.module, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub kind: WasmKind,
    pub wasi: WasiGeneration,
    pub size: u64,
    pub sha256: String,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
}

impl ModuleInfo {
    /// The standard worlds a component's exports make it: `wasi:cli/command` (it exports
    /// `wasi:cli/run`), `wasi:http/proxy` (0.2's `incoming-handler`), `wasi:http/service`
    /// (0.3's `handler`), each with the version of the interface that makes it.
    pub fn worlds(&self) -> Vec<String> {
        let world = |export: &str| {
            let (name, version) = export.split_once('@').unwrap_or((export, ""));
            let world = match name {
                "wasi:cli/run" => "wasi:cli/command",
                "wasi:http/incoming-handler" => "wasi:http/proxy",
                "wasi:http/handler" => "wasi:http/service",
                _ => return None,
            };
            Some(match version {
                "" => world.to_string(),
                v => format!("{world}@{v}"),
            })
        };
        if self.kind != WasmKind::Component {
            return Vec::new();
        }
        self.exports.iter().filter_map(|e| world(&e.name)).collect()
    }
}

/// What a module's imports let it ask the host for: a grant only matters for what it can ask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uses {
    /// Files and folders (WASI `path_open`…, `wasi:filesystem`).
    pub filesystem: bool,
    /// Sockets: connecting, listening, name lookups (`sock_*`, `wasi:sockets`).
    pub sockets: bool,
    /// Outgoing HTTP requests (`wasi:http/outgoing-handler`).
    pub http_outgoing: bool,
    /// Environment variables (`environ_get`, `wasi:cli/environment`).
    pub environment: bool,
}

impl ModuleInfo {
    /// What the imports reach, by WASI interface (preview 1 functions, 0.2 instances).
    pub fn uses(&self) -> Uses {
        let mut uses = Uses::default();
        for i in &self.imports {
            let (module, name) = (i.module.as_str(), i.name.as_str());
            if module.starts_with("wasi_") {
                uses.filesystem |= name.starts_with("path_") || name == "fd_readdir";
                uses.sockets |= name.starts_with("sock_");
                uses.environment |= name.starts_with("environ_");
            } else {
                uses.filesystem |= name.starts_with("wasi:filesystem/");
                uses.sockets |= name.starts_with("wasi:sockets/");
                // 0.2's `outgoing-handler`, 0.3's `client`.
                uses.http_outgoing |= name.starts_with("wasi:http/outgoing-handler")
                    || name.starts_with("wasi:http/client@");
                uses.environment |= name.starts_with("wasi:cli/environment");
            }
        }
        uses
    }
}

/// Describes `bytes` from their structure (not their validity). The error is a one-line reason.
pub fn inspect(bytes: &[u8]) -> Result<ModuleInfo, String> {
    let kind = if Parser::is_component(bytes) {
        WasmKind::Component
    } else if Parser::is_core_wasm(bytes) {
        WasmKind::CoreModule
    } else {
        return Err(
            "it does not start with a WebAssembly header (`\\0asm` and a known version)".into(),
        );
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outermost module or component: nested ones are its implementation.
            Payload::ImportSection(reader) if depth == 1 => {
                for imp in reader.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        module: imp.module.into(),
                        name: imp.name.into(),
                        kind: format!("{:?}", imp.ty)
                            .split('(')
                            .next()
                            .unwrap_or("")
                            .to_lowercase(),
                    });
                }
            }
            Payload::ExportSection(reader) if depth == 1 => {
                for exp in reader {
                    let exp = exp.map_err(|e| e.to_string())?;
                    exports.push(Export {
                        name: exp.name.into(),
                        kind: format!("{:?}", exp.kind).to_lowercase(),
                    });
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for imp in reader {
                    let imp = imp.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        module: String::new(),
                        name: imp.name.name.into(),
                        kind: component_kind(&imp.ty),
                    });
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for exp in reader {
                    let exp = exp.map_err(|e| e.to_string())?;
                    exports.push(Export {
                        name: exp.name.name.into(),
                        kind: format!("{:?}", exp.kind).to_lowercase(),
                    });
                }
            }
            _ => {}
        }
    }

    let wasi = if imports.iter().any(|i| i.module == "wasi_snapshot_preview1") {
        WasiGeneration::Preview1
    } else if imports.iter().any(|i| i.module == "wasi_unstable") {
        WasiGeneration::Preview0
    } else if imports
        .iter()
        .map(|i| &i.name)
        .chain(exports.iter().map(|e| &e.name))
        .any(|name| name.starts_with("wasi:") && name.contains("@0.3."))
    {
        WasiGeneration::P3
    } else if imports.iter().any(|i| i.name.starts_with("wasi:")) {
        WasiGeneration::P2
    } else {
        WasiGeneration::None
    };
    Ok(ModuleInfo {
        kind,
        wasi,
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        imports,
        exports,
    })
}

fn component_kind(ty: &wasmparser::ComponentTypeRef) -> String {
    use wasmparser::ComponentTypeRef as T;
    match ty {
        T::Module(_) => "module",
        T::Func(_) => "func",
        T::Value(_) => "value",
        T::Type(_) => "type",
        T::Instance(_) => "instance",
        T::Component(_) => "component",
    }
    .into()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_module_with_wasi_imports() {
        let wasm = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                (memory (export "memory") 1) (func (export "_start")))"#,
        )
        .expect("valid wat");
        let info = inspect(&wasm).expect("inspects");
        assert_eq!(info.kind, WasmKind::CoreModule);
        assert_eq!(info.wasi, WasiGeneration::Preview1);
        assert_eq!(
            info.imports[0].to_string(),
            "wasi_snapshot_preview1::proc_exit"
        );
        assert_eq!(info.imports[0].kind, "func");
        let names: Vec<_> = info.exports.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["memory", "_start"]);
    }

    #[test]
    fn outgoing_http_is_0_2s_outgoing_handler_or_0_3s_client() {
        let component = |import: &str| ModuleInfo {
            kind: WasmKind::Component,
            wasi: WasiGeneration::P3,
            size: 0,
            sha256: String::new(),
            imports: vec![Import {
                module: String::new(),
                name: import.into(),
                kind: "instance".into(),
            }],
            exports: Vec::new(),
        };
        assert!(component("wasi:http/client@0.3.0").uses().http_outgoing);
        assert!(
            component("wasi:http/outgoing-handler@0.2.6")
                .uses()
                .http_outgoing
        );
        assert!(!component("wasi:http/types@0.3.0").uses().http_outgoing);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\0asm",
            b"\0asm\x01\0\0\0\x01\xff\xff",
            b"hello world",
        ] {
            assert!(inspect(bytes).is_err(), "{bytes:?}");
        }
    }
}
