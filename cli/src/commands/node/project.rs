//! One project's apps deployed through a node's API, each after what it depends on and, when
//! it has a health check, once healthy: what `up`, `up -d` and `--watch` share.

use std::time::Duration;

use hyper::Method;
use qyvol_common::{Compose, ComposeApp};
use qyvol_node::client::Client;
use qyvol_node::{AppView, SecretValue};

use crate::exit::Failure;
use crate::i18n::Msg;
use crate::ui::Ui;

fn secrets_of(app: &ComposeApp) -> Result<Vec<SecretValue>, Failure> {
    Ok(crate::commands::state::read_secrets(&app.secrets)?
        .into_iter()
        .map(|(name, value)| SecretValue {
            name: name.to_string(),
            value: value.expose().to_string(),
        })
        .collect())
}

/// Deploys (or updates) one app and waits until it is ready: healthy, when it has a check.
pub(super) async fn deploy_app(
    client: &Client,
    project: &str,
    app: &ComposeApp,
    ui: &Ui,
) -> Result<AppView, Failure> {
    let req = qyvol_node::project::deploy_request(project, app, secrets_of(app)?);
    let body = serde_json::to_value(&req).map_err(Failure::internal)?;
    let view: AppView = client
        .json(Method::POST, "/api/v1/apps", Some(&body))
        .await?;
    if app.health.is_some() {
        let path = format!("/api/v1/apps/{}", view.name);
        for _ in 0..300 {
            let now: AppView = client.json(Method::GET, &path, None).await?;
            if now.health.as_deref() == Some("healthy") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    ui.status(Msg::Deployed(&view.name, view.state.as_str()));
    Ok(view)
}

/// Deploys every app of the project; then the project's apps the file no longer lists
/// (orphans, as Docker's compose calls them) are named, or removed with `remove_orphans`.
pub(super) async fn up_all(
    client: &Client,
    compose: &Compose,
    ui: &Ui,
    remove_orphans: bool,
) -> Result<(), Failure> {
    let project = compose.name.as_str();
    for app in &compose.apps {
        deploy_app(client, project, app, ui).await?;
    }
    let listed: Vec<String> = compose
        .apps
        .iter()
        .map(|a| qyvol_node::project::app_name(project, &a.name))
        .collect();
    let apps: Vec<AppView> = client
        .json(Method::GET, "/api/v1/apps?all=true", None)
        .await?;
    for orphan in apps
        .iter()
        .filter(|a| a.project.as_deref() == Some(project) && !listed.contains(&a.name))
    {
        if remove_orphans {
            let path = format!("/api/v1/apps/{}?force=true&keep_data=true", orphan.name);
            client
                .call(Method::DELETE, &path, Some(&serde_json::json!({})))
                .await?;
            ui.status(Msg::AppRemoved(&orphan.name));
        } else {
            ui.alert(Msg::Orphan(&orphan.name, project));
        }
    }
    Ok(())
}
