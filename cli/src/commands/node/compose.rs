//! `qyvol up [-d] [--watch]` and `qyvol down`: a compose file's apps as one project. `up -d`
//! deploys them to the node (each after what it depends on, waiting until healthy when it has a
//! health check; an app already there is updated with zero downtime). `up` in the foreground
//! runs the project on a node of its own (`QYVOL_HOME/projects/NAME/`), prints every app's log
//! lines with its name, and stops it all on Ctrl-C. `--watch` rebuilds and updates an app when
//! its files change. `down` removes a project's apps from the node.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use hyper::Method;
use qyvol_common::{COMPOSE_FILE, Compose};
use qyvol_node::client::{Client, Endpoint};
use qyvol_node::{AppView, NodeOptions, Paths};

use super::{NodeArgs, block};
use crate::exit::Failure;
use crate::i18n::Msg;
use crate::ui::{Ui, out, sanitize};

/// Start a compose file's apps together, as one project
#[derive(Debug, Args)]
pub struct UpCommand {
    /// The compose file
    #[arg(short, long, value_name = "FILE", default_value = COMPOSE_FILE)]
    file: PathBuf,

    /// Deploy the project to the node and return (default: run it here until Ctrl-C)
    #[arg(short, long)]
    detach: bool,

    /// Rebuild and update an app when its files change (only the app whose files changed)
    #[arg(long)]
    watch: bool,

    /// Remove the project's apps the file no longer lists (default: name them)
    #[arg(long)]
    remove_orphans: bool,

    /// Where the project's HTTP apps are served when it runs in the foreground
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: std::net::SocketAddr,

    #[command(flatten)]
    target: NodeArgs,
}

/// Remove a project's apps from the node
#[derive(Debug, Args)]
pub struct DownCommand {
    /// The compose file
    #[arg(short, long, value_name = "FILE", default_value = COMPOSE_FILE)]
    file: PathBuf,

    /// Also delete the apps' key-value buckets and the project's volumes (`data` is PROJECT-data)
    #[arg(long)]
    volumes: bool,

    #[command(flatten)]
    target: NodeArgs,
}

impl UpCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: false };
        let compose = Compose::load(&self.file)?;
        if self.detach {
            let client = self.target.client()?;
            block(async {
                super::project::up_all(&client, &compose, &ui, self.remove_orphans).await?;
                if self.watch {
                    crate::commands::node::watch::run(&client, &compose, &ui).await?;
                }
                Ok(ExitCode::SUCCESS)
            })
        } else {
            self.foreground(&compose, &ui)
        }
    }

    /// The project on a node of its own, its logs here, until Ctrl-C.
    fn foreground(&self, compose: &Compose, ui: &Ui) -> Result<ExitCode, Failure> {
        let home = crate::commands::home()?;
        let paths = Paths::of_project(&home, compose.name.as_str());
        qyvol_common::create_private_dir(&paths.dir).map_err(Failure::internal)?;
        let _lock = qyvol_node::NodeLock::take(&paths).map_err(|_| {
            Failure::new(
                crate::exit::Code::Refused,
                Msg::ProjectAlreadyUp,
                format!(
                    "project `{}` is already up (a `qyvol up` of it runs in another terminal): stop that one with Ctrl-C first",
                    compose.name
                ),
            )
        })?;
        let options = NodeOptions {
            http: self.http,
            api: None,
            ..NodeOptions::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("qyvol-up")
            .build()
            .map_err(Failure::internal)?;
        let result = rt.block_on(async {
            let node = qyvol_node::Node::open_at(home, paths.clone(), options)?;
            let listeners = qyvol_node::api::bind(&node).await?;
            let http = listeners.http.local_addr().map_err(Failure::internal)?;
            node.reconcile().await?;
            let serving = tokio::spawn(qyvol_node::api::serve(node.clone(), listeners));
            let client = Client::new(Endpoint::Unix(paths.socket()));
            super::project::up_all(&client, compose, ui, self.remove_orphans).await?;
            ui.status(Msg::ProjectUp(
                compose.name.as_str(),
                &format!("http://{http}/"),
            ));
            let width = compose.apps.iter().map(|a| a.name.len()).max().unwrap_or(0);
            for (i, app) in compose.apps.iter().enumerate() {
                let name = qyvol_node::project::app_name(compose.name.as_str(), &app.name);
                tokio::spawn(follow(
                    Client::new(Endpoint::Unix(paths.socket())),
                    name,
                    prefix(&app.name, width, i),
                ));
            }
            let watching = self.watch.then(|| {
                let (compose, client) =
                    (compose.clone(), Client::new(Endpoint::Unix(paths.socket())));
                tokio::spawn(async move {
                    let ui = Ui { quiet: false };
                    crate::commands::node::watch::run(&client, &compose, &ui).await
                })
            });
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                ended = serving => { ended.map_err(Failure::internal)??; }
            }
            if let Some(w) = watching {
                w.abort();
            }
            ui.status(Msg::ProjectStopping(compose.name.as_str()));
            node.request_shutdown();
            node.halt_all().await;
            Ok::<_, Failure>(())
        });
        rt.shutdown_timeout(Duration::from_secs(2));
        result.map(|()| ExitCode::SUCCESS)
    }
}

/// `name |` in the app's own colour on a terminal.
fn prefix(name: &str, width: usize, i: usize) -> String {
    const COLOURS: [u8; 6] = [36, 33, 32, 35, 34, 31];
    let padded = format!("{name:<width$} |");
    if std::io::stdout().is_terminal() {
        format!("\x1b[{}m{padded}\x1b[0m", COLOURS[i % COLOURS.len()])
    } else {
        padded
    }
}

/// Prints app `name`'s log lines as they come, after `prefix`.
async fn follow(client: Client, name: String, prefix: String) {
    let path = format!("/api/v1/apps/{name}/logs?follow=true&tail=0");
    let _ = client
        .lines(&path, None, |line| {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
                && let Some(text) = v["text"].as_str()
            {
                out(&format!("{prefix} {}", sanitize(text)));
            }
            true
        })
        .await;
}

impl DownCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: false };
        let compose = Compose::load(&self.file)?;
        let client = self.target.client()?;
        let project = compose.name.to_string();
        block(async {
            let apps: Vec<AppView> = client
                .json(Method::GET, "/api/v1/apps?all=true", None)
                .await?;
            // Dependents first: the reverse of the order they started in.
            let mut ours: Vec<&AppView> = apps
                .iter()
                .filter(|a| a.project.as_deref() == Some(&project))
                .collect();
            ours.sort_by_key(|a| {
                std::cmp::Reverse(
                    compose
                        .apps
                        .iter()
                        .position(|c| qyvol_node::project::app_name(&project, &c.name) == a.name),
                )
            });
            for app in ours {
                let path = format!(
                    "/api/v1/apps/{}?force=true&keep_data={}",
                    app.name, !self.volumes
                );
                client
                    .call(Method::DELETE, &path, Some(&serde_json::json!({})))
                    .await?;
                ui.status(Msg::AppRemoved(&app.name));
            }
            if self.volumes {
                let mut names: Vec<&str> = compose
                    .apps
                    .iter()
                    .flat_map(|a| &a.mounts)
                    .filter_map(|m| m.split_once(':').map(|(h, _)| h))
                    .filter(|h| qyvol_node::is_volume_name(h))
                    .collect();
                names.dedup();
                for v in names {
                    let path = format!("/api/v1/volumes/{v}");
                    if client
                        .call(Method::DELETE, &path, Some(&serde_json::json!({})))
                        .await
                        .is_ok()
                    {
                        ui.status(Msg::VolumeRemoved(v));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        })
    }
}
