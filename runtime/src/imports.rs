//! What a module imports that no one provides, named with what would provide it: checked
//! before instantiation so the error names the import, never "invalid module".

use wasmtime::{Linker, Module, Store};

use crate::RuntimeError;

/// Refuses imports no one provides before instantiation, naming the import and what would.
pub(crate) fn check_core_imports<T>(
    module: &Module,
    linker: &Linker<T>,
    store: &mut Store<T>,
) -> Result<(), RuntimeError> {
    for import in module.imports() {
        if linker
            .get(&mut *store, import.module(), import.name())
            .is_ok()
        {
            continue;
        }
        let hint = match import.module() {
            "wasi_snapshot_preview1" => "no such WASI preview 1 function exists; rebuild the module with a current toolchain".to_string(),
            "wasi_unstable" => "the module targets the retired `wasi_unstable` snapshot: rebuild it for `wasm32-wasip1`".to_string(),
            "env" => "`env` imports are left for a JavaScript or embedder glue: build for `wasm32-wasip1` with every symbol defined".to_string(),
            m if m.starts_with("wasi:") => "WASI 0.2 interfaces are for components: build for `wasm32-wasip2`".to_string(),
            m => format!("core modules get WASI preview 1 (`wasi_snapshot_preview1`) only; nothing provides `{m}`"),
        };
        return Err(RuntimeError::UnsupportedImport {
            import: format!("{}::{}", import.module(), import.name()),
            hint,
        });
    }
    Ok(())
}

/// An import the linker could not satisfy, named from wasmtime's message (for commands and
/// HTTP handlers alike: both get all of WASI 0.2 and `wasi:http`).
pub(crate) fn unsupported_component_import(message: &str) -> RuntimeError {
    let import = message.split('`').nth(1).unwrap_or("?").to_string();
    let hint = if import.starts_with("wasi:") {
        format!(
            "Qyvol provides WASI 0.2 (`wasi:cli`, `wasi:filesystem`, `wasi:clocks`, `wasi:random`, `wasi:io`, `wasi:sockets`, `wasi:http`) but not this interface or version ({message})"
        )
    } else {
        format!("components get WASI 0.2 interfaces only ({message})")
    };
    RuntimeError::UnsupportedImport { import, hint }
}
