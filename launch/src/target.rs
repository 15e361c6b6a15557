//! Opening what the operator named: an image reference (from the local store, pulled when
//! missing, as `docker run` does), a `.qyvc` bundle, a bare `.wasm`, or a `.qyv` manifest
//! (whose entrypoint may itself be a bundle or a reference). Then preparing it: grants merged,
//! the module loaded, trusted precompiled code chosen.

use std::path::Path;
use std::sync::Arc;

use qyvol_common::{
    Digest, Home, LoadOptions, MANIFEST_MAX_BYTES, Manifest, Packaged, RuntimeKind,
};
use qyvol_runtime::{Cache, DenialSink, EngineConfig, RunRequest, RuntimeError, Wasm, WasmKind};
use qyvol_store::bundle::{Bundle, Descriptor, ImageSource, MEDIA_QYV, MEDIA_WASM};
use qyvol_store::{Reference, Store, StoreError};

use crate::runner::Runner;
use crate::trust::{self, CodeTrust};
use crate::{LaunchError, Operator, grants};

/// Fetches an image that is not in the local store into it (e.g. pulls it with progress bars).
pub type Pull<'a, E> = &'a mut dyn FnMut(&Reference) -> Result<(), E>;

/// A target, opened: its manifest and, when the module comes packaged, the image holding it.
pub struct Opened {
    /// The operator's manifest, or the bundle's or image's own (whose grants are requests).
    pub manifest: Manifest,
    pub image: Option<Image>,
}

/// A bundle or stored image whose blobs were all verified against their digests.
pub struct Image {
    pub source: Arc<dyn ImageSource>,
    /// Its module, inspected (read only if it must be compiled, when the cache knows it).
    pub wasm: Wasm,
    /// Signed by keys of a trust policy rule that allows their precompiled code.
    pub vouched: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("manifest", &self.manifest)
            .field("image", &self.image.as_ref().map(|i| i.source.location()))
            .finish()
    }
}

/// A target ready to run: what runs, with what, from which code.
#[derive(Debug)]
pub struct Launch {
    /// The manifest; for a bare `.wasm`, its `runtime` says what the module is (a component
    /// exporting `wasi:http/incoming-handler` or 0.3's `wasi:http/handler` is a handler,
    /// anything else a command).
    pub manifest: Manifest,
    pub wasm: Wasm,
    pub request: RunRequest,
    /// The engine the module's code is for, judged precompiled code included: whoever runs it
    /// makes its engine from this.
    pub engine: EngineConfig,
    /// For a bundle or image: what became of its precompiled code.
    pub code: Option<CodeTrust>,
}

/// Opens `file`; `pull` fetches a referenced image missing from the store.
pub fn open<E: From<LaunchError>>(
    file: &Path,
    op: &Operator,
    cache: Option<&Cache>,
    pull: Pull<'_, E>,
) -> Result<Opened, E> {
    let options = LoadOptions {
        allow_outside: op.allow_outside,
        ..LoadOptions::default()
    };
    let packaged =
        |(source, vouched): (Arc<dyn ImageSource>, bool)| -> Result<Opened, LaunchError> {
            let image = open_image(source, vouched, cache, op.max_module_size.0)?;
            Ok(Opened {
                manifest: own_manifest(image.source.as_ref())?,
                image: Some(image),
            })
        };
    if let Some(reference) = image_reference(file) {
        return Ok(packaged(stored_image(&reference, pull)?)?);
    }
    if qyvol_common::is_bundle_file(file) {
        return Ok(packaged(admitted_bundle(file, op)?)?);
    }
    let manifest = if is_wasm_file(file) {
        Manifest::for_wasm(file).map_err(LaunchError::from)?
    } else {
        Manifest::load(file, options).map_err(LaunchError::from)?
    };
    let image = match &manifest.packaged {
        None => None,
        Some(Packaged::Bundle(path)) => {
            let (source, vouched) = admitted_bundle(path, op)?;
            Some(open_image(source, vouched, cache, op.max_module_size.0)?)
        }
        Some(Packaged::Image(text)) => {
            let reference = qyvol_store::parse_reference(text).map_err(LaunchError::from)?;
            let (source, vouched) = stored_image(&reference, pull)?;
            Some(open_image(source, vouched, cache, op.max_module_size.0)?)
        }
    };
    Ok(Opened { manifest, image })
}

/// Grants merged, module loaded, engine decided for `runner`, precompiled code judged for that
/// engine: everything but compiling and running.
pub fn prepare(
    opened: Opened,
    op: &Operator,
    cache: Option<&Cache>,
    args: Vec<String>,
    denials: DenialSink,
    runner: Runner,
) -> Result<Launch, LaunchError> {
    let Opened {
        mut manifest,
        image,
    } = opened;
    let request = grants::request(&manifest, op, args, denials)?;
    let Some(Image {
        source,
        mut wasm,
        vouched,
    }) = image
    else {
        let wasm = qyvol_runtime::load(&manifest.entrypoint, op.max_module_size.0, cache)?;
        if manifest.source.is_none() {
            manifest.runtime = bare_kind(&wasm);
        }
        let engine = EngineConfig::decide(
            runner.purpose(manifest.runtime),
            &request.limits,
            wasm.info.wasi,
        );
        return Ok(Launch {
            manifest,
            wasm,
            request,
            engine,
            code: None,
        });
    };
    let engine = EngineConfig::decide(
        runner.purpose(manifest.runtime),
        &request.limits,
        wasm.info.wasi,
    );
    let precompiled = op.precompiled.for_image(vouched);
    let code = match cache {
        Some(cache) => trust::apply(source.as_ref(), &mut wasm, cache, engine, precompiled)?,
        // Without a cache nothing is remembered or stored: the layer is not used.
        None => CodeTrust::Ignored,
    };
    Ok(Launch {
        manifest,
        wasm,
        request,
        engine,
        code: Some(code),
    })
}

/// What a bare `.wasm` is, as `wasmtime serve` and `wasmtime run` tell: a component exporting
/// `wasi:http/incoming-handler` is a handler, anything else a command.
fn bare_kind(wasm: &Wasm) -> RuntimeKind {
    let handler = wasm.info.kind == WasmKind::Component
        && wasm.info.exports.iter().any(|e| is_http_handler(&e.name));
    if handler {
        RuntimeKind::WasiHttp
    } else {
        RuntimeKind::Wasi
    }
}

/// FILE names an image when no such file exists and it reads as a reference (`name:tag`).
fn image_reference(file: &Path) -> Option<Reference> {
    if file.symlink_metadata().is_ok() {
        return None;
    }
    let text = file.to_str()?;
    (text.contains(':') || text.contains('@'))
        .then(|| qyvol_store::parse_reference(text).ok())
        .flatten()
}

/// The bundle at `path`, once the operator's trust policy admits it; whether its signers'
/// precompiled code may run.
fn admitted_bundle(
    path: &Path,
    op: &Operator,
) -> Result<(Arc<dyn ImageSource>, bool), LaunchError> {
    let bundle = Bundle::open(path).map_err(LaunchError::from)?;
    let vouched = match &op.policy {
        None => false,
        Some(policy) => {
            qyvol_store::trust::policy::admit_bundle(policy, &bundle).map_err(LaunchError::from)?
        }
    };
    Ok((Arc::new(bundle), vouched))
}

/// The image `reference` from the local store, fetched by `pull` first if it is not there,
/// once the store's trust policy admits it; whether its signers' precompiled code may run.
fn stored_image<E: From<LaunchError>>(
    reference: &Reference,
    pull: Pull<'_, E>,
) -> Result<(Arc<dyn ImageSource>, bool), E> {
    let home = Home::open().map_err(LaunchError::from)?;
    let store = Store::open(&home.store()).map_err(LaunchError::from)?;
    let image = match store.image(reference) {
        Err(StoreError::NotFound(_)) => {
            pull(reference)?;
            store.image(reference).map_err(LaunchError::from)?
        }
        other => other.map_err(LaunchError::from)?,
    };
    // The trust policy, for an image stored before it or built here as much as a pulled one.
    let vouched = store.admit(reference, &image).map_err(LaunchError::from)?;
    Ok((Arc::new(image), vouched))
}

/// The layer of a media type, or an error naming what the image lacks.
fn layer(source: &dyn ImageSource, media: &str) -> Result<Descriptor, LaunchError> {
    source.layer(media).cloned().ok_or_else(|| {
        LaunchError::NotRunnable(format!(
            "`{}` has no `{media}` layer: it is not a Qyvol image",
            source.location().display()
        ))
    })
}

/// A bundle's or image's own manifest, its mounts and network turned into requests.
fn own_manifest(source: &dyn ImageSource) -> Result<Manifest, LaunchError> {
    let desc = layer(source, MEDIA_QYV)?;
    if desc.size > MANIFEST_MAX_BYTES {
        return Err(LaunchError::NotRunnable(format!(
            "`{}`: its manifest layer is {} bytes, over the {MANIFEST_MAX_BYTES}-byte cap on manifests",
            source.location().display(),
            desc.size
        )));
    }
    let qyv = source.read_blob(&desc)?;
    Ok(Manifest::from_bundle(source.location(), &qyv)?)
}

/// Reads an image's module. Every blob is checked against its digest first, once per
/// unchanged file.
fn open_image(
    source: Arc<dyn ImageSource>,
    vouched: bool,
    cache: Option<&Cache>,
    max_module_size: u64,
) -> Result<Image, LaunchError> {
    let shown = source.location().to_path_buf();
    let wasm_layer = layer(source.as_ref(), MEDIA_WASM)?;
    // Before anything is read: a layer's size is what the image claims, and reading checks it.
    if wasm_layer.size > max_module_size {
        return Err(RuntimeError::TooLarge {
            path: shown,
            size: wasm_layer.size,
            max: max_module_size,
        }
        .into());
    }
    let wasm = match cache.and_then(|c| c.info_get(wasm_layer.digest.hex())) {
        Some(info) => {
            verify_once(source.as_ref(), cache, None)?;
            let from = source.clone();
            let loader = move || from.read_blob(&wasm_layer).map_err(|e| e.to_string());
            Wasm::deferred(shown, info, Box::new(loader))
        }
        None => {
            // Read (and so verified) now: the check of the other blobs skips it.
            let wasm = Wasm::from_bytes(shown, source.read_blob(&wasm_layer)?)?;
            verify_once(source.as_ref(), cache, Some(&wasm_layer.digest))?;
            if let Some(c) = cache {
                c.info_put(&wasm.info);
            }
            wasm
        }
    };
    Ok(Image {
        source,
        wasm,
        vouched,
    })
}

/// Checks every blob of the image against its digest (but `checked`, just read through its
/// check), unless this cache already did so for the same files unchanged (size, mtime, ctime,
/// inode): a damaged bundle is reported even when the cache could serve its code, and a warm
/// run still reads nothing.
fn verify_once(
    source: &dyn ImageSource,
    cache: Option<&Cache>,
    checked: Option<&Digest>,
) -> Result<(), LaunchError> {
    let files = source.files();
    let digest = source.image_digest().clone();
    if cache.is_some_and(|c| c.verified(&digest, &files)) {
        return Ok(());
    }
    let image = source.image();
    let mut seen: std::collections::HashSet<&Digest> = checked.into_iter().collect();
    for desc in std::iter::once(&image.config).chain(&image.layers) {
        // A layer listed many times is one blob: checked once.
        if seen.insert(&desc.digest) {
            source.copy_blob(desc, &mut std::io::sink())?;
        }
    }
    if let Some(c) = cache {
        c.record_verified(&digest, &files);
    }
    Ok(())
}

/// Whether an export is the `wasi:http/incoming-handler` interface, at any version: the name
/// up to its `@version` exactly (`…/incoming-handlerx` is another interface).
/// `wasi:http/incoming-handler` (WASI 0.2) or `wasi:http/handler` (0.3's, in the
/// `wasi:http/service` world), any version.
fn is_http_handler(export: &str) -> bool {
    matches!(
        export.split('@').next(),
        Some("wasi:http/incoming-handler" | "wasi:http/handler")
    )
}

/// Whether `path` is a regular file starting with the wasm magic bytes (a module or component,
/// whatever its name).
pub fn is_wasm_file(path: &Path) -> bool {
    qyvol_common::read_head::<4>(path).is_some_and(|magic| &magic == qyvol_common::WASM_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::is_http_handler;

    #[test]
    fn only_an_http_handler_interface_makes_a_bare_component_a_handler() {
        assert!(is_http_handler("wasi:http/incoming-handler@0.2.6"));
        assert!(is_http_handler("wasi:http/incoming-handler"));
        assert!(!is_http_handler("wasi:http/incoming-handlerx"));
        assert!(!is_http_handler("wasi:http/incoming-handlerx@0.2.6"));
        assert!(is_http_handler("wasi:http/handler@0.3.0"));
        assert!(!is_http_handler("wasi:http/handlers@0.3.0"));
        assert!(!is_http_handler("wasi:http/outgoing-handler@0.2.6"));
        assert!(!is_http_handler("wasi:cli/run@0.2.6"));
    }
}
