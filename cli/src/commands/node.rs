//! `qyvol node` and the verbs that talk to it (`deploy`, `ps`, `logs`, `stop`, `start`,
//! `restart`, `rm`, `events`, and `inspect NAME`). The node's logic is the `qyvol-node`
//! library; this file parses flags, calls it or its API, and prints.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use qyvol_common::{ByteSize, DurationSpec};
use qyvol_node::client::{Client, Endpoint};
use qyvol_node::{AppView, DeployRequest, Event, LogLine, NodeOptions, Paths};

use crate::exit::{Code, Failure};
use crate::i18n::{Msg, lang};
use crate::ui::{Ui, out, sanitize};

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
                    Endpoint::Unix(_) => Some(Paths::of(&super::home()?)),
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
        let home = super::home()?;
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

/// Deploy a manifest, bundle, wasm or image reference to the node
#[derive(Debug, Args)]
pub struct DeployCommand {
    /// The app's name (default: the manifest's)
    #[arg(long)]
    name: Option<String>,

    /// Restart policy: no, on-failure[:MAX], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    restart: String,

    /// Set an environment variable for the app (K=V), or copy K from this shell's environment
    /// (so a secret need not be on the command line)
    #[arg(short = 'e', long = "env", value_name = "K=V|K")]
    env: Vec<String>,

    /// Read variables from a file: K=V or K per line, # comments (as `docker run --env-file`)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<std::path::PathBuf>,

    /// Mount a host folder: HOST:GUEST[:ro|:rw]
    #[arg(long, value_name = "HOST:GUEST[:ro]")]
    mount: Vec<String>,

    /// Let the app connect to (or bind) HOST:PORT
    #[arg(long = "allow-net", value_name = "HOST:PORT")]
    allow_net: Vec<String>,

    /// Run a bundle's precompiled code instead of compiling its wasm (trust it as native code)
    #[arg(long)]
    allow_precompiled: bool,

    /// Allow plain HTTP to a registry that is not on loopback (when REF is pulled)
    #[arg(long)]
    insecure: bool,

    /// Memory limit of each instance, e.g. 64MiB
    #[arg(long, value_name = "SIZE")]
    memory: Option<ByteSize>,

    /// The most memory all the app's instances may hold together (its concurrent requests), e.g.
    /// 512MiB; a request past it is answered 503
    #[arg(long, value_name = "SIZE")]
    memory_total: Option<ByteSize>,

    /// An HTTP app's requests in progress at once (503 beyond) [default: half of the node's
    /// connections]
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,

    /// Time limit of each instance (a command's run, a request), e.g. 30s
    #[arg(long, value_name = "DURATION")]
    timeout: Option<DurationSpec>,

    /// Fuel limit of each instance
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,

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
        for pair in &self.env {
            pairs.push(
                qyvol_common::parse_env_pair(pair)
                    .map_err(|e| usage(format!("`-e {pair}`: {e}")))?,
            );
        }
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
        let mounts = self
            .mount
            .iter()
            .map(|m| match m.split_once(':') {
                Some((host, rest)) if !host.is_empty() => format!("{}:{rest}", absolute(host)),
                _ => m.clone(),
            })
            .collect();
        let req = DeployRequest {
            source,
            name: self.name.clone(),
            restart: Some(self.restart.clone()),
            env: self.env()?,
            mounts,
            allow_net: self.allow_net.clone(),
            allow_precompiled: self.allow_precompiled,
            args: self.args.clone(),
            insecure: self.insecure,
            memory: self.memory.map(|m| m.0.to_string()),
            memory_total: self.memory_total.map(|m| m.0.to_string()),
            concurrency: self.concurrency,
            timeout: self.timeout.map(|t| t.to_string()),
            fuel: self.fuel,
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
                "{:<20} {:<8} {:<14} {:<10} {:<8} {:<10} {:<11} {}",
                sanitize(&a.name),
                a.kind.as_str(),
                state,
                a.restarts,
                up,
                ByteSize(a.memory).to_string(),
                a.requests,
                &module[..module.len().min(12)]
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

/// Show an app's output
#[derive(Debug, Args)]
pub struct LogsCommand {
    /// Keep printing new lines as the app writes them
    #[arg(short, long)]
    follow: bool,

    /// Only the last N lines
    #[arg(long, value_name = "N")]
    tail: Option<usize>,

    /// Only lines since a time (RFC 3339) or for a duration back (e.g. 10m)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Show each line's time
    #[arg(short = 't', long)]
    timestamps: bool,

    #[command(flatten)]
    target: NodeArgs,

    /// The app
    #[arg(value_name = "NAME")]
    name: String,
}

fn since_ms(text: &str) -> Result<u64, Failure> {
    let bad = |e: String| {
        Failure::new(
            Code::Usage,
            Msg::BadFlag,
            format!(
                "`--since {text}`: {e}; write a duration like `10m` or a time like `2026-11-25T10:00:00Z`"
            ),
        )
    };
    let when = match text.parse::<DurationSpec>() {
        Ok(d) => std::time::SystemTime::now()
            .checked_sub(d.0)
            .ok_or_else(|| bad("too far back".into()))?,
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|e| bad(e.to_string()))?,
    };
    Ok(when
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl LogsCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let mut path = format!("/api/v1/apps/{}/logs?follow={}", self.name, self.follow);
        if let Some(n) = self.tail {
            path.push_str(&format!("&tail={n}"));
        }
        if let Some(s) = &self.since {
            path.push_str(&format!("&since={}", since_ms(s)?));
        }
        check_name(&self.name)?;
        let client = self.target.client()?;
        let stamps = self.timestamps;
        // What is there is sent at once; only a followed stream may go quiet.
        let idle = (!self.follow).then_some(std::time::Duration::from_secs(60));
        block(async {
            use std::io::Write;
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            client
                .lines(&path, idle, |raw| {
                    let Ok(line) = serde_json::from_slice::<LogLine>(raw) else {
                        return true;
                    };
                    let text = if stamps {
                        format!("{} {}\n", line.time, line.text)
                    } else {
                        format!("{}\n", line.text)
                    };
                    // A guest's bytes reach the terminal without its control sequences.
                    let text = sanitize_line(&text);
                    if line.stream == "stderr" {
                        stderr.lock().write_all(text.as_bytes()).is_ok()
                    } else {
                        let mut o = stdout.lock();
                        o.write_all(text.as_bytes())
                            .and_then(|()| o.flush())
                            .is_ok()
                    }
                })
                .await?;
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
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

/// What `stop`, `start`, `restart` and `rm` do to each app named.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Stop,
    Start,
    Restart,
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
        };
        each_app(&self.names, &self.target, |name| {
            let done = match verb {
                Verb::Stop => Msg::AppStopped(name),
                Verb::Start | Verb::Restart => Msg::AppStarted(name),
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

    #[command(flatten)]
    target: NodeArgs,

    /// The apps
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

impl RmCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let force = self.force;
        each_app(&self.names, &self.target, |name| {
            let path = format!("/api/v1/apps/{name}?force={force}");
            (Method::DELETE, path, Msg::AppRemoved(name))
        })
    }
}

/// Show the node's events as they happen
#[derive(Debug, Args)]
pub struct EventsCommand {
    /// Output JSON lines
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    target: NodeArgs,
}

impl EventsCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let client = self.target.client()?;
        let json = self.json;
        block(async {
            client
                .lines("/api/v1/events", None, |raw| {
                    if json {
                        out(&String::from_utf8_lossy(raw));
                    } else if let Ok(e) = serde_json::from_slice::<Event>(raw) {
                        out(&sanitize(&format!(
                            "{} {} {} {}",
                            e.time,
                            e.app,
                            e.action,
                            e.detail.unwrap_or_default()
                        )));
                    }
                    true
                })
                .await?;
            Ok(ExitCode::SUCCESS)
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
