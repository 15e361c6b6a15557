//! Whether a bundle's or image's precompiled code may run on this host.
//!
//! Precompiled code is native code: a digest only proves it is what the bundle's author put
//! there. So it runs only when
//! - this `QYVOL_HOME` built that exact layer from that exact wasm (`qyvol build` records the
//!   digests it writes): it is Qyvol's own code, and goes into the cache under the wasm's
//!   digest as if just compiled; or
//! - the operator allowed it (`--allow-precompiled`, wasmtime's name): it is imported apart
//!   from Qyvol's code, keyed by its own digest, and mapped for this module only.
//!
//! Otherwise the wasm is compiled (or Qyvol's own earlier compilation is mapped from the cache),
//! exactly as for a plain `.wasm`.

use qyvol_runtime::{Cache, EngineConfig, Wasm};
use qyvol_store::bundle::{ANN_ENGINE, Descriptor, ImageSource};

use crate::LaunchError;

/// What the operator says about precompiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrecompiledPolicy {
    /// Use a layer only if this `QYVOL_HOME` built it (the default).
    #[default]
    BuiltHere,
    /// `--allow-precompiled`: use a matching layer whoever built it.
    Allow,
    /// `--no-precompiled`: never use a bundle's layer.
    Ignore,
    /// A trust policy rule whose keys signed the image allows its signers' code
    /// (`allowPrecompiled`): like `Allow`, for this image.
    Signed,
}

impl PrecompiledPolicy {
    /// The policy for an image whose signers a trust policy rule allows (`vouched`): they vouch
    /// for their code, unless the operator said otherwise for this run.
    pub fn for_image(self, vouched: bool) -> Self {
        match self {
            Self::BuiltHere if vouched => Self::Signed,
            other => other,
        }
    }
}

/// What happens to a bundle's precompiled code, as `inspect` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTrust {
    /// No layer was built for this host and engine: the wasm is compiled.
    NoLayer,
    /// `--no-precompiled`: the layer is ignored.
    Ignored,
    /// Built by this `QYVOL_HOME`: it runs.
    BuiltHere,
    /// The operator allowed it: it runs.
    Allowed,
    /// Signed by a key whose policy rule allows its precompiled code: it runs.
    Signed,
    /// Nobody vouches for it: the wasm is compiled instead.
    Untrusted,
}

impl CodeTrust {
    pub fn runs(self) -> bool {
        matches!(self, Self::BuiltHere | Self::Allowed | Self::Signed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoLayer => "no-layer",
            Self::Ignored => "ignored",
            Self::BuiltHere => "built-here",
            Self::Allowed => "allowed",
            Self::Signed => "signed",
            Self::Untrusted => "untrusted",
        }
    }
}

/// The precompiled layer for `config` on this host, if the image has one.
fn layer_for(source: &dyn ImageSource, fingerprint: &str) -> Option<Descriptor> {
    source
        .precompiled()
        .into_iter()
        .find(|l| l.annotations.get(ANN_ENGINE).map(String::as_str) == Some(fingerprint))
        .cloned()
}

/// Whether the image's precompiled code for `config` would run under `policy`.
pub fn verdict(
    source: &dyn ImageSource,
    wasm: &Wasm,
    cache: Option<&Cache>,
    config: EngineConfig,
    policy: PrecompiledPolicy,
) -> Result<CodeTrust, LaunchError> {
    let fingerprint = qyvol_runtime::host_fingerprint(config)?;
    let layer = layer_for(source, &fingerprint);
    Ok(judge(layer.as_ref(), wasm, &fingerprint, cache, policy))
}

/// The verdict for `layer`, the one the image labels as built for `fingerprint`: the label is
/// the image's word, so "built here" also needs this home to have built it for that engine.
fn judge(
    layer: Option<&Descriptor>,
    wasm: &Wasm,
    fingerprint: &str,
    cache: Option<&Cache>,
    policy: PrecompiledPolicy,
) -> CodeTrust {
    let built_here = |l: &Descriptor| {
        cache.is_some_and(|c| c.built(&l.digest, &wasm.info.sha256, fingerprint, wasm.info.kind))
    };
    match (layer, policy) {
        (None, _) => CodeTrust::NoLayer,
        (Some(_), PrecompiledPolicy::Ignore) => CodeTrust::Ignored,
        (Some(l), _) if built_here(l) => CodeTrust::BuiltHere,
        (Some(_), PrecompiledPolicy::Allow) => CodeTrust::Allowed,
        (Some(_), PrecompiledPolicy::Signed) => CodeTrust::Signed,
        (Some(_), PrecompiledPolicy::BuiltHere) => CodeTrust::Untrusted,
    }
}

/// Makes the image's precompiled code for `config` available to the run when it is trusted:
/// Qyvol's own code goes into the cache under the wasm's digest, code the operator allowed is
/// imported apart and attached to `wasm`. Untrusted code is never written anywhere.
pub(crate) fn apply(
    source: &dyn ImageSource,
    wasm: &mut Wasm,
    cache: &Cache,
    config: EngineConfig,
    policy: PrecompiledPolicy,
) -> Result<CodeTrust, LaunchError> {
    let fingerprint = qyvol_runtime::host_fingerprint(config)?;
    let layer = layer_for(source, &fingerprint);
    let digest = wasm.info.sha256.clone();
    let kind = wasm.info.kind;
    let trust = judge(layer.as_ref(), wasm, &fingerprint, Some(cache), policy);
    let Some(layer) = layer.filter(|_| trust.runs()) else {
        return Ok(trust);
    };
    if trust == CodeTrust::BuiltHere && cache.contains(&fingerprint, &digest, kind) {
        return Ok(trust);
    }
    if matches!(trust, CodeTrust::Allowed | CodeTrust::Signed)
        && let Some(path) = cache.imported_get(&fingerprint, &layer.digest, kind)
    {
        wasm.precompiled = Some(path);
        return Ok(trust);
    }
    let mut failure = None;
    let fill = |out: &mut dyn std::io::Write| {
        source.copy_blob(&layer, out).map_err(|e| {
            let err = std::io::Error::other(e.to_string());
            failure = Some(e);
            err
        })
    };
    let stored = match trust {
        CodeTrust::BuiltHere => cache.import_built(&fingerprint, &digest, kind, fill),
        _ => cache
            .import(&fingerprint, &layer.digest, kind, fill)
            .map(|path| wasm.precompiled = Some(path)),
    };
    match (stored, failure) {
        (_, Some(e)) => Err(e.into()),
        (Err(e), None) => {
            tracing::warn!(error = %e, "cannot store the bundle's precompiled code; compiling instead");
            Ok(trust)
        }
        (Ok(()), None) => Ok(trust),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qyvol_common::Digest;

    const ENGINE: &str = "engine-a";

    fn layer(code: &[u8]) -> Descriptor {
        Descriptor {
            media_type: qyvol_store::bundle::MEDIA_PRECOMPILED.into(),
            digest: Digest::of(code),
            size: code.len() as u64,
            annotations: Default::default(),
        }
    }

    /// Every verdict for a layer this cache built for `ENGINE`, one it did not, and no layer.
    #[test]
    fn precompiled_code_runs_only_when_built_here_allowed_or_signed() {
        use PrecompiledPolicy::{Allow, BuiltHere, Ignore, Signed};
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path().to_path_buf(), u64::MAX);
        let wasm = Wasm::from_bytes("m.wasm".into(), b"\0asm\x01\0\0\0".to_vec()).expect("wasm");
        let (ours, theirs) = (layer(b"ours"), layer(b"theirs"));
        cache
            .record_built(&ours.digest, &wasm.info.sha256, ENGINE, wasm.info.kind)
            .expect("record");
        let verdict = |l: Option<&Descriptor>, p| judge(l, &wasm, ENGINE, Some(&cache), p);
        let rows = [
            (None, BuiltHere, CodeTrust::NoLayer),
            (None, Allow, CodeTrust::NoLayer),
            (Some(&ours), BuiltHere, CodeTrust::BuiltHere),
            (Some(&ours), Allow, CodeTrust::BuiltHere),
            (Some(&ours), Ignore, CodeTrust::Ignored),
            (Some(&theirs), BuiltHere, CodeTrust::Untrusted),
            (Some(&theirs), Allow, CodeTrust::Allowed),
            (Some(&theirs), Signed, CodeTrust::Signed),
            (Some(&theirs), Ignore, CodeTrust::Ignored),
        ];
        for (l, p, want) in rows {
            assert_eq!(
                verdict(l, p),
                want,
                "{:?} under {p:?}",
                l.map(|d| &d.digest)
            );
        }
        // Built here for another engine: the image's label is not enough.
        assert_eq!(
            judge(Some(&ours), &wasm, "engine-b", Some(&cache), BuiltHere),
            CodeTrust::Untrusted
        );
        // Without a cache nothing was built here.
        assert_eq!(
            judge(Some(&ours), &wasm, ENGINE, None, BuiltHere),
            CodeTrust::Untrusted
        );
    }

    #[test]
    fn a_signers_rule_vouches_only_where_the_operator_did_not_decide() {
        use PrecompiledPolicy::{Allow, BuiltHere, Ignore, Signed};
        assert_eq!(BuiltHere.for_image(true), Signed);
        assert_eq!(BuiltHere.for_image(false), BuiltHere);
        assert_eq!(Ignore.for_image(true), Ignore);
        assert_eq!(Allow.for_image(true), Allow);
    }
}
