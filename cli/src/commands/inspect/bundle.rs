//! `qyvol inspect FILE.qyvc`: a bundle's layers, precompiled platforms, whether its code
//! would run here, and what its manifest asks for.

use std::process::ExitCode;

use qyvol_runtime::WasmKind;

use super::human;
use crate::exit::Failure;
use crate::i18n::{Msg, lang};
use crate::ui::{out, sanitize};

/// A bundle: its app, layers with digests and sizes, and which platforms have native code.
pub(super) fn inspect_bundle(path: &std::path::Path, json: bool) -> Result<ExitCode, Failure> {
    use qyvol_store::bundle::{ANN_ENGINE, ANN_PLATFORM, ANN_WASMTIME};
    let cache = crate::commands::cache::open()?;
    let opened = qyvol_launch::open(
        path,
        &qyvol_launch::Operator::default(),
        Some(&cache),
        &mut |_| Ok::<(), Failure>(()),
    )?;
    let manifest = &opened.manifest;
    let Some(image) = &opened.image else {
        return Err(Failure::internal("a bundle without its image"));
    };
    let (bundle, info) = (&image.source, &image.wasm.info);
    let config = qyvol_launch::grants::expected_config(manifest, info.wasi);
    let host = qyvol_runtime::host_fingerprint(config)?;
    // What a run would do: the trust policy may vouch for the signers' code.
    let vouched = crate::commands::home().ok().is_some_and(|h| {
        qyvol_store::bundle::Bundle::open(path).is_ok_and(|b| {
            qyvol_store::trust::policy::admit_bundle(&h.trust_policy(), &b).unwrap_or(false)
        })
    });
    let trust = qyvol_launch::trust::verdict(
        bundle.as_ref(),
        &image.wasm,
        Some(&cache),
        config,
        qyvol_launch::PrecompiledPolicy::default().for_image(vouched),
    )?;
    let requested_mounts: Vec<String> = manifest
        .requested
        .mounts
        .iter()
        .map(ToString::to_string)
        .collect();
    let requested_network: Vec<String> = manifest
        .requested
        .network
        .iter()
        .map(ToString::to_string)
        .collect();
    let platforms: Vec<serde_json::Value> = bundle
        .precompiled()
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "platform": l.annotations.get(ANN_PLATFORM),
                "engine": l.annotations.get(ANN_ENGINE),
                "wasmtime": l.annotations.get(ANN_WASMTIME),
                "matches_this_host": l.annotations.get(ANN_ENGINE) == Some(&host),
            })
        })
        .collect();
    if json {
        let doc = serde_json::json!({
            "file": path,
            "manifest": { "name": manifest.name.as_str(), "environment": manifest.environment.as_str() },
            "image_manifest": bundle.image_digest(),
            "config": bundle.image().config,
            "layers": bundle.image().layers,
            "kind": info.kind,
            "wasi": info.wasi,
            "precompiled": platforms,
            "precompiled_trust": trust.as_str(),
            "precompiled_runs": trust.runs(),
            "requests": {
                "mounts": requested_mounts,
                "network": requested_network,
                "keyvalue": manifest.requested.keyvalue.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
            },
            // What the app reads through wasi:config: variable names (with their defaults
            // unshown) and the secrets the operator must give.
            "declares": {
                "config": manifest.state.config.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "secrets": manifest.state.secrets.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            },
        });
        out(&serde_json::to_string_pretty(&doc).map_err(Failure::internal)?);
        return Ok(ExitCode::SUCCESS);
    }
    let l = lang();
    let kind = match info.kind {
        WasmKind::CoreModule => Msg::KindCore.text(l),
        WasmKind::Component => Msg::KindComponent.text(l),
    };
    out(&format!(
        "{:<14}{}",
        format!("{}:", Msg::Field("name").text(l)),
        manifest.name
    ));
    out(&format!(
        "{:<14}{}",
        format!("{}:", Msg::Field("file").text(l)),
        sanitize(&path.display().to_string())
    ));
    out(&format!(
        "{:<14}{kind}",
        format!("{}:", Msg::Field("kind").text(l))
    ));
    out(&format!("{:<14}{}", "manifest:", bundle.image_digest()));
    out(&format!("{}:", Msg::Field("layers").text(l)));
    for layer in std::iter::once(&bundle.image().config).chain(&bundle.image().layers) {
        out(&format!(
            "  - {:<44} {}  {:>10}",
            sanitize(&layer.media_type),
            &layer.digest[..19.min(layer.digest.len())],
            human(layer.size)
        ));
    }
    out(&format!("{}:", Msg::Field("precompiled").text(l)));
    for p in &platforms {
        let here = if p["matches_this_host"] == true {
            " ✓"
        } else {
            ""
        };
        out(&format!(
            "  - {} wasmtime {} {}{here}",
            sanitize(p["platform"].as_str().unwrap_or("?")),
            sanitize(p["wasmtime"].as_str().unwrap_or("?")),
            sanitize(p["engine"].as_str().unwrap_or("?"))
        ));
    }
    out(&format!(
        "{:<14}{}",
        format!("{}:", Msg::Field("code").text(l)),
        Msg::Trust(trust).text(l)
    ));
    if !manifest.requested.is_empty() {
        out(&format!("{}:", Msg::Field("requests").text(l)));
        for m in &requested_mounts {
            out(&format!("  - mount {}", sanitize(m)));
        }
        for n in &requested_network {
            out(&format!("  - network {}", sanitize(n)));
        }
        for b in &manifest.requested.keyvalue {
            out(&format!("  - keyvalue {b}"));
        }
    }
    let declared: Vec<String> = manifest
        .state
        .config
        .iter()
        .map(|(k, _)| format!("config {k}"))
        .chain(manifest.state.secrets.iter().map(|k| format!("secret {k}")))
        .collect();
    if !declared.is_empty() {
        out(&format!("{}:", Msg::Field("declares").text(l)));
        for d in &declared {
            out(&format!("  - {d}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
