//! An app's grants and limits as its record keeps them ([`state::Spec`]): made from the run
//! request its deploy settled, and made back into one each time the app starts again.

use std::path::PathBuf;
use std::time::Duration;

use qyvol_runtime::{MountGrant, RunRequest};

use crate::NodeError;
use crate::state;

pub(crate) fn spec_of(
    req: &RunRequest,
    max_body: u64,
    precompiled: Option<PathBuf>,
    uses: qyvol_runtime::Uses,
) -> state::Spec {
    let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    state::Spec {
        argv0: req.argv0.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        mounts: req
            .mounts
            .iter()
            .map(|m| state::MountSpec {
                host: m.host.clone(),
                guest: m.guest.clone(),
                readonly: m.readonly,
                beneath: m.beneath.clone(),
                volume: None,
            })
            .collect(),
        memory: req.limits.memory,
        memory_total: req.limits.memory_total,
        concurrency: None,
        reuse: None,
        timeout_ms: ms(req.limits.timeout),
        fuel: req.limits.fuel,
        compile_timeout_ms: ms(req.limits.compile),
        network: req.network.iter().map(ToString::to_string).collect(),
        block_private: req.block_private,
        max_body,
        precompiled,
        uses: Some(uses),
        keyvalue: req
            .keyvalue
            .as_ref()
            .map(|k| k.buckets.clone())
            .unwrap_or_default(),
        kv_quotas: req.keyvalue.as_ref().map(|k| k.quotas),
        config: req.config.variables.to_vec(),
        secrets: req.config.secret_names.to_vec(),
        calls: req.calls.targets.to_vec(),
        health: None,
    }
}

pub(crate) fn request_of(spec: &state::Spec) -> Result<RunRequest, NodeError> {
    let network = spec
        .network
        .iter()
        .map(|n| {
            n.parse()
                .map_err(|e: String| NodeError::State(format!("a stored grant `{n}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(RunRequest {
        argv0: spec.argv0.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        mounts: spec
            .mounts
            .iter()
            .map(|m| MountGrant {
                host: m.host.clone(),
                guest: m.guest.clone(),
                readonly: m.readonly,
                beneath: m.beneath.clone(),
            })
            .collect(),
        limits: qyvol_runtime::Limits {
            memory: spec.memory,
            timeout: spec.timeout_ms.map(Duration::from_millis),
            fuel: spec.fuel,
            compile: spec.compile_timeout_ms.map(Duration::from_millis),
            memory_total: spec.memory_total,
        },
        network,
        block_private: spec.block_private,
        ..RunRequest::default()
    })
}
