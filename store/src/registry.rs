//! Sharing images through any OCI registry (Docker Hub, GHCR, Harbor, a self-hosted CNCF
//! Distribution) with `oci-client`: push the stored image's blobs and manifest as they are
//! (the CNCF Wasm OCI artifact plus Qyvol's layers), pull with every blob checked against its
//! descriptor while it streams in, and nothing stored unless all of it checked out.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::bundle::{
    BundleError, Descriptor, ImageHead, ImageManifest, ImageSource, MEDIA_MANIFEST, MEDIA_QYV,
    MEDIA_WASM, MEDIA_WASM_CONFIG, copy_verified, sha256_digest,
};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::{Reference, Store, StoreError, canonical};

/// Layer media types other tools use for a module.
const WASM_LAYER_TYPES: [&str; 2] = [MEDIA_WASM, "application/vnd.wasm.content.layer.v1+wasm"];
const ACCEPTED_MANIFESTS: [&str; 2] = [
    MEDIA_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// An image manifest larger than this is not one of ours or anyone's.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Told about each blob moving to or from a registry, e.g. to draw progress bars.
pub trait Progress: Send + Sync {
    /// A blob starts; returns an id for the calls that follow.
    fn begin(&self, digest: &str, size: u64) -> usize;
    fn advance(&self, id: usize, bytes: u64);
    fn end(&self, id: usize);
}

/// How to reach a registry: credentials, whether plain HTTP is allowed beyond loopback, and
/// who hears about progress.
#[derive(Clone, Default)]
pub struct Remote {
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    pub progress: Option<std::sync::Arc<dyn Progress>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Remote {
    fn auth(&self) -> RegistryAuth {
        match &self.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    fn client(&self, reference: &Reference) -> Client {
        let registry = reference.resolve_registry().to_string();
        let host = registry.split(':').next().unwrap_or_default();
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        let protocol = if loopback || self.insecure {
            ClientProtocol::HttpsExcept(vec![registry])
        } else {
            ClientProtocol::Https
        };
        Client::new(ClientConfig {
            protocol,
            ..ClientConfig::default()
        })
    }
}

fn registry_error(reference: &Reference, e: impl std::fmt::Display) -> StoreError {
    let text = e.to_string();
    let hint = if is_unauthorized(&text) {
        format!(
            "; log in with `qyvol login {}`",
            reference.resolve_registry()
        )
    } else if text.contains("error sending request") || text.contains("connect") {
        "; is the registry running and reachable?".to_string()
    } else {
        String::new()
    };
    StoreError::Registry(format!("`{}`: {text}{hint}", canonical(reference)))
}

/// oci-client reports a refusal as "Not authorized", or with the registry's 401 envelope.
fn is_unauthorized(text: &str) -> bool {
    let lower = text.to_lowercase();
    text.contains("401")
        || lower.contains("unauthorized")
        || lower.contains("not authorized")
        || lower.contains("authentication required")
}

fn runtime() -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Registry(e.to_string()))
}

/// Checks credentials against `registry`: a read of a name that does not exist answers
/// "unknown" to a user the registry accepts and "unauthorized" to anyone else.
pub fn check_login(registry: &str, remote: &Remote) -> Result<(), StoreError> {
    let probe = Reference::with_tag(
        registry.to_string(),
        "qyvol/login-check".into(),
        "probe".into(),
    );
    let client = remote.client(&probe);
    runtime()?.block_on(async {
        match client
            .pull_manifest_raw(&probe, &remote.auth(), &ACCEPTED_MANIFESTS)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                if is_unauthorized(&text) {
                    Err(StoreError::Registry(format!(
                        "`{registry}` refused the credentials: check the user name and password"
                    )))
                } else if text.contains("error sending request") {
                    Err(registry_error(&probe, e))
                } else {
                    Ok(())
                }
            }
        }
    })
}

impl Store {
    /// Pushes the stored image `reference` to its registry; returns the manifest digest.
    pub fn push(&self, reference: &Reference, remote: &Remote) -> Result<String, StoreError> {
        let image = self.image(reference)?;
        let client = remote.client(reference);
        runtime()?.block_on(async {
            client
                .auth(reference, &remote.auth(), RegistryOperation::Push)
                .await
                .map_err(|e| registry_error(reference, e))?;
            for desc in std::iter::once(&image.image().config).chain(&image.image().layers) {
                let bytes = image.read_blob(desc)?;
                let id = remote
                    .progress
                    .as_ref()
                    .map(|p| p.begin(&desc.digest, desc.size));
                client
                    .push_blob(reference, bytes, &desc.digest)
                    .await
                    .map_err(|e| registry_error(reference, e))?;
                if let (Some(p), Some(id)) = (&remote.progress, id) {
                    p.advance(id, desc.size);
                    p.end(id);
                }
            }
            let content_type =
                MEDIA_MANIFEST
                    .parse()
                    .map_err(|e: http::header::InvalidHeaderValue| {
                        StoreError::Registry(e.to_string())
                    })?;
            client
                .push_manifest_raw(reference, image.image_bytes().to_vec(), content_type)
                .await
                .map_err(|e| registry_error(reference, e))?;
            Ok(image.image_digest().to_string())
        })
    }

    /// Pulls `reference` into the store and returns its manifest digest. A module pushed by
    /// another tool (no Qyvol manifest inside) gets one synthesised.
    pub fn pull(&self, reference: &Reference, remote: &Remote) -> Result<String, StoreError> {
        let client = remote.client(reference);
        let auth = remote.auth();
        let pulled = runtime()?.block_on(async {
            let (bytes, digest) = client
                .pull_manifest_raw(reference, &auth, &ACCEPTED_MANIFESTS)
                .await
                .map_err(|e| registry_error(reference, e))?;
            if bytes.len() > MAX_MANIFEST {
                return Err(StoreError::Registry(format!(
                    "the manifest of `{}` is larger than {MAX_MANIFEST} bytes",
                    canonical(reference)
                )));
            }
            let actual = sha256_digest(&bytes);
            if !digest.is_empty() && digest != actual
                || reference.digest().is_some_and(|d| d != actual.as_str())
            {
                return Err(StoreError::Registry(format!(
                    "the manifest of `{}` does not match its digest `{digest}`",
                    canonical(reference)
                )));
            }
            let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::Registry(format!(
                    "`{}` is not an image manifest Qyvol reads: {e}",
                    canonical(reference)
                ))
            })?;
            let mut blobs = HashMap::new();
            for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
                validate_digest(&desc.digest)?;
                let id = remote
                    .progress
                    .as_ref()
                    .map(|p| p.begin(&desc.digest, desc.size));
                let mut out = Bounded {
                    buf: Vec::new(),
                    limit: desc.size,
                    progress: remote.progress.clone().zip(id),
                };
                let layer = oci_client::manifest::OciDescriptor {
                    media_type: desc.media_type.clone(),
                    digest: desc.digest.to_string(),
                    size: i64::try_from(desc.size).unwrap_or(i64::MAX),
                    ..Default::default()
                };
                client
                    .pull_blob(reference, &layer, &mut out)
                    .await
                    .map_err(|e| {
                        StoreError::Registry(format!(
                            "blob `{}` of `{}`: {e}",
                            desc.digest,
                            canonical(reference)
                        ))
                    })?;
                if let Some((p, id)) = &out.progress {
                    p.end(*id);
                }
                blobs.insert(desc.digest.clone(), out.buf);
            }
            let head = ImageHead {
                shown: PathBuf::from(canonical(reference)),
                digest: actual,
                bytes: bytes.to_vec(),
                manifest,
            };
            Ok(Pulled { head, blobs })
        })?;
        // Every blob is checked again as the store copies it in; a mismatch stores nothing.
        for desc in std::iter::once(&pulled.image().config).chain(&pulled.image().layers) {
            pulled.read_blob(desc)?;
        }
        let pulled = if pulled.layer(MEDIA_QYV).is_some() {
            pulled
        } else {
            synthesise(pulled, reference)?
        };
        self.import(&pulled, reference)?;
        Ok(pulled.head.digest.to_string())
    }
}

fn validate_digest(digest: &str) -> Result<(), StoreError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(StoreError::Registry(format!(
            "unsupported digest `{digest}`: only sha256 is accepted"
        ))),
    }
}

/// A module pushed by another tool: add a Qyvol manifest naming it, under a new image manifest.
fn synthesise(mut pulled: Pulled, reference: &Reference) -> Result<Pulled, StoreError> {
    let layers = &pulled.head.manifest.layers;
    let wasm = match layers
        .iter()
        .find(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()))
    {
        Some(l) => l.clone(),
        None => match layers.as_slice() {
            // A plain image whose one filesystem layer holds the module.
            [only] if TAR_LAYER_TYPES.contains(&only.media_type.as_str()) => {
                let tar = pulled.blobs.get(&only.digest).cloned().unwrap_or_default();
                let module = wasm_from_tar(&tar, only.media_type.ends_with("gzip"), reference)?;
                let desc = Descriptor {
                    media_type: MEDIA_WASM.into(),
                    digest: sha256_digest(&module),
                    size: module.len() as u64,
                    annotations: Default::default(),
                };
                pulled.blobs.insert(desc.digest.clone(), module);
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
    pulled
        .blobs
        .insert(qyv_desc.digest.clone(), qyv.into_bytes());
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

const TAR_LAYER_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// The one `.wasm` file in an image layer (a tar, maybe gzipped), read with a bound so a
/// decompression bomb stops at the module size cap.
fn wasm_from_tar(layer: &[u8], gzip: bool, reference: &Reference) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    const MAX_MODULE: u64 = 256 * 1024 * 1024;
    let bad = |why: String| StoreError::Registry(format!("`{}`: {why}", canonical(reference)));
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut archive = tar::Archive::new(reader);
    let mut found: Option<Vec<u8>> = None;
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("its layer is not a tar: {e}")))?
    {
        let entry = entry.map_err(|e| bad(format!("its layer is not a tar: {e}")))?;
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
        let mut bytes = Vec::new();
        entry
            .take(MAX_MODULE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("cannot read its .wasm: {e}")))?;
        if bytes.len() as u64 > MAX_MODULE {
            return Err(bad("its .wasm is larger than 256 MiB".into()));
        }
        found = Some(bytes);
    }
    found.ok_or_else(|| bad("its layer holds no .wasm file".into()))
}

/// A pulled image held in memory until it is verified and stored.
struct Pulled {
    head: ImageHead,
    blobs: HashMap<qyvol_common::Digest, Vec<u8>>,
}

impl ImageSource for Pulled {
    fn head(&self) -> &ImageHead {
        &self.head
    }
    fn copy_blob(&self, desc: &Descriptor, out: &mut dyn Write) -> Result<(), BundleError> {
        let bytes = self
            .blobs
            .get(&desc.digest)
            .ok_or_else(|| BundleError::Format {
                path: self.head.shown.clone(),
                reason: format!("blob `{}` was not pulled", desc.digest),
            })?;
        copy_verified(bytes.as_slice(), desc, out, &self.head.shown)
    }
}

/// Collects a blob, refusing to grow past its descriptor's size (a registry that sends more,
/// or never stops, is cut off there).
struct Bounded {
    buf: Vec<u8>,
    limit: u64,
    progress: Option<(std::sync::Arc<dyn Progress>, usize)>,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.buf.len() as u64 + data.len() as u64 > self.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the descriptor's {} bytes",
                self.limit
            ))));
        }
        self.buf.extend_from_slice(data);
        if let Some((p, id)) = &self.progress {
            p.advance(*id, data.len() as u64);
        }
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
