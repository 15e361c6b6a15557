//! Running a compiled bundle (`.qyvc`): its manifest and wasm come from verified blobs, and its
//! precompiled code is moved into the compile cache when it was built for this host's engine,
//! so the run maps it instead of compiling.

use std::path::Path;
use std::sync::Arc;

use qyvol_common::bundle::{ANN_ENGINE, Bundle, BundleError, ImageSource, MEDIA_QYV, MEDIA_WASM};
use qyvol_common::{LoadOptions, Manifest};
use qyvol_runtime::{Cache, Wasm};

use crate::exit::{Code, Failure};
use crate::i18n::Msg;

pub struct Opened {
    pub source: Arc<dyn ImageSource>,
    pub manifest: Manifest,
    pub wasm: Wasm,
}

/// Opens a bundle file; its manifest's mounts resolve against the bundle's folder.
pub fn open(path: &Path, options: LoadOptions, cache: Option<&Cache>) -> Result<Opened, Failure> {
    let base = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    open_image(Arc::new(Bundle::open(path)?), path, base, options, cache)
}

/// Opens an image from a bundle or the store. With a cache that already knows its wasm layer,
/// the wasm is not read now: only if it has to be compiled, verified as it is read.
pub fn open_image(
    source: Arc<dyn ImageSource>,
    shown: &Path,
    base: &Path,
    options: LoadOptions,
    cache: Option<&Cache>,
) -> Result<Opened, Failure> {
    let layer = |media: &str| {
        source.layer(media).cloned().ok_or_else(|| {
            Failure::new(
                Code::NotWasm,
                Msg::BadBundle,
                format!("`{}` has no `{media}` layer", shown.display()),
            )
        })
    };
    let qyv = source.read_blob(&layer(MEDIA_QYV)?)?;
    let manifest = Manifest::from_bundle(shown, base, &qyv, options)?;
    let wasm_layer = layer(MEDIA_WASM)?;
    let digest = wasm_layer
        .digest
        .strip_prefix("sha256:")
        .unwrap_or_default();
    let wasm = match cache.and_then(|c| c.info_get(digest)) {
        Some(info) => {
            let from = source.clone();
            let loader = move || from.read_blob(&wasm_layer).map_err(|e| e.to_string());
            Wasm::deferred(shown.to_path_buf(), info, Box::new(loader))
        }
        None => {
            let wasm = Wasm::from_bytes(shown.to_path_buf(), source.read_blob(&wasm_layer)?)?;
            if let Some(c) = cache {
                c.info_put(&wasm.info);
            }
            wasm
        }
    };
    Ok(Opened {
        source,
        manifest,
        wasm,
    })
}

/// Puts the bundle's precompiled code for this engine in `cache`, verified against its digest
/// while streaming. Nothing happens when no layer matches: the wasm is compiled instead.
pub fn import_precompiled(
    opened: &Opened,
    cache: &Cache,
    config: qyvol_runtime::EngineConfig,
) -> Result<(), Failure> {
    let fingerprint = qyvol_runtime::host_fingerprint(config)?;
    let digest = &opened.wasm.info.sha256;
    let kind = opened.wasm.info.kind;
    let Some(layer) = opened
        .source
        .precompiled()
        .into_iter()
        .find(|l| l.annotations.get(ANN_ENGINE) == Some(&fingerprint))
    else {
        return Ok(());
    };
    if cache.contains(&fingerprint, digest, kind) {
        return Ok(());
    }
    let mut failure = None;
    let stored = cache.import(&fingerprint, digest, kind, |out| {
        opened.source.copy_blob(layer, out).map_err(|e| {
            let err = std::io::Error::other(e.to_string());
            failure = Some(e);
            err
        })
    });
    match (stored, failure) {
        (_, Some(e)) => Err(e.into()),
        (Err(e), None) => {
            tracing::warn!(error = %e, "cannot store the bundle's precompiled code; compiling instead");
            Ok(())
        }
        (Ok(()), None) => Ok(()),
    }
}

/// The engine configuration a run of `manifest` will use with no overriding flags: what
/// `qyvol build` precompiles for.
pub fn expected_config(manifest: &Manifest) -> qyvol_runtime::EngineConfig {
    let policy = manifest.environment.policy();
    qyvol_runtime::EngineConfig {
        fuel: manifest.limits.fuel.is_some(),
        epoch: manifest.limits.timeout.or(policy.timeout_cap).is_some(),
    }
}

impl From<BundleError> for Failure {
    fn from(e: BundleError) -> Self {
        match &e {
            BundleError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Failure::new(Code::MissingFile, Msg::MissingFile, e)
            }
            BundleError::NotAFile(_) => Failure::new(Code::MissingFile, Msg::NotAFile, e),
            BundleError::Io { .. } | BundleError::Format { .. } | BundleError::Digest { .. } => {
                Failure::new(Code::NotWasm, Msg::BadBundle, e)
            }
        }
    }
}
