//! `qyvol volume create|ls|inspect|rm`: the node's named volumes, through its API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use qyvol_common::ByteSize;
use qyvol_node::VolumeView;

use super::{NodeArgs, block, check_name};
use crate::exit::Failure;
use crate::ui::{out, sanitize};

/// Manage the node's named volumes (`deploy --mount NAME:/data`)
#[derive(Debug, Args)]
pub struct VolumeCommand {
    #[command(subcommand)]
    action: VolumeAction,

    #[command(flatten)]
    target: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum VolumeAction {
    /// Create a volume
    Create { name: String },
    /// List volumes with their size and the apps that mount them
    Ls {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Show a volume as JSON
    Inspect { name: String },
    /// Remove a volume and its files (refused while an app mounts it)
    Rm { names: Vec<String> },
}

impl VolumeCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let client = self.target.client()?;
        match self.action {
            VolumeAction::Create { name } => {
                check_name(&name)?;
                let body = serde_json::json!({ "name": name });
                let v: VolumeView = block(async {
                    Ok(client
                        .json(Method::POST, "/api/v1/volumes", Some(&body))
                        .await?)
                })?;
                out(&v.name);
            }
            VolumeAction::Ls { json } => {
                let all: Vec<VolumeView> =
                    block(async { Ok(client.json(Method::GET, "/api/v1/volumes", None).await?) })?;
                if json {
                    out(&serde_json::to_string_pretty(&all).map_err(Failure::internal)?);
                } else {
                    out(&format!("{:<24} {:>10}  {}", "VOLUME", "SIZE", "USED BY"));
                    for v in &all {
                        let users = if v.users.is_empty() {
                            "-".to_string()
                        } else {
                            v.users.join(",")
                        };
                        out(&format!(
                            "{:<24} {:>10}  {}",
                            sanitize(&v.name),
                            ByteSize(v.bytes).to_string(),
                            sanitize(&users)
                        ));
                    }
                }
            }
            VolumeAction::Inspect { name } => {
                check_name(&name)?;
                let path = format!("/api/v1/volumes/{name}");
                let v: VolumeView =
                    block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
                out(&serde_json::to_string_pretty(&v).map_err(Failure::internal)?);
            }
            VolumeAction::Rm { names } => {
                for name in &names {
                    check_name(name)?;
                    let path = format!("/api/v1/volumes/{name}");
                    block(async {
                        Ok(client
                            .call(Method::DELETE, &path, Some(&serde_json::json!({})))
                            .await
                            .map(drop)?)
                    })?;
                    out(name);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
