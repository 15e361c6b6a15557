//! Signatures in a registry (cosign's attachments: a manifest tagged `sha256-<hex>.sig` in the
//! image's repository, one simple-signing layer per signature) and the trust policy applied at
//! pull, before anything of the image is stored.

use std::path::PathBuf;

use oci_client::RegistryOperation;

use super::failure::FetchError;
use super::fetch::Session;
use super::{fetch_error, push_manifest, registry_error, runtime};
use crate::bundle::{Descriptor, ImageManifest, MEDIA_MANIFEST, sha256_digest};
use crate::trust::policy::{Decision, Policy};
use crate::trust::{
    ANN_SIGNATURE, MAX_PAYLOAD, MEDIA_SIMPLE_SIGNING, PublicKey, Signature, Signer, Subject,
    payload, signature_tag,
};
use crate::{Reference, Remote, Store, StoreError, canonical};

/// The most signatures read for one image.
const MAX_SIGNATURES: usize = 64;
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// `registry/name` of a reference, the registry in the one spelling the policy and signatures
/// compare (lowercase, no default port, Docker Hub as `docker.io`).
pub fn repository(reference: &Reference) -> String {
    crate::trust::policy::normal_repository(reference.registry(), reference.repository())
}

/// What a signed pull keeps beside the image: the registry's manifest digest the signatures
/// sign (a pulled image without a Qyvol manifest is stored under another digest) and them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SignatureRecord {
    pub repository: String,
    pub digest: String,
    pub signatures: Vec<Signature>,
}

fn untrusted(reference: &Reference, policy: &Policy, rule: &str, why: &str) -> StoreError {
    let file = policy
        .path
        .as_ref()
        .map_or_else(|| "policy.yaml".to_string(), |p| p.display().to_string());
    StoreError::Untrusted(format!(
        "`{}` is refused by the trust policy `{file}` (rule `{rule}`): {why}",
        canonical(reference)
    ))
}

impl Store {
    /// The trust policy beside this store (`QYVOL_HOME/policy.yaml`).
    pub fn policy(&self) -> Result<Policy, StoreError> {
        let path = qyvol_common::trust_policy_beside(self.root());
        Policy::load(&path).map_err(|e| StoreError::Policy(e.to_string()))
    }

    /// Signs the image `reference` names in its registry with `signer` and stores the
    /// signature there beside the ones it has; returns the manifest digest signed.
    pub fn sign(
        &self,
        reference: &Reference,
        signer: &Signer,
        remote: &Remote,
    ) -> Result<String, StoreError> {
        runtime()?.block_on(async {
            let (session, digest) = open_manifest(reference, remote).await?;
            let payload = payload(&repository(reference), &digest);
            let signature = signer
                .sign(&payload)
                .map_err(|e| StoreError::Registry(e.to_string()))?;
            let sig_ref = Reference::with_tag(
                reference.resolve_registry().to_string(),
                reference.repository().to_string(),
                signature_tag(&digest),
            );
            // cosign's way: a new layer beside the signatures already there.
            // Whatever the tag holds, an index too: never replace what is there unread.
            let any = [
                MEDIA_MANIFEST,
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
            ];
            let mut layers = match session.manifest_of(&sig_ref, &any).await {
                // Others' signatures live there.
                Ok((bytes, _)) => serde_json::from_slice::<ImageManifest>(&bytes)
                    .map(|m| m.layers)
                    .map_err(|e| {
                        StoreError::Registry(format!(
                            "`{}` holds a signature manifest Qyvol cannot read ({e}); remove it first",
                            canonical(&sig_ref)
                        ))
                    })?,
                Err(FetchError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(fetch_error(reference, e)),
            };
            let mut layer =
                crate::bundle::descriptor_with(MEDIA_SIMPLE_SIGNING, &payload, Default::default());
            layer
                .annotations
                .insert(ANN_SIGNATURE.to_string(), signature);
            let payload_digest = layer.digest.clone();
            layers.retain(|l| l.digest != layer.digest || l.annotations != layer.annotations);
            // First: a reader stops after 64, and whoever can push may have padded the list.
            layers.insert(0, layer);
            let config = serde_json::to_vec(&serde_json::json!({
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{ "created": "0001-01-01T00:00:00Z" }],
                "os": "",
                "rootfs": {
                    "type": "layers",
                    "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
                },
                "config": {},
            }))
            .map_err(|e| StoreError::Registry(e.to_string()))?;
            let config_desc =
                crate::bundle::descriptor_with(MEDIA_CONFIG, &config, Default::default());
            let manifest = serde_json::to_vec(&ImageManifest {
                schema_version: 2,
                media_type: MEDIA_MANIFEST.to_string(),
                config: config_desc.clone(),
                layers,
                annotations: Default::default(),
            })
            .map_err(|e| StoreError::Registry(e.to_string()))?;
            let client = remote.client(reference);
            client
                .auth(&sig_ref, &remote.auth(), RegistryOperation::Push)
                .await
                .map_err(|e| registry_error(reference, e))?;
            for (bytes, digest) in [(payload, payload_digest), (config, config_desc.digest)] {
                client
                    .push_blob(&sig_ref, bytes, &digest)
                    .await
                    .map_err(|e| registry_error(reference, e))?;
            }
            push_manifest(&client, &sig_ref, manifest)
                .await
                .map_err(|e| registry_error(reference, e))?;
            Ok(digest)
        })
    }

    /// Checks the image `reference` names in its registry against `keys`: returns its manifest
    /// digest and the key that verified one of its signatures.
    pub fn verify(
        &self,
        reference: &Reference,
        keys: &[PublicKey],
        remote: &Remote,
    ) -> Result<(String, PathBuf), StoreError> {
        runtime()?.block_on(async {
            let (session, digest) = open_manifest(reference, remote).await?;
            let signatures = fetch_signatures(&session, reference, &digest).await?;
            let repo = repository(reference);
            match crate::trust::find_valid(&signatures, keys, Subject::Image(&repo), &digest) {
                Ok(k) => Ok((digest, keys[k].path.clone())),
                Err(why) => Err(StoreError::Untrusted(format!(
                    "`{}`: {why}",
                    canonical(reference)
                ))),
            }
        })
    }

    /// The trust policy's verdict on the stored image `reference` names, before it runs: an
    /// image under a `signedBy` rule needs signatures checked at its pull (or at `qyvol sign`)
    /// by one of the rule's keys — a locally built or loaded image has none.
    /// Returns whether the signers' precompiled code may run (their rule's `allowPrecompiled`).
    pub fn admit(
        &self,
        reference: &Reference,
        image: &crate::StoredImage,
    ) -> Result<bool, StoreError> {
        let policy = self.policy()?;
        let repo = repository(reference);
        match policy.decide(&repo) {
            Decision::Accept => Ok(false),
            Decision::Reject(rule) => Err(untrusted(
                reference,
                &policy,
                &rule,
                "the rule rejects every image there",
            )),
            Decision::SignedBy(rule) => {
                let records =
                    self.stored_signatures(crate::bundle::ImageSource::image_digest(image));
                let why = match records.into_iter().find(|r| r.repository == repo) {
                    None => format!(
                        "no checked signature is stored for it: `qyvol pull {}` fetches and checks its signatures (an image built or loaded here must be pushed and signed first)",
                        canonical(reference)
                    ),
                    Some(record) => {
                        match crate::trust::find_valid(
                            &record.signatures,
                            &rule.keys,
                            Subject::Image(&repo),
                            &record.digest,
                        ) {
                            // The record is this repository's (found by it above).
                            Ok(_) => return Ok(rule.allow_precompiled),
                            Err(why) => why,
                        }
                    }
                };
                Err(untrusted(reference, &policy, &rule.scope, &why))
            }
        }
    }

    /// The signatures stored beside the image whose stored manifest digest is `digest`, one
    /// record per repository it was pulled from.
    pub fn stored_signatures(&self, digest: &str) -> Vec<SignatureRecord> {
        let Ok(path) = self.signatures_path(digest) else {
            return Vec::new();
        };
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn signatures_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| StoreError::Damaged(format!("`{digest}` is not a sha256 digest")))?;
        Ok(self.root().join("signatures").join(format!("{hex}.json")))
    }

    /// Keeps `record` beside the stored image `digest` (temp + rename).
    pub(super) fn save_signatures(
        &self,
        digest: &str,
        record: &SignatureRecord,
    ) -> Result<(), StoreError> {
        let path = self.signatures_path(digest)?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(self.root());
        std::fs::create_dir_all(dir).map_err(io)?;
        // Beside the records of other repositories holding the same bytes.
        let mut records = self.stored_signatures(digest);
        records.retain(|r| r.repository != record.repository);
        records.push(record.clone());
        let bytes =
            serde_json::to_vec(&records).map_err(|e| StoreError::Registry(e.to_string()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// A session with `reference`'s registry and the digest of the manifest it names (checked
/// against a pinned `@sha256:`).
async fn open_manifest(
    reference: &Reference,
    remote: &Remote,
) -> Result<(Session, String), StoreError> {
    let session = Session::open(reference, remote)
        .await
        .map_err(|e| fetch_error(reference, e))?;
    let (manifest, _) = session
        .manifest(reference)
        .await
        .map_err(|e| fetch_error(reference, e))?;
    let digest = sha256_digest(&manifest).to_string();
    if let Some(pinned) = reference.digest().filter(|d| *d != digest) {
        return Err(StoreError::Registry(format!(
            "the manifest of `{}` does not match its digest `{pinned}`",
            canonical(reference)
        )));
    }
    Ok((session, digest))
}

/// The signatures the registry holds for the manifest `digest` of `reference`'s repository
/// (none when it has no `.sig` manifest); each payload checked against its descriptor.
pub(super) async fn fetch_signatures(
    session: &Session,
    reference: &Reference,
    digest: &str,
) -> Result<Vec<Signature>, StoreError> {
    let sig_ref = Reference::with_tag(
        reference.resolve_registry().to_string(),
        reference.repository().to_string(),
        signature_tag(digest),
    );
    let bytes = match session.manifest(&sig_ref).await {
        Ok((bytes, _)) => bytes,
        Err(FetchError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(fetch_error(reference, e)),
    };
    let bad = |why: String| {
        StoreError::Untrusted(format!(
            "the signatures of `{}` are malformed: {why}",
            canonical(reference)
        ))
    };
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut signatures = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == MEDIA_SIMPLE_SIGNING)
        .take(MAX_SIGNATURES)
    {
        let Some(signature) = layer.annotations.get(ANN_SIGNATURE) else {
            continue;
        };
        if layer.size > MAX_PAYLOAD {
            return Err(bad(format!("a payload of {} bytes", layer.size)));
        }
        let payload = read_payload(session, layer)
            .await
            .map_err(|e| bad(e.to_string()))?;
        signatures.push(Signature {
            payload,
            signature: signature.clone(),
        });
    }
    Ok(signatures)
}

async fn read_payload(session: &Session, layer: &Descriptor) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    session
        .blob(layer, &mut bytes, None)
        .await
        .map_err(|e| e.to_string())?;
    if sha256_digest(&bytes) != layer.digest {
        return Err("a payload does not match its digest".into());
    }
    Ok(bytes)
}

/// The trust policy's verdict on `reference` at the manifest `digest`, before any of its blobs
/// is stored: what to keep beside it when signatures were needed and checked.
pub(super) async fn admit(
    policy: &Policy,
    session: &Session,
    reference: &Reference,
    digest: &str,
) -> Result<Option<SignatureRecord>, StoreError> {
    let repo = repository(reference);
    match policy.decide(&repo) {
        Decision::Accept => Ok(None),
        Decision::Reject(rule) => Err(untrusted(
            reference,
            policy,
            &rule,
            "the rule rejects every image there",
        )),
        Decision::SignedBy(rule) => {
            let signatures = fetch_signatures(session, reference, digest).await?;
            match crate::trust::find_valid(&signatures, &rule.keys, Subject::Image(&repo), digest) {
                Ok(_) => Ok(Some(SignatureRecord {
                    repository: repo,
                    digest: digest.to_string(),
                    signatures,
                })),
                Err(why) => Err(untrusted(
                    reference,
                    policy,
                    &rule.scope,
                    &format!(
                        "{why}; sign it with `qyvol sign --key KEY {}` or change the rule",
                        canonical(reference)
                    ),
                )),
            }
        }
    }
}
