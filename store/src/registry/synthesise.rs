//! Modules pushed by other tools carry no Qyvol manifest: `pull` writes one naming the module,
//! under a new image manifest. The module is the image's wasm layer, or the one `.wasm` file
//! in a plain image's only filesystem layer (a tar, maybe gzipped), unpacked into the store's
//! `tmp/` with a bound so a decompression bomb stops at the module size cap.

use std::io::{Read, Write};

use crate::bundle::{Descriptor, MEDIA_QYV, MEDIA_WASM, MEDIA_WASM_CONFIG, sha256_digest};

use super::Pulled;
use crate::staging::Staged;
use crate::{Reference, Store, StoreError, canonical};

/// Layer media types other tools use for a module.
const WASM_LAYER_TYPES: [&str; 2] = [MEDIA_WASM, "application/vnd.wasm.content.layer.v1+wasm"];

const TAR_LAYER_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

const MAX_MODULE: u64 = 256 * 1024 * 1024;

/// Adds a Qyvol manifest naming the module, under a new image manifest.
pub(super) fn synthesise(
    store: &Store,
    mut pulled: Pulled,
    reference: &Reference,
) -> Result<Pulled, StoreError> {
    let layers = &pulled.head.manifest.layers;
    let wasm = match layers
        .iter()
        .find(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()))
    {
        Some(l) => l.clone(),
        None => match layers.as_slice() {
            // A plain image whose one filesystem layer holds the module.
            [only] if TAR_LAYER_TYPES.contains(&only.media_type.as_str()) => {
                let tar = pulled.open(store, &only.digest)?;
                let module =
                    wasm_from_tar(tar, only.media_type.ends_with("gzip"), reference, store)?;
                let desc = Descriptor {
                    media_type: MEDIA_WASM.into(),
                    digest: module.digest.clone(),
                    size: module.size,
                    annotations: Default::default(),
                };
                pulled.staged.insert(desc.digest.clone(), module);
                desc
            }
            _ => {
                return Err(StoreError::Registry(format!(
                    "`{}` has no wasm layer ({}, or one filesystem layer holding a .wasm)",
                    canonical(reference),
                    WASM_LAYER_TYPES.join(", ")
                )));
            }
        },
    };
    let name: String = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or("module")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let qyv = format!(
        "name: {}\nentrypoint: module.wasm\nruntime: wasi\n",
        name.trim_matches('-')
    );
    let qyv_desc = Descriptor {
        media_type: MEDIA_QYV.into(),
        digest: sha256_digest(qyv.as_bytes()),
        size: qyv.len() as u64,
        annotations: Default::default(),
    };
    let mut staging = store.stage(qyv_desc.size)?;
    staging
        .write_all(qyv.as_bytes())
        .and_then(|()| staging.finish())
        .map(|staged| pulled.staged.insert(qyv_desc.digest.clone(), staged))
        .map_err(|e| tmp_error(store, e))?;
    let mut wasm_desc = wasm;
    wasm_desc.media_type = MEDIA_WASM.into();
    let head = &mut pulled.head;
    head.manifest.layers = vec![wasm_desc, qyv_desc];
    head.manifest.config.media_type = MEDIA_WASM_CONFIG.into();
    head.bytes = serde_json::to_vec_pretty(&head.manifest)
        .map_err(|e| StoreError::Registry(e.to_string()))?;
    head.digest = sha256_digest(&head.bytes);
    Ok(pulled)
}

fn tmp_error(store: &Store, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: store.root().join("tmp"),
        source,
    }
}

/// The one `.wasm` file in an image layer (a tar, maybe gzipped), staged in the store.
fn wasm_from_tar(
    layer: impl Read,
    gzip: bool,
    reference: &Reference,
    store: &Store,
) -> Result<Staged, StoreError> {
    let bad = |why: String| StoreError::Registry(format!("`{}`: {why}", canonical(reference)));
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut archive = tar::Archive::new(reader);
    let mut found: Option<Staged> = None;
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("its layer is not a tar: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("its layer is not a tar: {e}")))?;
        let is_wasm = entry.header().entry_type().is_file()
            && entry
                .path()
                .is_ok_and(|p| p.extension().is_some_and(|x| x == "wasm"));
        if !is_wasm {
            continue;
        }
        if found.is_some() {
            return Err(bad("its layer holds more than one .wasm file".into()));
        }
        // The entry yields exactly the size its header gives, so that is checked first.
        if entry.size() > MAX_MODULE {
            return Err(bad("its .wasm is larger than 256 MiB".into()));
        }
        let mut staging = store.stage(MAX_MODULE)?;
        std::io::copy(&mut entry, &mut staging)
            .map_err(|e| bad(format!("cannot read its .wasm: {e}")))?;
        found = Some(staging.finish().map_err(|e| tmp_error(store, e))?);
    }
    found.ok_or_else(|| bad("its layer holds no .wasm file".into()))
}
