//! A deploy request's flags read into the operator's grants and limits for `qyvol-launch`,
//! each refused with the flag that was wrong.

use qyvol_launch::{Operator, PrecompiledPolicy};

use crate::{DeployRequest, NodeError};

/// The operator's grants; a mount whose host is a volume name (`data:/data`) mounts the folder
/// `volume` gives for it (creating the volume if it is new, as Docker does).
pub(super) fn operator(
    req: &DeployRequest,
    volume: &dyn Fn(&str) -> Result<std::path::PathBuf, NodeError>,
) -> Result<Operator, NodeError> {
    let bad = NodeError::BadRequest;
    let mut op = Operator {
        precompiled: match (req.allow_precompiled, req.no_precompiled) {
            (true, true) => {
                return Err(bad(
                    "`--allow-precompiled` and `--no-precompiled` contradict each other: give one"
                        .into(),
                ));
            }
            (true, false) => PrecompiledPolicy::Allow,
            (false, true) => PrecompiledPolicy::Ignore,
            (false, false) => PrecompiledPolicy::default(),
        },
        allow_outside: req.allow_outside,
        ..Operator::default()
    };
    if let Some(e) = &req.environment {
        op.environment = Some(
            e.parse()
                .map_err(|e2: String| bad(format!("`--environment {e}`: {e2}")))?,
        );
    }
    if let Some(m) = &req.max_module_size {
        op.max_module_size = m
            .parse()
            .map_err(|e: String| bad(format!("`--max-module-size {m}`: {e}")))?;
    }
    if let Some(t) = &req.compile_timeout {
        op.compile_timeout = t
            .parse()
            .map_err(|e: String| bad(format!("`--compile-timeout {t}`: {e}")))?;
    }
    for pair in &req.env {
        let (k, v) =
            qyvol_common::parse_env_pair(pair).map_err(|e| bad(format!("`-e {pair}`: {e}")))?;
        let v = v.ok_or_else(|| {
            bad(format!(
                "`-e {pair}` has no value: the node does not copy its own environment; give \
                 `-e {pair}=VALUE`, or `-e {pair}` to `qyvol deploy`, which sends the value of \
                 its own environment"
            ))
        })?;
        op.env.push((k, Some(v)));
    }
    for m in &req.mounts {
        let mut flag: qyvol_launch::MountFlag = m.parse().map_err(|e: String| bad(e))?;
        if let Some(name) = flag.host.to_str().filter(|h| crate::is_volume_name(h)) {
            flag.host = volume(name)?;
        }
        if !flag.host.is_absolute() {
            return Err(bad(format!(
                "`--mount {m}`: the host folder must be an absolute path on the node's machine, or a volume's name (lowercase letters, digits and `-`)"
            )));
        }
        op.mounts.push(flag);
    }
    for n in &req.allow_net {
        op.network.push(
            n.parse()
                .map_err(|e: String| bad(format!("`--allow-net {n}`: {e}")))?,
        );
    }
    if let Some(m) = &req.memory {
        op.memory = Some(
            m.parse()
                .map_err(|e: String| bad(format!("`--memory {m}`: {e}")))?,
        );
    }
    if let Some(t) = &req.timeout {
        op.timeout = Some(
            t.parse()
                .map_err(|e: String| bad(format!("`--timeout {t}`: {e}")))?,
        );
    }
    op.fuel = req.fuel;
    for b in &req.keyvalue {
        op.state.keyvalue.push(
            qyvol_common::AppName::try_from(b.clone())
                .map_err(|e| bad(format!("`--keyvalue {b}`: {e}")))?,
        );
    }
    for pair in &req.config {
        op.state.config.push(
            qyvol_common::parse_config_pair(pair).map_err(|e| bad(format!("`--config`: {e}")))?,
        );
    }
    for s in &req.secrets {
        let name: qyvol_common::ConfigKey = s
            .name
            .parse()
            .map_err(|e: String| bad(format!("`--secret`: {e}")))?;
        if op.state.secrets.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("`--secret {name}` is given twice")));
        }
        let value = qyvol_common::Secret::new(&name, s.value.clone().into_bytes())
            .map_err(|e| bad(format!("`--secret`: {e}")))?;
        op.state.secrets.push((name, value));
    }
    Ok(op)
}

/// The project, the apps it may call (named within its project: `api` of project `shop` is
/// the app `shop-api`) and the health check of a deploy request.
/// A deploy request's project, calls (the name called, the app answering) and health check.
pub(super) struct Grouping {
    pub(super) project: Option<String>,
    pub(super) calls: Vec<(String, String)>,
    pub(super) health: Option<crate::state::HealthSpec>,
}

pub(super) fn project_calls_health(req: &DeployRequest) -> Result<Grouping, NodeError> {
    let bad = NodeError::BadRequest;
    let name = |what: &str, n: &str| {
        qyvol_common::AppName::try_from(n.to_string())
            .map(|n| n.to_string())
            .map_err(|e| {
                bad(format!(
                    "{what} `{}`: {e}",
                    qyvol_common::escape_controls(n)
                ))
            })
    };
    let project = req
        .project
        .as_deref()
        .map(|p| name("project", p))
        .transpose()?;
    if let Some(p) = &project
        && p.contains('-')
    {
        return Err(bad(format!(
            "project `{p}`: a project's name is lowercase letters and digits, without `-` (its apps are named PROJECT-APP, which must say which project they belong to)"
        )));
    }
    let mut calls = Vec::new();
    for c in &req.calls {
        let called = name("`--calls`", c)?;
        let app = match &project {
            Some(p) => format!("{p}-{called}"),
            None => called.clone(),
        };
        if !calls.iter().any(|(k, _): &(String, String)| *k == called) {
            calls.push((called, app));
        }
    }
    let health = match &req.health {
        None => None,
        Some(path) => {
            if path.len() > 1024 {
                return Err(bad("`--health` is a path of at most 1024 bytes".into()));
            }
            if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c == ' ') {
                return Err(bad(format!(
                    "`--health {}`: give a path such as `/health`",
                    qyvol_common::escape_controls(path)
                )));
            }
            let every: qyvol_common::DurationSpec = req
                .health_interval
                .as_deref()
                .unwrap_or("10s")
                .parse()
                .map_err(|e: String| bad(format!("`--health-interval`: {e}")))?;
            let ms = u64::try_from(every.0.as_millis()).unwrap_or(u64::MAX);
            if ms < 100 {
                return Err(bad("`--health-interval` is at least 100ms".into()));
            }
            Some(crate::state::HealthSpec {
                path: path.clone(),
                interval_ms: ms,
            })
        }
    };
    Ok(Grouping {
        project,
        calls,
        health,
    })
}

/// `--memory-total`, checked against `--memory`: the app's instances together may not hold
/// less than one of them may.
pub(super) fn memory_total(req: &DeployRequest) -> Result<Option<u64>, NodeError> {
    let bad = NodeError::BadRequest;
    let Some(text) = &req.memory_total else {
        return Ok(None);
    };
    let total: qyvol_common::ByteSize = text
        .parse()
        .map_err(|e: String| bad(format!("`--memory-total {text}`: {e}")))?;
    if let Some(one) = &req.memory
        && let Ok(one) = one.parse::<qyvol_common::ByteSize>()
        && one.0 > total.0
    {
        return Err(bad(format!(
            "`--memory-total {total}` is less than `--memory {one}`: not even one instance could run; give a total of at least the memory of one"
        )));
    }
    Ok(Some(total.0))
}
