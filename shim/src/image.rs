//! The Wasm OCI artifact form: its module (and the image's own manifest) read from containerd's
//! content store, since containerd unpacks no filesystem for it. An ordinary image (the module
//! at `/app.wasm` of its filesystem) has none of these layers and is read from the rootfs.

use anyhow::{Context as _, bail};
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use containerd_client::tonic::Request;
use containerd_client::tonic::transport::Channel;
use qyvol_store::bundle::{ImageManifest, MEDIA_QYV, MEDIA_WASM};
use serde::{Deserialize, Serialize};

/// runwasi's layer type for components (and modules).
pub const MEDIA_COMPONENT: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

/// The layers the shim takes (as runwasi's shims do, by type; others are ignored, Qyvol's
/// precompiled code among them).
pub const LAYER_TYPES: [&str; 3] = [MEDIA_WASM, MEDIA_COMPONENT, MEDIA_QYV];

/// A manifest, an index, a config or a `.qyv`: small text.
pub(crate) const MAX_TEXT: u64 = 4 << 20;

/// One layer the shim runs, with its media type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Layer {
    pub media_type: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The module and manifest layers of container `id`'s image when it is a Wasm OCI artifact
/// (its config's architecture is `wasm`); none for an ordinary image or a container without
/// one (`ctr run --rootfs`). An image whose metadata cannot be read is taken as ordinary, as
/// runwasi does (its filesystem is still there); an artifact whose layers are wrong is an error.
pub async fn wasm_layers(address: &str, namespace: &str, id: &str) -> anyhow::Result<Vec<Layer>> {
    let store = match Store::connect(address, namespace).await {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot reach containerd for {id}'s image, using its filesystem: {e:#}");
            return Ok(Vec::new());
        }
    };
    let manifest = match store.manifest(id).await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => {
            log::warn!("cannot read {id}'s image, using its filesystem: {e:#}");
            return Ok(Vec::new());
        }
    };
    let mut layers = Vec::new();
    let (mut modules, mut manifests) = (0, 0);
    for d in manifest
        .layers
        .iter()
        .filter(|d| LAYER_TYPES.contains(&d.media_type.as_str()))
    {
        let qyv = d.media_type == MEDIA_QYV;
        if qyv {
            manifests += 1;
        } else {
            modules += 1;
        }
        // Checked before reading: a layer listed many times would be read as many times.
        if modules > 1 {
            bail!("the image has more than one module layer");
        }
        if manifests > 1 {
            bail!("the image has more than one manifest layer ({MEDIA_QYV})");
        }
        let cap = if qyv { MAX_TEXT } else { crate::MAX_MODULE };
        layers.push(Layer {
            media_type: d.media_type.clone(),
            bytes: store.read(d.digest.as_ref(), cap).await?,
        });
    }
    if modules == 0 {
        bail!("the Wasm image has no module layer (application/wasm)");
    }
    Ok(layers)
}

struct Store {
    channel: Channel,
    namespace: String,
}

impl Store {
    async fn connect(address: &str, namespace: &str) -> anyhow::Result<Self> {
        Ok(Self {
            channel: containerd_client::connect(address).await?,
            namespace: namespace.to_string(),
        })
    }

    fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("containerd-namespace", self.namespace.parse()?);
        Ok(request)
    }

    /// The image manifest of container `id`'s image if it is a Wasm artifact.
    async fn manifest(&self, id: &str) -> anyhow::Result<Option<ImageManifest>> {
        let container = ContainersClient::new(self.channel.clone())
            .get(self.request(GetContainerRequest { id: id.into() })?)
            .await?
            .into_inner()
            .container
            .context("containerd has no such container")?;
        if container.image.is_empty() {
            return Ok(None);
        }
        let target = ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest {
                name: container.image.clone(),
            })?)
            .await?
            .into_inner()
            .image
            .and_then(|i| i.target)
            .with_context(|| format!("containerd has no image {}", container.image))?;
        let mut manifest = self.read(&target.digest, MAX_TEXT).await?;
        // An index: its Wasm manifest.
        let index: serde_json::Value = serde_json::from_slice(&manifest)?;
        if let Some(list) = index.get("manifests").and_then(|m| m.as_array()) {
            let Some(digest) = list
                .iter()
                .find(|m| {
                    m.pointer("/platform/architecture").and_then(|a| a.as_str()) == Some("wasm")
                })
                .and_then(|m| m.get("digest"))
                .and_then(|d| d.as_str())
            else {
                return Ok(None);
            };
            manifest = self.read(digest, MAX_TEXT).await?;
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&manifest).context("the image's manifest")?;
        let config: serde_json::Value =
            serde_json::from_slice(&self.read(manifest.config.digest.as_ref(), MAX_TEXT).await?)
                .context("the image's config")?;
        let wasm = config.get("architecture").and_then(|a| a.as_str()) == Some("wasm");
        Ok(wasm.then_some(manifest))
    }

    /// A blob of the content store, refused past `cap` bytes.
    async fn read(&self, digest: &str, cap: u64) -> anyhow::Result<Vec<u8>> {
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.request(ReadContentRequest {
                digest: digest.into(),
                offset: 0,
                size: 0,
            })?)
            .await?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend_from_slice(&chunk.data);
            if bytes.len() as u64 > cap {
                bail!("{digest} is larger than {}", qyvol_common::ByteSize(cap));
            }
        }
        Ok(bytes)
    }
}
