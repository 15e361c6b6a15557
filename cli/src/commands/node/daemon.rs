//! `qyvol node`, the node itself (in the foreground, detached, or `node stop` to end it), and
//! `qyvol dashboard`, the one-time link into its web dashboard.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use qyvol_common::ByteSize;
use qyvol_node::client::{Client, Endpoint};
use qyvol_node::{NodeOptions, Paths};

use super::{NodeArgs, block};
use crate::exit::{Code, Failure};
use crate::i18n::Msg;
use crate::ui::{Ui, out, sanitize};

/// Start the node: keeps deployed apps running (foreground; `-d` to detach)
#[derive(Debug, Args)]
pub struct NodeCommand {
    #[command(subcommand)]
    action: Option<NodeAction>,

    /// Run in the background (pid and log in QYVOL_HOME/node/)
    #[arg(short = 'd', long)]
    detach: bool,

    /// Where deployed HTTP apps are served
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// Serve the API and the web dashboard on TCP at this address (token required), or `off`;
    /// on loopback, the same port of [::1] too [default: 127.0.0.1:7373]
    #[arg(long, value_name = "ADDR|off", value_parser = parse_api)]
    api: Option<ApiListen>,

    /// Another host name the TCP API answers to (besides loopback and its address)
    #[arg(long = "api-host", value_name = "HOST")]
    api_host: Vec<String>,

    /// Each app's log is rotated past this size (two files are kept)
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    log_max: ByteSize,

    /// Requests the apps' port handles at once (the rest wait their turn)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_concurrency: u32,

    /// Connections the apps' port keeps open at once (503 to one more); fewer if the limit on
    /// open files is low. One app's requests may hold at most half, unless deployed with
    /// `--concurrency`
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: u32,

    /// The most memory all apps' instances may hold together [default: half of the machine's]
    #[arg(long, value_name = "SIZE")]
    memory_total: Option<ByteSize>,

    /// The node's own log: text or json
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(flatten)]
    target: NodeArgs,
}

/// Where the node's TCP listener (API and dashboard) goes.
#[derive(Debug, Clone, Copy)]
enum ApiListen {
    At(SocketAddr),
    Off,
}

/// The default TCP listener: loopback only.
const DEFAULT_API: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7373);

fn parse_api(s: &str) -> Result<ApiListen, String> {
    if s == "off" {
        return Ok(ApiListen::Off);
    }
    s.parse()
        .map(ApiListen::At)
        .map_err(|e| format!("{e}: give an address such as 127.0.0.1:7373, or `off`"))
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// Stop the node running for this QYVOL_HOME (or --node)
    Stop,
}

impl NodeCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let ui = Ui { quiet: false };
        if let Some(NodeAction::Stop) = self.action {
            let client = self.target.client()?;
            ui.status(Msg::NodeStopping);
            return block(async {
                client
                    .call(
                        Method::POST,
                        "/api/v1/node/stop",
                        Some(&serde_json::json!({})),
                    )
                    .await?;
                // Gone when it let go of its lock (this machine's node), or when its port no
                // longer answers (another's).
                let local = match client.endpoint() {
                    Endpoint::Unix(_) => Some(Paths::of(&crate::commands::home()?)),
                    Endpoint::Tcp { .. } => None,
                };
                for _ in 0..400 {
                    let gone = match &local {
                        Some(paths) => qyvol_node::NodeLock::take(paths).is_ok(),
                        None => !client.listening().await,
                    };
                    if gone {
                        ui.status(Msg::NodeGone);
                        return Ok(ExitCode::SUCCESS);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(Failure::internal("the node did not stop within 20 seconds"))
            });
        }
        let home = crate::commands::home()?;
        let paths = Paths::of(&home);
        if self.detach {
            return self.detach(&paths, &ui);
        }
        init_node_log(&self.log_format);
        let lock = qyvol_node::NodeLock::take(&paths)?;
        std::fs::write(paths.pid(), std::process::id().to_string()).map_err(Failure::internal)?;
        let api = match self.api {
            None => Some(DEFAULT_API),
            Some(ApiListen::At(addr)) => Some(addr),
            Some(ApiListen::Off) => None,
        };
        let options = NodeOptions {
            http: self.http,
            api,
            api_hosts: self.api_host.clone(),
            log_max: self.log_max.0.max(4096),
            max_concurrency: self.max_concurrency,
            max_connections: self.max_connections,
            memory_total: self.memory_total.map(|m| m.0),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("qyvol-node")
            .build()
            .map_err(Failure::internal)?;
        let result = rt.block_on(async {
            let node = qyvol_node::Node::open(home, options)?;
            let listeners = qyvol_node::api::bind(&node).await?;
            let http = listeners
                .http
                .local_addr()
                .map_err(Failure::internal)?
                .to_string();
            node.reconcile().await?;
            ui.status(Msg::NodeUp(
                &node.paths().socket().display().to_string(),
                &http,
            ));
            if let Some(url) = node.dashboard() {
                ui.status(Msg::Dashboard(url));
            }
            qyvol_node::api::serve(node, listeners).await?;
            Ok::<_, Failure>(())
        });
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
        let _ = std::fs::remove_file(paths.pid());
        drop(lock);
        result.map(|()| ExitCode::SUCCESS)
    }

    /// Starts `qyvol node` again in the background, in its own process group, its output in
    /// the node's log, and waits until it answers.
    fn detach(&self, paths: &Paths, ui: &Ui) -> Result<ExitCode, Failure> {
        use std::os::unix::process::CommandExt;
        qyvol_common::create_private_dir(&paths.dir).map_err(Failure::internal)?;
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(paths.log())
            .map_err(Failure::internal)?;
        let exe = std::env::current_exe().map_err(Failure::internal)?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("node")
            .arg("--http")
            .arg(self.http.to_string())
            .arg("--log-max")
            .arg(self.log_max.0.to_string())
            .arg("--log-format")
            .arg(&self.log_format);
        match self.api {
            Some(ApiListen::At(addr)) => {
                cmd.arg("--api").arg(addr.to_string());
            }
            Some(ApiListen::Off) => {
                cmd.arg("--api").arg("off");
            }
            None => {}
        }
        for h in &self.api_host {
            cmd.arg("--api-host").arg(h);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(Failure::internal)?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(Failure::internal)?;
        let client = Client::new(Endpoint::Unix(paths.socket()));
        let pid = child.id().to_string();
        block(async {
            for _ in 0..400 {
                if let Ok(Some(status)) = child.try_wait() {
                    let tail = std::fs::read_to_string(paths.log()).unwrap_or_default();
                    let last = tail.lines().last().unwrap_or_default().to_string();
                    return Err(Failure::new(
                        Code::Internal,
                        Msg::NoNode,
                        format!("the node exited ({status}) at start: {last}"),
                    ));
                }
                if client.call(Method::GET, "/healthz", None).await.is_ok() {
                    ui.status(Msg::NodeDetached(&pid, &paths.log().display().to_string()));
                    let info: Option<qyvol_node::NodeInfo> =
                        client.json(Method::GET, "/api/v1/node", None).await.ok();
                    if let Some(url) = info.and_then(|i| i.dashboard) {
                        ui.status(Msg::Dashboard(&url));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            Err(Failure::internal(
                "the node did not answer within 10 seconds",
            ))
        })
    }
}

fn init_node_log(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QYVOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Print a one-time link that logs this browser into the node's web dashboard
#[derive(Debug, Args)]
pub struct DashboardCommand {
    #[command(flatten)]
    target: NodeArgs,
}

impl DashboardCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        #[derive(serde::Deserialize)]
        struct Link {
            url: String,
            expires_in_s: u64,
        }
        let client = self.target.client()?;
        // The link opens a session only with this value, of which the node (and whatever the
        // request crosses) sees only the digest.
        let verifier = qyvol_node::access::nonce().map_err(Failure::internal)?;
        let digest = qyvol_node::access::digest(verifier.as_bytes());
        let link: Link = block(async {
            Ok(client
                .json(
                    Method::POST,
                    "/api/v1/dashboard/login",
                    Some(&serde_json::json!({ "verifier": digest })),
                )
                .await?)
        })?;
        Ui { quiet: false }.status(Msg::LoginLink(link.expires_in_s / 60));
        out(&sanitize(&format!("{}?v={verifier}", link.url)));
        Ok(ExitCode::SUCCESS)
    }
}
