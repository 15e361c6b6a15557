//! The seed's first guest: a WASI preview 1 command that greets from inside Qyvol.
//!
//! Rebuild `examples/hello.wasm` with `scripts/build-examples.sh`.

fn main() {
    println!("👋 ¡Hola desde Qyvol WASI!");
}
