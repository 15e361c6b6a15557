//! The module a container runs and the image's own manifest, read from the container's files
//! or borrowed from the artifact's layers.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, bail};
use qyvol_store::bundle::MEDIA_QYV;

use crate::MAX_MODULE;
use crate::image::{self, Layer};

/// A module and, when the image has one, its own manifest: read from the container's files,
/// or borrowed from the artifact's layers (a second copy would count against the pod's memory).
pub struct Module<'a> {
    pub wasm: Cow<'a, [u8]>,
    pub qyv: Option<Cow<'a, [u8]>>,
}

impl<'a> Module<'a> {
    /// The module at `path` in the container (`/app.wasm`), and `app.qyv` beside it if there.
    /// The manifest must be a file of the image, not a symbolic link: one could point it at
    /// what the runtime put in the container (`/proc`, a volume, a token) and its parse error
    /// would quote a line of it into the pod's log. (A module behind a link is only ever read
    /// as WebAssembly, and nothing of a file that is not is shown.)
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let wasm: Cow<'a, [u8]> = Cow::Owned(qyvol_common::read_regular(path, MAX_MODULE)?);
        if !wasm.starts_with(b"\0asm") {
            bail!(
                "`{}` is not WebAssembly (it does not start with `\\0asm`): the qyvol runtime \
                 runs WebAssembly modules and components only",
                path.display()
            );
        }
        let qyv = path.with_extension("qyv");
        let kind = std::fs::symlink_metadata(&qyv).map(|m| m.file_type());
        if kind.as_ref().is_ok_and(std::fs::FileType::is_symlink) {
            bail!(
                "`{}` is a symbolic link: the image's manifest must be a file of the image",
                qyv.display()
            );
        }
        let qyv = kind
            .is_ok_and(|k| k.is_file())
            .then(|| qyvol_common::read_regular(&qyv, image::MAX_TEXT))
            .transpose()?
            .map(Cow::Owned);
        Ok(Self { wasm, qyv })
    }

    /// The module among an image's layers, and its manifest if any.
    pub fn from_layers(layers: &'a [Layer]) -> anyhow::Result<Self> {
        let mut wasm = None;
        let mut qyv = None;
        for layer in layers {
            let bytes = Cow::Borrowed(layer.bytes.as_slice());
            if layer.media_type == MEDIA_QYV {
                qyv = Some(bytes);
            } else if wasm.replace(bytes).is_some() {
                bail!("the image has more than one module layer");
            }
        }
        let wasm = wasm.context("the image has no module layer")?;
        if !wasm.starts_with(b"\0asm") {
            bail!("the image's module layer is not WebAssembly (it does not start with `\\0asm`)");
        }
        Ok(Self { wasm, qyv })
    }
}
