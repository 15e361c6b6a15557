//! `qyvol deploy`: its flags become the node's deploy request, with paths made absolute and
//! variables read here, so the node never sees this shell's environment.

use std::process::ExitCode;

use clap::Args;
use hyper::Method;
use qyvol_common::ByteSize;
use qyvol_node::{AppView, DeployRequest};

use super::{NodeArgs, block};
use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::{Ui, out};

/// Deploy a manifest, bundle, wasm or image reference to the node
#[derive(Debug, Args)]
pub struct DeployCommand {
    /// The app's name (default: the manifest's)
    #[arg(long)]
    name: Option<String>,

    /// The grants and limits of each instance (a command's run, a request), as `qyvol run`
    /// takes them
    #[command(flatten)]
    grants: crate::commands::run::GrantArgs,

    /// Restart policy: no, on-failure[:MAX], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    restart: String,

    /// Read variables from a file: K=V or K per line, # comments (as `docker run --env-file`)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<std::path::PathBuf>,

    /// Allow plain HTTP to a registry that is not on loopback (when REF is pulled)
    #[arg(long)]
    insecure: bool,

    /// The most memory all the app's instances may hold together (its concurrent requests), e.g.
    /// 512MiB; a request past it is answered 503
    #[arg(long, value_name = "SIZE")]
    memory_total: Option<ByteSize>,

    /// An HTTP app's requests in progress at once (503 beyond) [default: half of the node's
    /// connections]
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,

    /// Replace the running app of this name with zero downtime (deploy it if there is none):
    /// the new version takes the route once ready, requests in flight finish on the old one
    #[arg(long)]
    update: bool,

    /// An HTTP app's health check: a path that answers 2xx when it is well; an update's new
    /// version must pass it before it takes the route
    #[arg(long, value_name = "PATH")]
    health: Option<String>,

    /// How often the health check runs [default: 10s]
    #[arg(long, value_name = "DUR", requires = "health")]
    health_interval: Option<qyvol_common::DurationSpec>,

    /// An app of the same project this one may call by name (`http://NAME/`), in process
    #[arg(long, value_name = "NAME")]
    calls: Vec<String>,

    /// The project the app belongs to (`qyvol up -d` sets it; `qyvol down` removes it)
    #[arg(long, value_name = "NAME")]
    project: Option<String>,

    /// Print the deployed app as JSON
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    target: NodeArgs,

    /// What to deploy: a .qyv manifest, .qyvc bundle, .wasm, or image reference
    #[arg(value_name = "FILE|REF")]
    source: String,

    /// Arguments for the app
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// A path the operator typed, made absolute for the node (which has another working folder).
fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

/// The most an env file may hold (a deploy request is at most 1 MiB).
const MAX_ENV_FILE: u64 = 512 * 1024;

impl DeployCommand {
    /// `K=V` for each `--env-file` line then each `-e`, a bare `K` taken from this process's
    /// environment here: the node never copies its own, and a value read from a file or the
    /// environment is not on the command line, where other users see it (`/proc/PID/cmdline`).
    fn env(&self) -> Result<Vec<String>, Failure> {
        let usage = |e: String| Failure::new(Code::Usage, Msg::BadFlag, e);
        let mut pairs = Vec::new();
        for file in &self.env_file {
            use std::io::Read;
            let shown = file.display();
            let mut text = String::new();
            std::fs::File::open(file)
                .and_then(|f| f.take(MAX_ENV_FILE + 1).read_to_string(&mut text))
                .map_err(|e| usage(format!("`--env-file {shown}`: {e}")))?;
            if text.len() as u64 > MAX_ENV_FILE {
                return Err(usage(format!(
                    "`--env-file {shown}` is larger than {MAX_ENV_FILE} bytes"
                )));
            }
            pairs.extend(
                qyvol_common::parse_env_file(&text)
                    .map_err(|e| usage(format!("`--env-file {shown}`, {e}")))?,
            );
        }
        pairs.extend(self.grants.env.iter().cloned());
        pairs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Some(v) => v,
                    None => {
                        qyvol_launch::grants::from_caller(&k).map_err(|e| usage(e.to_string()))?
                    }
                };
                Ok(format!("{k}={v}"))
            })
            .collect()
    }

    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: self.json };
        let source = if std::path::Path::new(&self.source)
            .symlink_metadata()
            .is_ok()
        {
            absolute(&self.source)
        } else {
            self.source.clone()
        };
        let g = &self.grants;
        let mounts = g
            .mount
            .iter()
            .map(|m| {
                let mode = match m.readonly {
                    Some(true) => ":ro",
                    Some(false) => ":rw",
                    None => "",
                };
                // A volume's name stays a name (`data:/data`); a path is made absolute.
                let host = m.host.to_string_lossy();
                let host = if qyvol_node::is_volume_name(&host) {
                    host.into_owned()
                } else {
                    absolute(&host)
                };
                format!("{host}:{}{mode}", m.guest.as_str())
            })
            .collect();
        let req = DeployRequest {
            source,
            name: self.name.clone(),
            restart: Some(self.restart.clone()),
            env: self.env()?,
            mounts,
            allow_net: g.allow_net.iter().map(ToString::to_string).collect(),
            allow_precompiled: g.allow_precompiled,
            no_precompiled: g.no_precompiled,
            args: self.args.clone(),
            insecure: self.insecure,
            memory: g.memory.map(|m| m.0.to_string()),
            memory_total: self.memory_total.map(|m| m.0.to_string()),
            concurrency: self.concurrency,
            timeout: g.timeout.map(|t| t.to_string()),
            fuel: g.fuel,
            environment: g.environment.map(|e| e.as_str().to_string()),
            allow_outside: g.allow_outside,
            max_module_size: Some(g.max_module_size.0.to_string()),
            compile_timeout: Some(g.compile_timeout.to_string()),
            project: self.project.clone(),
            calls: self.calls.clone(),
            update: self.update,
            health: self.health.clone(),
            health_interval: self.health_interval.map(|d| d.to_string()),
            keyvalue: g.keyvalue.iter().map(ToString::to_string).collect(),
            config: g.config.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            secrets: crate::commands::state::read_secrets(&g.secret)?
                .into_iter()
                .map(|(name, value)| qyvol_node::SecretValue {
                    name: name.to_string(),
                    value: value.expose().to_string(),
                })
                .collect(),
        };
        let body = serde_json::to_value(&req).map_err(Failure::internal)?;
        let client = self.target.client()?;
        let app: AppView = block(async {
            Ok(client
                .json(Method::POST, "/api/v1/apps", Some(&body))
                .await?)
        })?;
        if self.json {
            out(&serde_json::to_string_pretty(&app).map_err(Failure::internal)?);
        } else {
            ui.status(Msg::Deployed(&app.name, app.state.as_str()));
        }
        Ok(ExitCode::SUCCESS)
    }
}
