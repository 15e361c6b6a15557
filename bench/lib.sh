# Shared by bench/run.sh and bench/serve.sh (sourced from the repository's root): the folders,
# installing what a machine lacks, and the wasmtime CLI to compare with.
ROOT=$PWD
WORK=$ROOT/bench/work
WASMTIME_VERSION=48.0.8

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}

# wasmtime-cli at the version Qyvol embeds, in bench/work/tools; sets W to its path.
ensure_wasmtime() {
  W=$WORK/tools/bin/wasmtime
  if ! [ -x "$W" ] || ! "$W" --version | grep -q "$WASMTIME_VERSION"; then
    echo "installing wasmtime-cli $WASMTIME_VERSION (once; takes a while)"
    cargo install --quiet wasmtime-cli@"$WASMTIME_VERSION" --locked --root "$WORK/tools"
  fi
}
