//! `push`, `pull` and `login`: images shared through OCI registries.

use std::io::BufRead;
use std::process::ExitCode;

use clap::Args;
use qyvol_store::{Credentials, Reference, Remote, credentials, parse_reference};

use crate::exit::{Code, Failure};
use crate::i18n::{Msg, lang};
use crate::ui::{Ui, out, sanitize};

/// The credentials and transport for `reference`'s registry (`Remote::of`, as the node's), with
/// per-blob progress bars when stderr is a terminal.
pub fn remote(reference: &Reference, insecure: bool, quiet: bool) -> Result<Remote, Failure> {
    let home = super::home()?;
    let progress = crate::ui::TransferBars::new(quiet)
        .map(|b| std::sync::Arc::new(b) as std::sync::Arc<dyn qyvol_store::Progress>);
    Ok(Remote {
        progress,
        ..Remote::of(&home.root, reference, insecure).map_err(bad_timeout)?
    })
}

fn bad_timeout(why: String) -> Failure {
    Failure::new(Code::Usage, Msg::BadEnvVar, why)
}

/// Pulls `reference` into the store, printing its digest; used by `pull` and by `run REF`.
pub fn pull(reference: &Reference, insecure: bool, ui: &Ui) -> Result<String, Failure> {
    let remote = remote(reference, insecure, ui.quiet)?;
    ui.status(Msg::Pulling(&sanitize(&qyvol_store::canonical(reference))));
    let digest = super::images::store()?.pull(reference, &remote)?;
    ui.status(Msg::Digest(&digest));
    Ok(digest)
}

/// Send an image from the local store to its registry
#[derive(Debug, Args)]
pub struct PushCommand {
    /// The image, e.g. localhost:5000/hello:1
    #[arg(value_name = "REF")]
    reference: String,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
    /// Sign the pushed image with this private key, as `qyvol sign` does (the password on
    /// stdin or in QYVOL_KEY_PASSWORD)
    #[arg(long, value_name = "KEY")]
    sign: Option<std::path::PathBuf>,
}

impl PushCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let reference = parse_reference(&self.reference)?;
        // The key first: a wrong password must not leave an unsigned image behind.
        let signer = self.sign.as_deref().map(super::keys::signer).transpose()?;
        let store = super::images::store()?;
        let remote = remote(&reference, self.insecure, false)?;
        let digest = store.push(&reference, &remote)?;
        let shown = sanitize(&qyvol_store::canonical(&reference));
        out(&Msg::Pushed(&shown, &digest).text(lang()));
        if let Some(signer) = signer {
            // What was pushed, by digest: the tag may have moved since.
            let pushed = reference.clone_with_digest(digest.clone());
            let signed = store.sign(&pushed, &signer, &remote)?;
            out(&Msg::Signed(&shown, &signed).text(lang()));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Fetch an image from its registry into the local store
#[derive(Debug, Args)]
pub struct PullCommand {
    /// The image, e.g. localhost:5000/hello:1 or localhost:5000/hello@sha256:...
    #[arg(value_name = "REF")]
    reference: String,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
}

impl PullCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let reference = parse_reference(&self.reference)?;
        pull(&reference, self.insecure, &Ui { quiet: false })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Save credentials for a registry (the password is read from stdin, never from arguments)
#[derive(Debug, Args)]
pub struct LoginCommand {
    /// The registry, e.g. localhost:5000 or ghcr.io
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// The user name
    #[arg(short, long, value_name = "USER")]
    username: String,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
}

impl LoginCommand {
    pub fn execute(self) -> Result<ExitCode, Failure> {
        let mut password = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut password)
            .map_err(Failure::internal)?;
        let password = password.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(Failure::new(
                Code::Usage,
                Msg::BadFlag,
                "no password on stdin: pipe it in, e.g. `echo \"$TOKEN\" | qyvol login REGISTRY -u USER`",
            ));
        }
        let creds = Credentials {
            username: self.username,
            password,
        };
        let remote = Remote {
            credentials: Some(creds.clone()),
            insecure: self.insecure,
            timeout: qyvol_store::timeout_from_env().map_err(bad_timeout)?,
            progress: None,
        };
        qyvol_store::check_login(&self.registry, &remote)
            .map_err(|e| Failure::new(Code::Denied, Msg::DeniedGrant, e))?;
        credentials::save(&super::home()?.root, &self.registry, &creds)?;
        out(&Msg::LoggedIn(&sanitize(&self.registry)).text(lang()));
        Ok(ExitCode::SUCCESS)
    }
}
