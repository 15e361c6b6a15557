//! `qyvol cache ls|clear`: the compile cache under `QYVOL_HOME/cache`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use qyvol_common::ByteSize;

use crate::exit::Failure;
use crate::i18n::{Msg, lang};
use crate::ui::{self, out};

/// Show or clear the compile cache
#[derive(Debug, Args)]
pub struct CacheCommand {
    #[command(subcommand)]
    action: CacheAction,
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// List cached native code, most recently used first
    Ls {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Remove all cached native code
    Clear,
}

/// The cache this process uses: `QYVOL_HOME/cache`, capped by `QYVOL_CACHE_MAX` (default 2GiB).
pub fn open() -> Result<qyvol_runtime::Cache, Failure> {
    let max = std::env::var("QYVOL_CACHE_MAX")
        .ok()
        .and_then(|v| v.parse::<ByteSize>().ok())
        .map_or(qyvol_runtime::DEFAULT_CACHE_MAX, |b| b.0);
    Ok(qyvol_runtime::Cache::new(super::home()?.cache(), max))
}

impl CacheCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let cache = open()?;
        match self.action {
            CacheAction::Ls { json } => {
                let entries = cache.entries().map_err(|e| {
                    Failure::internal(format!("cannot read `{}`: {e}", cache.dir().display()))
                })?;
                if json {
                    out(&serde_json::to_string_pretty(&entries).map_err(Failure::internal)?);
                    return Ok(ExitCode::SUCCESS);
                }
                out(&Msg::CacheHeader.text(lang()));
                for e in &entries {
                    let age = e.last_used.elapsed().map(|d| d.as_secs()).unwrap_or(0);
                    let tier = if e.upgrading {
                        Msg::TierUpgrading.text(lang())
                    } else {
                        e.tier.name().to_string()
                    };
                    out(&format!(
                        "{:<14}{:<11}{:<22}{:>10}  {:<26}{}",
                        e.sha256.get(..12).unwrap_or(&e.sha256),
                        e.kind,
                        tier,
                        ByteSize(e.size).to_string(),
                        e.fingerprint,
                        ui::ago(age)
                    ));
                }
                Ok(ExitCode::SUCCESS)
            }
            CacheAction::Clear => {
                let freed = cache.clear().map_err(|e| {
                    Failure::internal(format!("cannot clear `{}`: {e}", cache.dir().display()))
                })?;
                out(&Msg::CacheCleared(&ByteSize(freed).to_string()).text(lang()));
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
