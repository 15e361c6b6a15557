//! Interop with the Sigstore project's own cosign implementation (the `sigstore` crate's
//! `cosign` client; Debian's skopeo is built without sigstore): an image Qyvol signs verifies
//! there with Qyvol's public key and not with another, and an image it signs, with a key Qyvol
//! generated, passes `qyvol verify` and the trust policy. Against a real `docker-registry`.

use std::path::Path;

use sigstore::cosign::constraint::{Constraint as _, PrivateKeySigner};
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraint as _};
use sigstore::cosign::{ClientBuilder, CosignCapabilities as _, SignatureLayer};
use sigstore::crypto::SigningScheme;
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

use crate::fixture::{PASSWORD, keys};
use crate::fixture::{Registry, build_and_push};
use crate::fixture::{Scratch, qyvol_in, stderr, stdout};

fn cosign_client(registry: &str) -> sigstore::cosign::Client {
    ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![registry.to_string()]),
            ..ClientConfig::default()
        })
        .build()
        .expect("cosign client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Whether sigstore's cosign client finds a signature of `image` made by `public`.
fn cosign_verifies(registry: &str, image: &str, public: &Path) -> bool {
    let reference: OciReference = image.parse().expect("reference");
    let pem = std::fs::read(public).expect("public key");
    let verifier =
        PublicKeyVerifier::new(&pem, &SigningScheme::ECDSA_P256_SHA256_ASN1).expect("verifier");
    runtime().block_on(async {
        let mut client = cosign_client(registry);
        let layers = client
            .trusted_signature_layers(&Auth::Anonymous, &reference)
            .await
            .expect("signature layers");
        layers.iter().any(|l| verifier.verify(l).unwrap_or(false))
    })
}

#[test]
fn what_qyvol_signs_verifies_in_sigstores_cosign_client_with_its_key_only() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let home = s.path("home");
    let (key, public) = keys(&home, &s, "team");
    let (_, stranger) = keys(&home, &s, "stranger");
    let image = registry.reference("hello:1");
    build_and_push(&home, &image);
    let out = qyvol_in(&home)
        .args(["sign", "--key"])
        .arg(&key)
        .arg(&image)
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .expect("sign");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let host = registry.reference("").trim_end_matches('/').to_string();
    assert!(cosign_verifies(&host, &image, &public));
    assert!(!cosign_verifies(&host, &image, &stranger));
}

#[test]
fn what_sigstores_cosign_client_signs_with_a_qyvol_key_passes_qyvol_verify_and_the_policy() {
    let registry = Registry::start(None);
    let s = Scratch::new();
    let home = s.path("home");
    let (key, public) = keys(&home, &s, "team");
    let image = registry.reference("theirs:1");
    build_and_push(&home, &image);
    let host = registry.reference("").trim_end_matches('/').to_string();
    let reference: OciReference = image.parse().expect("reference");
    // Qyvol's encrypted private key, opened by sigstore as cosign opens it.
    let pair = SigStoreKeyPair::from_encrypted_pem(
        &std::fs::read(&key).expect("key"),
        PASSWORD.as_bytes(),
    )
    .expect("sigstore reads the key Qyvol wrote");
    let signer = pair
        .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
        .expect("signer");
    runtime().block_on(async {
        let mut client = cosign_client(&host);
        let (signatures, digest) = client
            .triangulate(&reference, &Auth::Anonymous)
            .await
            .expect("triangulate");
        let mut layer = SignatureLayer::new_unsigned(&reference, &digest).expect("layer");
        assert!(
            PrivateKeySigner::new_with_signer(signer)
                .add_constraint(&mut layer)
                .expect("sign")
        );
        client
            .push_signature(None, &Auth::Anonymous, &signatures, vec![layer])
            .await
            .expect("push signature");
    });

    let out = qyvol_in(&home)
        .args(["verify", "--key"])
        .arg(&public)
        .arg(&image)
        .output()
        .expect("verify");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let user = s.path("user");
    std::fs::create_dir_all(&user).expect("home");
    std::fs::write(
        user.join("policy.yaml"),
        format!(
            "default: reject\nrules:\n  - scope: {host}\n    require: signedBy\n    keys: [{}]\n",
            public.display()
        ),
    )
    .expect("policy");
    let out = qyvol_in(&user).args(["run", &image]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "👋 ¡Hola desde Qyvol WASI!\n");
}
