//! What the cache stores and maps back, a core module or a component, and the bytes it
//! writes of one: a leaf both the compile path and the tier-up helper use.

use std::path::Path;

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::inspect::WasmKind;

/// What the cache stores and maps back: a core module or a component.
pub(crate) trait Artifact: Sized + Send + Sync + Clone + 'static {
    const KIND: WasmKind;
    fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
    /// Whether `engine` accepts `bytes` as valid: without compiling for a module; a component
    /// (wasmtime has no validation of its own for them) is compiled and dropped.
    fn validate(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<()>;
    /// The bytes wasmtime's `serialize` copies, where they are: wasmtime serializes by copying
    /// its compiled image, and the cache writes it from here instead of from a copy (yosys:
    /// 247 MB of fresh memory zeroed and filled, ~0.7 s of CPU before its first run could exit).
    /// A test holds the two equal, for when wasmtime changes.
    fn image(&self) -> &[u8];
    /// Maps precompiled code. Only called on files whose seal (or digest) was verified.
    fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self>;
}

/// The one implementation for both kinds: they differ in their type, their kind and how
/// validity is judged.
macro_rules! artifact {
    ($ty:ty, $kind:expr, $validate:expr) => {
        impl Artifact for $ty {
            const KIND: WasmKind = $kind;
            fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
                <$ty>::from_binary(engine, bytes)
            }
            fn validate(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<()> {
                $validate(engine, bytes)
            }
            fn image(&self) -> &[u8] {
                image_of(self.image_range())
            }
            #[expect(
                unsafe_code,
                reason = "the file is Qyvol's own sealed artifact, checked before mapping"
            )]
            fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
                // SAFETY: the file was written from this kind's image for an engine with this
                // fingerprint, and its length and checksum match the seal recorded with it.
                unsafe { <$ty>::deserialize_file(engine, path) }
            }
        }
    };
}

artifact!(Module, WasmKind::CoreModule, Module::validate);
// wasmtime has no validation of its own for components: one is compiled and dropped.
artifact!(
    Component,
    WasmKind::Component,
    |engine: &Engine, bytes: &[u8]| { Component::from_binary(engine, bytes).map(drop) }
);

/// The bytes of a compiled image, borrowed from the module or component whose
/// `image_range` gave `range` (the caller ties the lifetime to it).
#[expect(
    unsafe_code,
    reason = "wasmtime exposes its image only as a pointer range"
)]
fn image_of<'a>(range: std::ops::Range<*const u8>) -> &'a [u8] {
    let len = (range.end as usize).saturating_sub(range.start as usize);
    // SAFETY: the range is a module's or component's image, which wasmtime keeps mapped,
    // readable and unchanged while it lives; the callers borrow it for their own lifetime.
    unsafe { std::slice::from_raw_parts(range.start, len) }
}
