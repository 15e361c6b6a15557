//! `qyvol`: parses the command line, runs one command, prints its error once and exits with a
//! documented code. Each command lives in `commands/<verb>.rs` (the node's verbs in
//! `commands/node/`).

mod commands;
mod exit;
mod i18n;
mod ui;

use std::process::ExitCode;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::exit::{Code, Failure};
use crate::i18n::{Lang, Msg, lang};

/// Run WebAssembly functions and microservices from .qyv manifests
#[derive(Debug, Parser)]
#[command(name = "qyvol", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(commands::run::RunCommand),
    Serve(commands::serve::ServeCommand),
    Build(commands::build::BuildCommand),
    Inspect(commands::inspect::InspectCommand),
    Images(commands::images::ImagesCommand),
    Push(commands::registry::PushCommand),
    Pull(commands::registry::PullCommand),
    Key(commands::trust::KeyCommand),
    Sign(commands::trust::SignCommand),
    Verify(commands::trust::VerifyCommand),
    Login(commands::registry::LoginCommand),
    Tag(commands::images::TagCommand),
    Rmi(commands::images::RmiCommand),
    Prune(commands::images::PruneCommand),
    Save(commands::images::SaveCommand),
    Load(commands::images::LoadCommand),
    Kube(commands::kube::KubeCommand),
    Cache(commands::cache::CacheCommand),
    Completions(commands::completions::CompletionsCommand),
    Node(commands::node::NodeCommand),
    Dashboard(commands::node::DashboardCommand),
    Deploy(commands::node::DeployCommand),
    Ps(commands::node::PsCommand),
    Logs(commands::node::LogsCommand),
    /// Stop apps of the node
    Stop(commands::node::LifecycleCommand),
    /// Start stopped apps of the node
    Start(commands::node::LifecycleCommand),
    /// Restart apps of the node
    Restart(commands::node::LifecycleCommand),
    /// Return apps of the node to the version their last update replaced
    Rollback(commands::node::LifecycleCommand),
    Rm(commands::node::RmCommand),
    Events(commands::node::EventsCommand),
    Kv(commands::node::KvCommand),
    Up(commands::node::UpCommand),
    Down(commands::node::DownCommand),
    Volume(commands::node::VolumeCommand),
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == qyvol_runtime::tier::HELPER_ARG)
    {
        return tier_up_helper(&args.collect::<Vec<_>>());
    }
    qyvol_runtime::tier::enable_helper();
    init_tracing();
    if let Err(e) = qyvol_runtime::raise_open_files() {
        tracing::debug!(error = %e, "the limit on open descriptors stays as it was");
    }
    let matches = match localized_command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Code::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Code::Usage.into();
        }
    };
    let result = match cli.command {
        Command::Run(c) => c.execute(),
        Command::Serve(c) => c.execute(),
        Command::Build(c) => c.execute(),
        Command::Inspect(c) => c.execute(),
        Command::Images(c) => c.execute(),
        Command::Push(c) => c.execute(),
        Command::Pull(c) => c.execute(),
        Command::Key(c) => c.execute(),
        Command::Sign(c) => c.execute(),
        Command::Verify(c) => c.execute(),
        Command::Login(c) => c.execute(),
        Command::Tag(c) => c.execute(),
        Command::Rmi(c) => c.execute(),
        Command::Prune(c) => c.execute(),
        Command::Save(c) => c.execute(),
        Command::Load(c) => c.execute(),
        Command::Kube(c) => c.execute(),
        Command::Cache(c) => c.execute(),
        Command::Completions(c) => c.execute(localized_command()),
        Command::Node(c) => c.execute(),
        Command::Dashboard(c) => c.execute(),
        Command::Deploy(c) => c.execute(),
        Command::Kv(c) => c.execute(),
        Command::Up(c) => c.execute(),
        Command::Down(c) => c.execute(),
        Command::Volume(c) => c.execute(),
        Command::Ps(c) => c.execute(),
        Command::Logs(c) => c.execute(),
        Command::Stop(c) => c.execute(commands::node::Verb::Stop),
        Command::Start(c) => c.execute(commands::node::Verb::Start),
        Command::Restart(c) => c.execute(commands::node::Verb::Restart),
        Command::Rollback(c) => c.execute(commands::node::Verb::Rollback),
        Command::Rm(c) => c.execute(),
        Command::Events(c) => c.execute(),
    };
    result.unwrap_or_else(|failure| report(&failure))
}

fn report(failure: &Failure) -> ExitCode {
    let text = match failure.headline.as_ref() {
        Some(h) => format!("{}: {}", h.text(lang()), failure.detail),
        None => failure.detail.clone(),
    };
    ui::Ui { quiet: false }.alert(Msg::Error(&ui::sanitize(&text)));
    failure.code.into()
}

/// Diagnostics for Qyvol's developers: `QYVOL_LOG=debug`. Off by default.
fn init_tracing() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("QYVOL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The clap command with help in the user's language and examples under each command.
/// The background half of a tiered first run (`qyvol_runtime::tier`): not a command users type.
fn tier_up_helper(args: &[std::ffi::OsString]) -> ExitCode {
    match qyvol_runtime::tier::helper_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qyvol {}: {e}", qyvol_runtime::tier::HELPER_ARG);
            match e {
                qyvol_runtime::tier::HelperError::Usage => Code::Usage.into(),
                _ => Code::Internal.into(),
            }
        }
    }
}

fn localized_command() -> clap::Command {
    let lang = lang();
    let mut cmd = Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    // Localising every argument of every subcommand is most of what a warm `qyvol run` spends
    // before it runs anything (clap moves its vectors on each edit); only the subcommand this
    // process runs or shows help for needs its arguments, the others their one-line about.
    let invoked = invoked_subcommand(&names);
    for name in names {
        let full = invoked.as_deref().is_none_or(|i| i == name.as_str());
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match i18n::examples(&name, lang) {
                Some(ex) => sub.after_help(ex),
                None => sub,
            };
            match (lang, full) {
                (Lang::Es, true) => {
                    spanish(sub.disable_version_flag(true).arg(version_flag()), &name)
                }
                (Lang::Es, false) => match i18n::help_es(&name) {
                    Some(about) => sub.about(about),
                    None => sub,
                },
                (Lang::En, _) => sub,
            }
        });
    }
    if lang == Lang::Es {
        cmd = spanish(cmd.disable_version_flag(true).arg(version_flag()), "qyvol")
            .subcommand_help_heading("Comandos");
        // clap adds its `help` subcommand when the command is built (all of it, so only when
        // it can be shown: no subcommand was named, or it is `help`); localise it after.
        if invoked.is_none() || std::env::args().nth(1).as_deref() == Some("help") {
            cmd.build();
            if let Some(about) = i18n::help_es("help") {
                cmd = cmd.mut_subcommand("help", |h| h.about(about));
            }
        }
    }
    cmd
}

/// The subcommand this process runs (for `qyvol help CMD`, the one it shows), when the command
/// line names one; `None` when every subcommand may be shown (`completions`, no subcommand).
fn invoked_subcommand(names: &[String]) -> Option<String> {
    let mut words = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let first = words.next()?;
    let named = if first == "help" {
        words.next()?
    } else {
        first
    };
    (named != "completions" && names.contains(&named)).then_some(named)
}

/// `-V, --version` with Spanish help (clap's own is replaced to localise it).
fn version_flag() -> Arg {
    Arg::new("version")
        .short('V')
        .long("version")
        .action(ArgAction::Version)
        .help(i18n::help_es("qyvol.version"))
}

fn spanish(cmd: clap::Command, key: &str) -> clap::Command {
    let mut cmd = cmd
        .help_template("{before-help}{about-with-newline}\nUso: {usage}\n\n{all-args}{after-help}")
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help(i18n::help_es("qyvol.help")),
        );
    if let Some(about) = i18n::help_es(key) {
        cmd = cmd.about(about);
    }
    // A command's own subcommands (`key generate`), keyed under it; the root's are done apart.
    if key != "qyvol" {
        let subs: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for sub in subs {
            let nested = format!("{key}.{sub}");
            cmd = cmd.mut_subcommand(&sub, |s| spanish(s, &nested));
        }
    }
    let ids: Vec<(String, bool)> = cmd
        .get_arguments()
        .map(|a| (a.get_id().to_string(), a.is_positional()))
        .collect();
    for (order, (id, positional)) in ids.into_iter().enumerate() {
        let help = i18n::help_es(&format!("{key}.{id}"));
        cmd = cmd.mut_arg(&id, |a| {
            let a = a
                .help_heading(if positional { "Argumentos" } else { "Opciones" })
                .display_order(order);
            match help {
                Some(h) => a.help(h),
                None => a,
            }
        });
    }
    cmd
}
