//! `qyvol node` and the verbs that talk to it (`deploy`, `ps`, `logs`, `stop`, `start`,
//! `restart`, `rm`, `events`, and `inspect NAME`). The node's logic is the `qyvol-node`
//! library; these files parse flags, call it or its API, and print. This one holds what every
//! verb shares: which node it talks to, how a call is run, and the checks on names and lines.

mod apps;
mod compose;
mod daemon;
mod deploy;
mod kv;
mod logs;
mod project;
mod volume;
mod watch;

pub use apps::{LifecycleCommand, PsCommand, RmCommand, Verb, inspect_app};
pub use compose::{DownCommand, UpCommand};
pub use daemon::{DashboardCommand, NodeCommand};
pub use deploy::DeployCommand;
pub use kv::KvCommand;
pub use logs::{EventsCommand, LogsCommand};
pub use volume::VolumeCommand;

use clap::Args;
use qyvol_node::Paths;
use qyvol_node::client::{Client, Endpoint};

use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::sanitize;

/// Which node a verb talks to.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's API, e.g. http://10.0.0.5:7373 (default: this machine's, on its socket)
    #[arg(long = "node", env = "QYVOL_NODE", value_name = "URL", global = true)]
    node: Option<String>,

    /// The node's token, for a node reached over TCP (its QYVOL_HOME/node/token)
    #[arg(
        long,
        env = "QYVOL_TOKEN",
        value_name = "TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
}

impl NodeArgs {
    fn client(&self) -> Result<Client, Failure> {
        let endpoint = match &self.node {
            Some(url) => Endpoint::parse(url, self.token.clone())
                .map_err(|e| Failure::new(Code::Usage, Msg::BadFlag, e))?,
            None => Endpoint::Unix(Paths::of(&super::home()?).socket()),
        };
        Ok(Client::new(endpoint))
    }
}

/// Runs a call on a small runtime of its own.
fn block<T>(f: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::internal)?
        .block_on(f)
}

/// Control characters other than newline and tab removed.
fn sanitize_line(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

/// An app name as the node accepts it; refused here so a path cannot be smuggled into a URL.
fn check_name(name: &str) -> Result<(), Failure> {
    qyvol_common::AppName::try_from(name.to_string())
        .map(drop)
        .map_err(|e| {
            Failure::new(
                Code::Usage,
                Msg::BadFlag,
                format!("`{}`: {e}", sanitize(name)),
            )
        })
}
