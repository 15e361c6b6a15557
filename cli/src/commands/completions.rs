//! `qyvol completions SHELL`: prints a completion script.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

use crate::exit::Failure;

/// Print the shell completion script for a shell
#[derive(Debug, Args)]
pub struct CompletionsCommand {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

impl CompletionsCommand {
    pub fn execute(self, mut cmd: clap::Command) -> Result<ExitCode, Failure> {
        clap_complete::generate(self.shell, &mut cmd, "qyvol", &mut std::io::stdout());
        Ok(ExitCode::SUCCESS)
    }
}
