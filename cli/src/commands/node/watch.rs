//! `qyvol up --watch`: each app's watched files (its source's folder unless the compose file
//! lists others) are looked at twice a second; when they change and then hold still, only
//! that app is rebuilt (its manifest's `build.command`) and updated with zero downtime. A
//! build that fails prints its errors and leaves the last good version serving.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qyvol_common::{Compose, ComposeApp, LoadOptions, Manifest};
use qyvol_node::client::Client;

use crate::exit::Failure;
use crate::i18n::Msg;
use crate::ui::{Ui, sanitize};

/// How often the files are looked at, and how long they must hold still after a change.
const LOOK: Duration = Duration::from_millis(500);
const SETTLE: Duration = Duration::from_millis(300);
/// Folders never watched: build outputs and tools' own.
const SKIPPED: [&str; 3] = ["target", ".git", "node_modules"];
/// The most files one app's watch looks at.
const MAX_FILES: usize = 20_000;

pub(super) async fn run(client: &Client, compose: &Compose, ui: &Ui) -> Result<(), Failure> {
    let mut seen: Vec<u64> = compose.apps.iter().map(|a| fingerprint(&a.watch)).collect();
    for app in &compose.apps {
        if look(&app.watch).1 {
            ui.alert(Msg::WatchTooBig(&app.name, MAX_FILES));
        }
    }
    loop {
        tokio::time::sleep(LOOK).await;
        for (i, app) in compose.apps.iter().enumerate() {
            let mut now = fingerprint(&app.watch);
            if now == seen[i] {
                continue;
            }
            // Edits come in bursts (an editor's save, a formatter): wait for the last one.
            loop {
                tokio::time::sleep(SETTLE).await;
                let again = fingerprint(&app.watch);
                if again == now {
                    break;
                }
                now = again;
            }
            ui.status(Msg::Rebuilding(&app.name));
            let building = app.clone();
            let built = tokio::task::spawn_blocking(move || build(&building))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match built {
                Err(errors) => {
                    // Escaped line by line: the build's own lines stay lines.
                    let shown: Vec<String> = errors.lines().map(sanitize).collect();
                    ui.alert(Msg::BuildKept(&app.name, &shown.join("\n")));
                }
                Ok(()) => {
                    if let Err(e) =
                        super::project::deploy_app(client, compose.name.as_str(), app, ui).await
                    {
                        ui.alert(Msg::UpdateKept(&app.name, &sanitize(&e.detail)));
                    }
                }
            }
            // What the build wrote is not a change to act on.
            seen[i] = fingerprint(&app.watch);
        }
    }
}

/// Runs the app's manifest's `build.command` in its folder; its output when it fails.
fn build(app: &ComposeApp) -> Result<(), String> {
    let source = Path::new(&app.source);
    if source.extension().is_none_or(|e| e != "qyv") {
        return Ok(());
    }
    let manifest = Manifest::load(
        source,
        LoadOptions {
            unbuilt: true,
            ..LoadOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let Some(build) = manifest.build else {
        return Ok(());
    };
    let dir = source.parent().unwrap_or(Path::new("."));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", build.command))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(format!(
        "`{}` exited with {}:\n{}",
        build.command,
        out.status,
        text.trim_end()
    ))
}

/// A digest of the files under `paths` (names, sizes, modification times).
fn fingerprint(paths: &[PathBuf]) -> u64 {
    look(paths).0
}

/// [`fingerprint`]'s digest, and whether there were more than [`MAX_FILES`] files to look at.
fn look(paths: &[PathBuf]) -> (u64, bool) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    let mut files = 0;
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if p.file_name()
                .is_some_and(|n| SKIPPED.iter().any(|s| n == *s))
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&p) {
                let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                names.sort();
                stack.extend(names);
            }
        } else {
            files += 1;
            if files > MAX_FILES {
                return (h.finish(), true);
            }
            p.hash(&mut h);
            meta.len().hash(&mut h);
            meta.modified().ok().hash(&mut h);
        }
    }
    (h.finish(), false)
}
