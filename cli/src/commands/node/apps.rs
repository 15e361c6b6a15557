//! The deployed apps' verbs: `ps`, `stop`, `start`, `restart`, `rm`, and `inspect NAME`.

use std::process::ExitCode;

use clap::Args;
use hyper::Method;
use qyvol_common::ByteSize;
use qyvol_node::AppView;

use super::{NodeArgs, block, check_name, sanitize_line};
use crate::exit::Failure;
use crate::i18n::{Msg, lang};
use crate::ui::{Ui, out, sanitize};

/// List the node's apps
#[derive(Debug, Args)]
pub struct PsCommand {
    /// Also the apps that are not running
    #[arg(short, long)]
    all: bool,

    /// Output JSON for scripts
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    target: NodeArgs,
}

impl PsCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let client = self.target.client()?;
        let path = format!("/api/v1/apps?all={}", self.all);
        let apps: Vec<AppView> = block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
        if self.json {
            out(&serde_json::to_string_pretty(&apps).map_err(Failure::internal)?);
            return Ok(ExitCode::SUCCESS);
        }
        out(&Msg::PsHeader.text(lang()));
        let now = qyvol_node::state::now_ms();
        // Grouped by project (apps of none first), by name within one.
        let mut apps = apps;
        apps.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
        for a in &apps {
            let state = if a.crash_looping {
                "crash-loop".to_string()
            } else {
                match (a.state, a.exit_code) {
                    (qyvol_node::State::Exited, Some(c)) => format!("exited ({c})"),
                    (s, _) => s.as_str().to_string(),
                }
            };
            let up = match (a.state, a.started) {
                (qyvol_node::State::Running, Some(t)) => uptime(now.saturating_sub(t)),
                _ => "-".into(),
            };
            let module = a.module.trim_start_matches("sha256:");
            out(&format!(
                "{:<20} {:<8} {:<14} {:<10} {:<8} {:<10} {:<11} {:<13} {:<10} {}",
                sanitize(&a.name),
                a.kind.as_str(),
                state,
                a.restarts,
                up,
                ByteSize(a.memory).to_string(),
                a.requests,
                &module[..module.len().min(12)],
                a.health.as_deref().unwrap_or("-"),
                a.project
                    .as_deref()
                    .map_or_else(|| "-".to_string(), sanitize),
            ));
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// What `stop`, `start`, `restart` and `rm` do to each app named.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Stop,
    Start,
    Restart,
    Rollback,
}

/// Stop, start or restart apps
#[derive(Debug, Args)]
pub struct LifecycleCommand {
    #[command(flatten)]
    target: NodeArgs,

    /// The apps
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

impl LifecycleCommand {
    pub fn execute(self, verb: Verb) -> Result<ExitCode, Failure> {
        let action = match verb {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "restart",
            Verb::Rollback => "rollback",
        };
        each_app(&self.names, &self.target, |name| {
            let done = match verb {
                Verb::Stop => Msg::AppStopped(name),
                Verb::Start | Verb::Restart => Msg::AppStarted(name),
                Verb::Rollback => Msg::AppRolledBack(name),
            };
            (Method::POST, format!("/api/v1/apps/{name}/{action}"), done)
        })
    }
}

/// Checks every name, then makes one call per app (`call` gives its method, path and the line
/// printed once it is done), stopping at the first the node refuses.
fn each_app<'a>(
    names: &'a [String],
    target: &NodeArgs,
    call: impl Fn(&'a str) -> (Method, String, Msg<'a>),
) -> Result<ExitCode, Failure> {
    let ui = Ui { quiet: false };
    for n in names {
        check_name(n)?;
    }
    let client = target.client()?;
    block(async {
        for name in names {
            let (method, path, done) = call(name);
            client
                .call(method, &path, Some(&serde_json::json!({})))
                .await?;
            ui.status(done);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Remove apps from the node
#[derive(Debug, Args)]
pub struct RmCommand {
    /// Stop them first if they run
    #[arg(short, long)]
    force: bool,

    /// Keep their key-value buckets, for an app deployed again under the same name
    #[arg(long)]
    keep_data: bool,

    #[command(flatten)]
    target: NodeArgs,

    /// The apps
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

impl RmCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let (force, keep) = (self.force, self.keep_data);
        each_app(&self.names, &self.target, |name| {
            let path = format!("/api/v1/apps/{name}?force={force}&keep_data={keep}");
            (Method::DELETE, path, Msg::AppRemoved(name))
        })
    }
}

/// `inspect NAME`: a deployed app, as the node knows it.
pub fn inspect_app(name: &str, json: bool, target: &NodeArgs) -> Result<ExitCode, Failure> {
    let client = target.client()?;
    let path = format!("/api/v1/apps/{name}");
    let app: serde_json::Value = block(async { Ok(client.json(Method::GET, &path, None).await?) })?;
    if json {
        out(&serde_json::to_string_pretty(&app).map_err(Failure::internal)?);
    } else {
        let text = serde_yaml_like(&app, 0);
        out(&sanitize_line(text.trim_end()));
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSON value as indented `key: value` lines.
fn serde_yaml_like(v: &serde_json::Value, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                    format!("{pad}{k}:\n{}", serde_yaml_like(v, depth + 1))
                }
                other => format!("{pad}{k}: {}\n", scalar(other)),
            })
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                    format!("{pad}-\n{}", serde_yaml_like(i, depth + 1))
                }
                other => format!("{pad}- {}\n", scalar(other)),
            })
            .collect(),
        other => format!("{pad}{}\n", scalar(other)),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
