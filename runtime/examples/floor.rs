//! The floor of a run-only executable (issue 18, item 1): the least a process can do to run a
//! precompiled WASI preview 1 command — one engine, the module mapped, WASI linked, `_start`
//! called — with nothing else of Qyvol linked in (no CLI parser, node, registry, TLS). Its start
//! against `qyvol run`'s and a native hello's says how much a small executable for `run` could
//! save; bench/notes.md has the figures.
//!
//! ```sh
//! cargo build --release --example floor -p qyvol-runtime
//! F=target/release/examples/floor
//! $F examples/hello.wasm /tmp/hello.cwasm   # compile once, with this engine's settings
//! $F /tmp/hello.cwasm                        # the measured run
//! ```
#![allow(
    unsafe_code,
    reason = "mapping a precompiled module is unsafe in wasmtime's API"
)]

use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(input), output) = (args.next(), args.next()) else {
        wasmtime::bail!("usage: floor MODULE.wasm OUT.cwasm | floor OUT.cwasm");
    };
    let engine = Engine::new(&Config::new())?;
    if let Some(output) = output {
        let module = Module::from_file(&engine, &input)?;
        std::fs::write(output, module.serialize()?)?;
        return Ok(());
    }
    // SAFETY: the file was written by the `compile` form above with this engine's settings;
    // this is a measuring tool, never pointed at untrusted artifacts.
    let module = unsafe { Module::deserialize_file(&engine, &input)? };
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |t| t)?;
    let wasi = WasiCtxBuilder::new()
        .inherit_stdout()
        .inherit_stderr()
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    start.call(&mut store, ())?;
    Ok(())
}
