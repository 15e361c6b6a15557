//! A compose file's apps as the node's deploy requests: app `api` of project `shop` is the app
//! `shop-api`, deployed (or updated with zero downtime) with the project's grants for it.

use qyvol_common::ComposeApp;

use crate::{DeployRequest, SecretValue};

/// The node's name for app `app` of project `project`.
pub fn app_name(project: &str, app: &str) -> String {
    format!("{project}-{app}")
}

/// The deploy request for `app` of `project`, its secrets' values read by the caller.
pub fn deploy_request(project: &str, app: &ComposeApp, secrets: Vec<SecretValue>) -> DeployRequest {
    DeployRequest {
        source: app.source.clone(),
        name: Some(app_name(project, &app.name)),
        restart: app.restart.clone(),
        env: app.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        mounts: app.mounts.clone(),
        allow_net: app.allow_net.clone(),
        args: app.args.clone(),
        memory: app.memory.map(|m| m.0.to_string()),
        timeout: app.timeout.map(|t| t.to_string()),
        keyvalue: app.keyvalue.clone(),
        config: app.config.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        secrets,
        project: Some(project.to_string()),
        calls: app.calls.clone(),
        update: true,
        health: app.health.clone(),
        health_interval: app.health_interval.map(|d| d.to_string()),
        ..DeployRequest::default()
    }
}
