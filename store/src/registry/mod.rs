//! Sharing images through any OCI registry (Docker Hub, GHCR, Harbor, a self-hosted CNCF
//! Distribution): push the stored image's blobs and manifest as they are (the CNCF Wasm OCI
//! artifact plus Qyvol's layers) with `oci-client`; pull through [`fetch`], which bounds every
//! read in size and time, with every blob streamed into the store's `tmp/` and checked against
//! its descriptor as it arrives, and nothing stored unless all of it checked out.

mod failure;
mod fetch;
mod pace;
mod signatures;
mod synthesise;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::bundle::{
    Descriptor, ImageHead, ImageManifest, ImageSource, MEDIA_MANIFEST, MEDIA_QYV, sha256_digest,
};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use failure::FetchError;
pub use fetch::DEFAULT_TIMEOUT;
use fetch::Session;
pub use signatures::{SignatureRecord, repository};

use crate::credentials::Credentials;
use crate::staging::Staged;
use crate::{Reference, Store, StoreError, canonical};

const ACCEPTED_MANIFESTS: [&str; 2] = [
    MEDIA_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Told about each blob moving to or from a registry, e.g. to draw progress bars.
pub trait Progress: Send + Sync {
    /// A blob starts; returns an id for the calls that follow.
    fn begin(&self, digest: &str, size: u64) -> usize;
    fn advance(&self, id: usize, bytes: u64);
    fn end(&self, id: usize);
}

/// How to reach a registry: credentials, whether plain HTTP is allowed beyond loopback, how
/// long to wait on it, and who hears about progress.
#[derive(Clone)]
pub struct Remote {
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    /// The whole of a request that is not a blob, and the window in which a blob must move
    /// 1 KiB ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    pub progress: Option<std::sync::Arc<dyn Progress>>,
}

impl Default for Remote {
    fn default() -> Self {
        Self {
            credentials: None,
            insecure: false,
            timeout: DEFAULT_TIMEOUT,
            progress: None,
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("insecure", &self.insecure)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The variable that sets how long to wait on a registry (a duration like `30s`).
pub const TIMEOUT_VAR: &str = "QYVOL_REGISTRY_TIMEOUT";

/// How long to wait on a registry: [`TIMEOUT_VAR`], or [`DEFAULT_TIMEOUT`]; the error says
/// what is wrong with the variable.
pub fn timeout_from_env() -> Result<Duration, String> {
    match std::env::var(TIMEOUT_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "{TIMEOUT_VAR} is not text: write a duration like `30s`"
        )),
        Ok(text) => text
            .parse::<qyvol_common::DurationSpec>()
            .map(|d| d.0)
            .map_err(|e| format!("{TIMEOUT_VAR}: {e}")),
    }
}

impl Remote {
    /// How every command and the node reach `reference`'s registry: the credentials saved
    /// under `home` (`qyvol login`), [`TIMEOUT_VAR`], plain HTTP beyond loopback only if
    /// `insecure`; no progress (the caller adds its own). The error is the variable's.
    pub fn of(
        home: &std::path::Path,
        reference: &Reference,
        insecure: bool,
    ) -> Result<Self, String> {
        Ok(Self {
            credentials: crate::credentials::load(home, reference.resolve_registry()),
            insecure,
            timeout: timeout_from_env()?,
            progress: None,
        })
    }

    fn auth(&self) -> RegistryAuth {
        match &self.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// `http` for loopback or with `--insecure`, `https` otherwise.
    fn scheme(&self, reference: &Reference) -> &'static str {
        let registry = reference.resolve_registry();
        let host = registry.split(':').next().unwrap_or_default();
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        if loopback || self.insecure {
            "http"
        } else {
            "https"
        }
    }

    /// oci-client, for pushing and for answering authentication challenges; a stalled
    /// connection is cut after the timeout without data.
    fn client(&self, reference: &Reference) -> Client {
        let protocol = match self.scheme(reference) {
            "http" => ClientProtocol::HttpsExcept(vec![reference.resolve_registry().to_string()]),
            _ => ClientProtocol::Https,
        };
        Client::new(ClientConfig {
            protocol,
            read_timeout: Some(self.timeout),
            connect_timeout: Some(self.timeout),
            ..ClientConfig::default()
        })
    }
}

/// Puts an OCI image manifest at `reference` (a tag or digest of its repository).
async fn push_manifest(
    client: &Client,
    reference: &Reference,
    bytes: Vec<u8>,
) -> Result<(), String> {
    let content_type = MEDIA_MANIFEST
        .parse()
        .map_err(|e: http::header::InvalidHeaderValue| e.to_string())?;
    client
        .push_manifest_raw(reference, bytes, content_type)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
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
    runtime()?.block_on(async {
        let read = match Session::open(&probe, remote).await {
            Ok(session) => session.manifest(&probe).await.map(drop),
            Err(e) => Err(e),
        };
        match read {
            Err(FetchError::Unauthorized(..)) => Err(StoreError::Registry(format!(
                "`{registry}` refused the credentials: check the user name and password"
            ))),
            Err(e) if e.is_transport() => Err(fetch_error(&probe, e)),
            // Any other answer, "unknown" included, comes to a user the registry accepted.
            _ => Ok(()),
        }
    })
}

fn fetch_error(reference: &Reference, e: FetchError) -> StoreError {
    StoreError::Registry(format!("`{}`: {e}", canonical(reference)))
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
            push_manifest(&client, reference, image.image_bytes().to_vec())
                .await
                .map_err(|e| registry_error(reference, e))?;
            Ok(image.image_digest().to_string())
        })
    }

    /// Pulls `reference` into the store and returns its manifest digest. A module pushed by
    /// another tool (no Qyvol manifest inside) gets one synthesised.
    pub fn pull(&self, reference: &Reference, remote: &Remote) -> Result<String, StoreError> {
        let policy = self.policy()?;
        let pulled = runtime()?.block_on(async {
            let session = Session::open(reference, remote)
                .await
                .map_err(|e| fetch_error(reference, e))?;
            let head = pull_manifest(&session, reference).await?;
            // The trust policy, before anything of the image is stored.
            let signed = signatures::admit(&policy, &session, reference, &head.digest).await?;
            let mut staged = HashMap::new();
            for desc in std::iter::once(&head.manifest.config).chain(&head.manifest.layers) {
                if staged.contains_key(&desc.digest) || self.blob_path(&desc.digest)?.exists() {
                    continue;
                }
                let blob = self.pull_blob(&session, desc, remote, reference).await?;
                staged.insert(desc.digest.clone(), blob);
            }
            Ok::<_, StoreError>((Pulled { head, staged }, signed))
        })?;
        let (pulled, signed) = pulled;
        let mut pulled = if pulled
            .head
            .manifest
            .layers
            .iter()
            .any(|l| l.media_type == MEDIA_QYV)
        {
            pulled
        } else {
            synthesise::synthesise(self, pulled, reference)?
        };
        let image = &pulled.head.manifest;
        for desc in std::iter::once(&image.config).chain(&image.layers) {
            if let Some(blob) = pulled.staged.remove(&desc.digest) {
                self.commit(blob)?;
            }
        }
        let digest = self.tag_manifest(&pulled.head.bytes, reference)?;
        if let Some(record) = signed {
            self.save_signatures(&digest, &record)?;
        }
        Ok(digest)
    }

    /// Streams one blob into `tmp/`; it must match its descriptor exactly.
    async fn pull_blob(
        &self,
        session: &Session,
        desc: &Descriptor,
        remote: &Remote,
        reference: &Reference,
    ) -> Result<Staged, StoreError> {
        let refused = |why: String| {
            StoreError::Registry(format!(
                "blob `{}` of `{}`: {why}",
                desc.digest,
                canonical(reference)
            ))
        };
        let mut staging = self.stage(desc.size)?;
        let progress = remote
            .progress
            .as_deref()
            .map(|p| (p, p.begin(&desc.digest, desc.size)));
        let fetched = session.blob(desc, &mut staging, progress).await;
        if let Some((p, id)) = progress {
            p.end(id);
        }
        fetched.map_err(|e| refused(e.to_string()))?;
        let staged = staging.finish().map_err(|e| refused(e.to_string()))?;
        if staged.size != desc.size || staged.digest != desc.digest {
            return Err(refused(format!(
                "what arrived ({} bytes of {}) does not match its digest: the registry's copy is damaged or was tampered with",
                staged.size, desc.size
            )));
        }
        Ok(staged)
    }
}

/// The manifest `reference` names, checked against the digest the registry gives and a pinned
/// `@sha256:`.
async fn pull_manifest(session: &Session, reference: &Reference) -> Result<ImageHead, StoreError> {
    let (bytes, digest) = session
        .manifest(reference)
        .await
        .map_err(|e| fetch_error(reference, e))?;
    if let Some(pinned) = reference.digest() {
        qyvol_common::Digest::parse(pinned).map_err(|e| StoreError::Registry(e.to_string()))?;
    }
    let actual = sha256_digest(&bytes);
    if let Some(expected) = [digest.as_deref(), reference.digest()]
        .into_iter()
        .flatten()
        .find(|d| *d != actual)
    {
        return Err(StoreError::Registry(format!(
            "the manifest of `{}` does not match its digest `{expected}`",
            canonical(reference)
        )));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::Registry(format!(
            "`{}` is not an image manifest Qyvol reads: {e}",
            canonical(reference)
        ))
    })?;
    Ok(ImageHead {
        shown: PathBuf::from(canonical(reference)),
        digest: actual,
        bytes,
        manifest,
    })
}

/// A pulled image: its verified manifest and the blobs it lacked, staged in the store's `tmp/`
/// (removed unless the pull completes).
struct Pulled {
    head: ImageHead,
    staged: HashMap<qyvol_common::Digest, Staged>,
}

impl Pulled {
    /// A blob of the image, staged or already in the store.
    fn open(&self, store: &Store, digest: &str) -> Result<std::fs::File, StoreError> {
        let path = store.blob_path(digest)?;
        match self.staged.get(digest) {
            Some(staged) => staged.open(),
            None => std::fs::File::open(&path),
        }
        .map_err(|source| StoreError::Io { path, source })
    }
}
