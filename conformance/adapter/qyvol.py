"""wasi-testsuite runtime adapter for Qyvol (loaded by the suite's own runner).

Turns a test's arguments, environment, root folder and proposals into a `qyvol` command line.
QYVOL names the binary (default: `qyvol` on PATH). Every grant a test needs is given on the
command line, as an operator would: the root folder as a mount at `/`, loopback for the
`sockets` and `http` proposals. Status lines are off (`-q`) so stdout is the guest's alone.
"""
import os
import shlex
import subprocess
from typing import Dict, List, Optional, Tuple

QYVOL = shlex.split(os.getenv("QYVOL", "qyvol"))

# What the `sockets` and `http` tests reach: servers the runner starts on loopback, sockets the
# guest binds and connects to itself. Nothing beyond loopback is granted.
LOOPBACK = [
    "127.0.0.1:*", "[::1]:*",
    "listen 127.0.0.1:*", "listen [::1]:*", "listen 0.0.0.0:*", "listen [::]:*",
]


def get_name() -> str:
    return "qyvol"


def get_version() -> str:
    out = subprocess.run(QYVOL[0:1] + ["--version"], encoding="UTF-8",
                         capture_output=True, check=True)
    return out.stdout.split()[1]


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip1", "wasm32-wasip3"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command", "wasi:http/service"]


def get_timeout_seconds() -> float:
    return 30.0


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    serving = wasi_world == "wasi:http/service"
    argv = list(QYVOL)
    # `serve -q` prints the address it listens on (port 0: one the system picks) as its first
    # line on stderr, where the runner reads it (without `-q`, the routes come first).
    if serving:
        argv += ["serve", "-q", "--listen", "127.0.0.1:0"]
    else:
        # The program's file name as argv[0], as wasmtime gives it (Qyvol's default is the
        # app's name, the file's stem for a bare module).
        argv += ["run", "-q", "--argv0", os.path.basename(test_path)]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    if root:
        argv += ["--mount", f"{root}:/"]
    if "sockets" in proposals or "http" in proposals:
        for grant in LOOPBACK:
            argv += ["--allow-net", grant]
    argv.append(test_path)
    if args:
        argv += ["--"] + args
    return argv
