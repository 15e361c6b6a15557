//! Density on one node through CRI: `QYVOL_DENSITY_PODS` pods (100 by default) of
//! `examples/http-hello` started as the kubelet starts them (`RunPodSandbox` under the `qyvol`
//! runtime class, `CreateContainer`, `StartContainer`, then an HTTP readiness probe on the pod's
//! IP until it answers 200), four at a time, on containerd `QYVOL_DENSITY_CONTAINERD` (`1.6`
//! or `1.7`), with the tests' node (shim/tests/it/fixture). Prints a Markdown section:
//! time to all-ready, each pod's start, and the memory of the shims, the guests' processes,
//! the pause processes and containerd, read from `/proc/PID/smaps_rollup` once all are ready.
//! `bench/cri-density.sh` runs it for both releases and writes bench/cri-density-results.md.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a bench whose node breaks should stop loudly"
)]
#![expect(clippy::print_stdout, reason = "the report is the bench's output")]

#[path = "../tests/it/fixture/mod.rs"]
#[expect(
    dead_code,
    reason = "the bench uses the CRI half of the tests' fixture"
)]
mod fixture;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fixture::cri::{Node, Release, Spec};

fn main() {
    let pods: usize = std::env::var("QYVOL_DENSITY_PODS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let release = match std::env::var("QYVOL_DENSITY_CONTAINERD").as_deref() {
        Ok("1.7") => Release::V1_7,
        Ok("1.6") | Err(_) => Release::V1_6,
        Ok(other) => panic!("QYVOL_DENSITY_CONTAINERD is 1.6 or 1.7, not {other}"),
    };
    let node = Node::start(release);
    let image = node.http_hello();
    let available_before = mem_available_kib();

    let started = Instant::now();
    let next = Mutex::new(0..pods);
    let starts = Mutex::new(Vec::with_capacity(pods));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    // Not in the loop's head: the guard would live through the whole body.
                    let Some(i) = next.lock().expect("lock").next() else {
                        break;
                    };
                    let begun = Instant::now();
                    let pod = node.run_pod(&format!("web-{i}"), &[]);
                    node.launch(&pod, &Spec::new("web", &image, &[]));
                    let deadline = begun + Duration::from_secs(120);
                    while node.get(&pod.ip, 8080, "/hello/ready").map(|(s, _)| s) != Ok(200) {
                        assert!(Instant::now() < deadline, "pod {i} never became ready");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    starts.lock().expect("lock").push(begun.elapsed());
                }
            });
        }
    });
    let all_ready = started.elapsed();
    // Idle, as pods mostly are, before the memory is read.
    std::thread::sleep(Duration::from_secs(3));
    let available_after = mem_available_kib();
    let groups = memory(&node, release);

    let mut starts = starts.into_inner().expect("lock");
    starts.sort();
    let at = |q: f64| starts[((starts.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let version = std::process::Command::new(release.binary())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    println!("## containerd {release:?}\n\n`{version}`; {pods} pods.\n");
    println!("| | time |\n|---|---|");
    println!(
        "| all {pods} pods ready | **{:.1} s** |",
        all_ready.as_secs_f64()
    );
    println!(
        "| one pod, `RunPodSandbox` → first 200: median | {} |",
        ms(at(0.5))
    );
    println!("| one pod: p90 | {} |", ms(at(0.9)));
    println!("| one pod: max | {} |\n", ms(at(1.0)));
    println!(
        "| processes | count | RSS | PSS | RSS per pod | PSS per pod |\n|---|---|---|---|---|---|"
    );
    for (name, (count, rss, pss)) in &groups {
        println!(
            "| {name} | {count} | {} | {} | {} | {} |",
            mib(*rss),
            mib(*pss),
            kib(*rss / pods as u64),
            kib(*pss / pods as u64)
        );
    }
    let (pods_rss, pods_pss) = groups
        .iter()
        .filter(|(name, _)| !name.starts_with("containerd"))
        .fold((0, 0), |(r, p), (_, (_, rss, pss))| (r + rss, p + pss));
    println!(
        "| **every pod's processes** | | {} | {} | {} | **{}** |",
        mib(pods_rss),
        mib(pods_pss),
        kib(pods_rss / pods as u64),
        kib(pods_pss / pods as u64)
    );
    let machine = available_before.saturating_sub(available_after);
    println!(
        "\nThe machine's `MemAvailable` fell by {} in all, {} per pod (the processes above, and what the kernel keeps for each pod: its network namespace and veth pair, cgroups, page tables, the pause container's mounts).\n",
        mib(machine),
        kib(machine / pods as u64)
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn kib(kib: u64) -> String {
    format!("{kib} KiB")
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("MemAvailable")
}

/// Every process of the node's pods and runtime, by kind: (count, RSS KiB, PSS KiB).
fn memory(node: &Node, release: Release) -> BTreeMap<&'static str, (u64, u64, u64)> {
    let containerd = release.binary().canonicalize().expect("containerd");
    let shim = Path::new(env!("CARGO_BIN_EXE_containerd-shim-qyvol-v1"))
        .canonicalize()
        .expect("the shim");
    let pods = node.cgroup_parent();
    let mut groups = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none()
        {
            continue;
        }
        let proc = entry.path();
        let exe = std::fs::read_link(proc.join("exe")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(proc.join("cgroup")).unwrap_or_default();
        let in_pod = cgroup.contains(&pods);
        let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(&*node.dir.path().to_string_lossy());
        let kind = if exe == containerd && ours {
            "containerd (one for the node)"
        } else if exe == shim && in_pod {
            "guests (the containers' processes: Qyvol's runtime, the instance)"
        } else if exe == shim {
            "shims (four per pod: the shim, its zygote, one holding each container)"
        } else if in_pod {
            "pause (one per pod)"
        } else {
            continue;
        };
        let rollup = std::fs::read_to_string(proc.join("smaps_rollup")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let group = groups.entry(kind).or_insert((0, 0, 0));
        group.0 += 1;
        group.1 += field("Rss:");
        group.2 += field("Pss:");
    }
    groups
}
