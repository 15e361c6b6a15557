//! Who published an image: keys and signatures in cosign's format, so Qyvol verifies what
//! cosign and containers/image (skopeo, podman) sign and they verify what Qyvol signs.
//!
//! - Keys: ECDSA P-256, the private one encrypted as cosign writes it (scrypt + NaCl secretbox,
//!   PEM `ENCRYPTED COSIGN PRIVATE KEY`, which every cosign and containers/image reads), the
//!   public one as PKIX PEM. The cryptography is the `sigstore` crate's.
//! - A signature signs a "simple signing" payload naming the image's repository and manifest
//!   digest; it is stored in the image's repository as the layer of a manifest tagged
//!   `sha256-<hex>.sig`, with the base64 signature in the layer's
//!   `dev.cosignproject.cosign/signature` annotation (cosign's and containers/image's
//!   "sigstore attachments").
//! - [`policy`]: which keys an image needs, by registry or repository prefix.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, SigningScheme};
use zeroize::Zeroizing;

pub mod policy;

/// The payload's media type, and the layer's.
pub const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// What a payload says it is (containers/image requires exactly this).
const PAYLOAD_TYPE: &str = "cosign container image signature";
/// cosign 1.x's label, which cosign 2 and containers/image read too.
const PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// No payload Qyvol reads is larger, nor a key file.
pub const MAX_PAYLOAD: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// `source` names the path.
    #[error("cannot read the key: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a private key Qyvol or cosign wrote, or the password is wrong")]
    BadPrivateKey(PathBuf),
    #[error(
        "`{0}` is not a public key (a PEM `PUBLIC KEY` block of ECDSA P-256, as `qyvol key generate` or cosign writes)"
    )]
    BadPublicKey(PathBuf),
    #[error("the password is empty: give one on stdin or in QYVOL_KEY_PASSWORD")]
    EmptyPassword,
    #[error("cannot make the key: {0}")]
    Crypto(String),
}

/// A new key pair: the private key encrypted with `password`, and the public key (both PEM).
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), TrustError> {
    if password.is_empty() {
        return Err(TrustError::EmptyPassword);
    }
    let crypto = |e: sigstore::errors::SigstoreError| TrustError::Crypto(e.to_string());
    let pair = SigStoreKeyPair::ECDSA(ECDSAKeys::new(EllipticCurve::P256).map_err(crypto)?);
    let private = pair
        .private_key_to_encrypted_pem(password)
        .map_err(crypto)?;
    // Unix line ends, as cosign writes them.
    let private = Zeroizing::new(
        private
            .replace(SIGSTORE_LABEL, PRIVATE_LABEL)
            .replace("\r\n", "\n"),
    );
    let public = pair
        .public_key_to_pem()
        .map_err(crypto)?
        .replace("\r\n", "\n");
    Ok((private, public))
}

/// A private key, decrypted, ready to sign.
pub struct Signer(SigStoreSigner);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

impl Signer {
    /// The private key at `path` (cosign's encrypted format, either label), opened with
    /// `password`.
    pub fn load(path: &Path, password: &[u8]) -> Result<Self, TrustError> {
        let pem = Zeroizing::new(read_small(path)?);
        let pair = SigStoreKeyPair::from_encrypted_pem(&pem, password)
            .map_err(|_| TrustError::BadPrivateKey(path.to_path_buf()))?;
        let signer = pair
            .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(|_| TrustError::BadPrivateKey(path.to_path_buf()))?;
        Ok(Self(signer))
    }

    /// The base64 signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<String, TrustError> {
        let raw = self
            .0
            .sign(payload)
            .map_err(|e| TrustError::Crypto(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// A public key and where it was read from (named in refusals).
pub struct PublicKey {
    key: CosignVerificationKey,
    pub path: PathBuf,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let pem = read_small(path)?;
        let bad = || TrustError::BadPublicKey(path.to_path_buf());
        // A public key, of ECDSA P-256: a private key or another curve is a mistake to say.
        let text = std::str::from_utf8(&pem).map_err(|_| bad())?;
        let label = text.trim_start().lines().next().unwrap_or_default().trim();
        if label != "-----BEGIN PUBLIC KEY-----" {
            return Err(bad());
        }
        let key = match CosignVerificationKey::try_from_pem(&pem) {
            Ok(k @ CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_)) => k,
            _ => return Err(bad()),
        };
        Ok(Self {
            key,
            path: path.to_path_buf(),
        })
    }

    fn verifies(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        self.key
            .verify_signature(sigstore::crypto::Signature::Raw(&raw), payload)
            .is_ok()
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>, TrustError> {
    qyvol_common::read_regular(path, MAX_PAYLOAD).map_err(|source| TrustError::ReadKey {
        path: path.to_path_buf(),
        source,
    })
}

/// A signature as stored beside an image: the payload it signs and the base64 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    pub signature: String,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// The index annotation holding a bundle signature's payload (base64); the signature is in
/// [`ANN_SIGNATURE`] beside it.
pub const ANN_PAYLOAD: &str = "dev.qyvol.signature.payload";
/// What a bundle's payload names as its "repository": bundles have no registry.
pub const BUNDLE_IDENTITY: &str = "qyvol.bundle";

/// Signs the manifest `digest` of the bundle named `name`.
pub fn sign_bundle(signer: &Signer, name: &str, digest: &str) -> Result<Signature, TrustError> {
    let payload = payload(&format!("{BUNDLE_IDENTITY}/{name}"), digest);
    Ok(Signature {
        signature: signer.sign(&payload)?,
        payload,
    })
}

impl Signature {
    /// As a bundle's index keeps it.
    pub fn annotations(&self) -> [(String, String); 2] {
        [
            (
                ANN_PAYLOAD.to_string(),
                base64::engine::general_purpose::STANDARD.encode(&self.payload),
            ),
            (ANN_SIGNATURE.to_string(), self.signature.clone()),
        ]
    }

    /// From a bundle's index annotations; `None` when absent or not base64.
    pub fn from_annotations(
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Option<Self> {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(annotations.get(ANN_PAYLOAD)?)
            .ok()
            .filter(|p| p.len() as u64 <= MAX_PAYLOAD)?;
        Some(Self {
            payload,
            signature: annotations.get(ANN_SIGNATURE)?.clone(),
        })
    }
}

/// The simple-signing payload for the image `repository` (`registry/name`, no tag) whose
/// manifest digest is `digest`, as cosign writes it.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: PayloadImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The tag cosign stores the signatures of the manifest `digest` under.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Why a signature does not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No key of the rule verifies it.
    NoKey,
    /// Verified, but it signs something else.
    OtherImage(String),
    Malformed(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoKey => f.write_str("made by none of the required keys"),
            Self::OtherImage(what) => write!(f, "a valid signature for {what}"),
            Self::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

/// What a signature must name besides the manifest digest.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// The image `registry/name` (the payload's reference may carry a tag or a digest: its
    /// repository must be this one, as containers/image's `matchRepository` and cosign check).
    Image(&'a str),
    /// A bundle (`qyvol build --sign`): a file has no registry to confirm its name, so the
    /// digest is what the signature pins, and a registry image's signature does not count.
    Bundle,
}

/// Whether `signature` is made by one of `keys` and signs `subject` at the manifest `digest`.
/// Returns the key's index.
pub fn check(
    signature: &Signature,
    keys: &[PublicKey],
    subject: Subject<'_>,
    digest: &str,
) -> Result<usize, Mismatch> {
    let key = keys
        .iter()
        .position(|k| k.verifies(&signature.payload, &signature.signature))
        .ok_or(Mismatch::NoKey)?;
    let payload: Payload = serde_json::from_slice(&signature.payload)
        .map_err(|e| Mismatch::Malformed(format!("payload: {e}")))?;
    let c = payload.critical;
    if c.kind != PAYLOAD_TYPE {
        return Err(Mismatch::Malformed(format!("payload type `{}`", c.kind)));
    }
    let signed_repo = repository_of(&c.identity.docker_reference);
    // A reference pinned by digest must pin this one.
    let pinned = c.identity.docker_reference.split_once('@').map(|(_, d)| d);
    let signed_repo = match signed_repo.split_once('/') {
        Some((registry, path)) => policy::normal_repository(registry, path),
        None => signed_repo.to_string(),
    };
    let other_repo = matches!(subject, Subject::Image(r) if r != signed_repo);
    if c.image.docker_manifest_digest != digest || pinned.is_some_and(|p| p != digest) || other_repo
    {
        return Err(Mismatch::OtherImage(format!(
            "{signed_repo}@{}",
            c.image.docker_manifest_digest
        )));
    }
    if matches!(subject, Subject::Bundle)
        && !c
            .identity
            .docker_reference
            .starts_with(&format!("{BUNDLE_IDENTITY}/"))
    {
        return Err(Mismatch::OtherImage(
            "an image in a registry, not a bundle".into(),
        ));
    }
    Ok(key)
}

/// The key, among `keys`, of a signature among `signatures` that signs `subject` at `digest`;
/// the refusal says what was found.
pub fn find_valid(
    signatures: &[Signature],
    keys: &[PublicKey],
    subject: Subject<'_>,
    digest: &str,
) -> Result<usize, String> {
    if signatures.is_empty() {
        return Err("it has no signature".into());
    }
    let mut found = Vec::new();
    for s in signatures {
        match check(s, keys, subject, digest) {
            Ok(k) => return Ok(k),
            Err(m) => found.push(m),
        }
    }
    found.dedup();
    let said: Vec<String> = found.iter().map(Mismatch::to_string).collect();
    Err(format!(
        "none of its {} signatures is valid: {}",
        signatures.len(),
        said.join("; ")
    ))
}

/// `registry/name` of a `registry/name[:tag][@digest]` reference as a payload writes it.
fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        // A colon after the last slash is a tag's; before it, a registry's port.
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_key_verifies_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (private, public) = generate(b"secret").expect("keys");
        assert!(private.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"));
        std::fs::write(dir.path().join("k.key"), private.as_bytes()).expect("write");
        std::fs::write(dir.path().join("k.pub"), &public).expect("write");
        assert!(Signer::load(&dir.path().join("k.key"), b"wrong").is_err());
        let signer = Signer::load(&dir.path().join("k.key"), b"secret").expect("signer");
        let key = PublicKey::load(&dir.path().join("k.pub")).expect("public");
        let digest = format!("sha256:{}", "a".repeat(64));
        let payload = payload("localhost:5000/app", &digest);
        let sig = Signature {
            signature: signer.sign(&payload).expect("sign"),
            payload,
        };
        let keys = [key];
        assert_eq!(
            check(&sig, &keys, Subject::Image("localhost:5000/app"), &digest),
            Ok(0)
        );
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(matches!(
            check(&sig, &keys, Subject::Image("localhost:5000/app"), &other),
            Err(Mismatch::OtherImage(_))
        ));
        assert!(matches!(
            check(&sig, &keys, Subject::Image("localhost:5000/other"), &digest),
            Err(Mismatch::OtherImage(_))
        ));
        let mut tampered = sig.clone();
        tampered.payload[10] ^= 1;
        assert_eq!(
            check(
                &tampered,
                &keys,
                Subject::Image("localhost:5000/app"),
                &digest
            ),
            Err(Mismatch::NoKey)
        );
    }

    #[test]
    fn a_payloads_reference_is_compared_by_repository() {
        assert_eq!(repository_of("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(
            repository_of("localhost:5000/app@sha256:abc"),
            "localhost:5000/app"
        );
        assert_eq!(repository_of("docker.io/a/b:v2"), "docker.io/a/b");
    }
}
