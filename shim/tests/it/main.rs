//! `containerd-shim-qyvol-v1` under a real containerd (Debian's packages; it needs root),
//! started by each test on a private root, state folder and socket with this build's shim on
//! its PATH: driven with `ctr` (`ctr`), and through containerd's CRI plugin as the kubelet
//! drives it, against containerd 1.6 and 1.7 (`cri`).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a broken fixture should fail the test loudly"
)]

mod cri;
mod ctr;
mod fixture;
