//! What a launch may do, in plain terms: the grants it runs with (after the operator's flags,
//! the manifest and its environment's policy are merged) next to what its module's imports can
//! ask the host for. `qyvol inspect --policy` prints it; the node's dashboard shows the same.

use qyvol_common::GrantKind;
use qyvol_runtime::Uses;
use serde::Serialize;

use crate::Launch;

/// One granted folder.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    pub guest: String,
    pub host: String,
    pub writable: bool,
}

/// Where grants and imports disagree: something asked for and not granted, or granted and not
/// usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Note {
    /// It imports sockets or outgoing HTTP, but no network is granted: those calls are refused.
    NetworkImportedNotGranted,
    /// Network is granted, but nothing it imports can use it.
    NetworkGrantedNotImported,
    /// It imports the filesystem, but no folder is granted.
    FilesystemImportedNotGranted,
    /// Folders are granted, but it imports no filesystem call.
    FoldersGrantedNotImported,
    /// Variables are set, but it cannot read its environment.
    VariablesSetNotImported,
}

/// A launch's policy, as a person reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    pub environment: String,
    pub folders: Vec<Folder>,
    pub connect: Vec<String>,
    pub listen: Vec<String>,
    /// Loopback, link-local and private addresses need a grant naming them.
    pub private_blocked: bool,
    /// Names of the variables it gets (values may be secrets).
    pub variables: Vec<String>,
    pub memory: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    /// What a packaged manifest asks for that the operator did not grant.
    pub requested_folders: Vec<String>,
    pub requested_network: Vec<String>,
    pub uses: Uses,
    pub notes: Vec<Note>,
}

/// Where a module's `uses` and its grants (any network, any folder, any variable) disagree.
pub fn notes(uses: Uses, network: bool, folders: bool, variables: bool) -> Vec<Note> {
    let reaches_network = uses.sockets || uses.http_outgoing;
    [
        (reaches_network && !network, Note::NetworkImportedNotGranted),
        (network && !reaches_network, Note::NetworkGrantedNotImported),
        (
            uses.filesystem && !folders,
            Note::FilesystemImportedNotGranted,
        ),
        (folders && !uses.filesystem, Note::FoldersGrantedNotImported),
        (
            variables && !uses.environment,
            Note::VariablesSetNotImported,
        ),
    ]
    .into_iter()
    .filter_map(|(applies, note)| applies.then_some(note))
    .collect()
}

/// Describes `launch`.
pub fn describe(launch: &Launch) -> Policy {
    let request = &launch.request;
    let manifest = &launch.manifest;
    let uses = launch.wasm.info.uses();
    let grants = |kind: GrantKind| -> Vec<String> {
        request
            .network
            .iter()
            .filter(|g| g.kind == kind)
            .map(ToString::to_string)
            .collect()
    };
    let (connect, listen) = (grants(GrantKind::Connect), grants(GrantKind::Listen));
    let folders: Vec<Folder> = request
        .mounts
        .iter()
        .map(|m| Folder {
            guest: m.guest.clone(),
            host: m.host.display().to_string(),
            writable: !m.readonly,
        })
        .collect();
    let notes = notes(
        uses,
        !request.network.is_empty(),
        !folders.is_empty(),
        !request.env.is_empty(),
    );
    Policy {
        name: manifest.name.to_string(),
        environment: manifest.environment.as_str().to_string(),
        folders,
        connect,
        listen,
        private_blocked: request.block_private,
        variables: request.env.iter().map(|(k, _)| k.clone()).collect(),
        memory: request.limits.memory,
        timeout_ms: request
            .limits
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        fuel: request.limits.fuel,
        requested_folders: manifest
            .requested
            .mounts
            .iter()
            .map(ToString::to_string)
            .collect(),
        requested_network: manifest
            .requested
            .network
            .iter()
            .map(ToString::to_string)
            .collect(),
        uses,
        notes,
    }
}
