# Sourced by scripts/hello and scripts/test: the Rust toolchain rust-toolchain.toml pins, installed
# explicitly, since rustup does not always install it by itself (RUSTUP_AUTO_INSTALL=0 is the
# default of rustup 1.28 and common on CI and shared machines). rust-toolchain.toml stays the one
# place that names the channel, its components and its targets.

# A step of the script, said before it starts (long steps say roughly how long).
say() { printf '\n==> %s\n' "$*" >&2; }

# Stops the script with a message that says what to do.
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

# The value of `KEY = "..."` or the items of `KEY = ["...", ...]` in rust-toolchain.toml.
toolchain_field() {
  sed -n "s/^$1 *= *//p" rust-toolchain.toml | grep -oE '"[^"]+"' | tr -d '"'
}

# ensure_toolchain minimal|full: installs the pinned channel when it is missing. `minimal` is
# what building and running qyvol needs (rustc, cargo, the host's std); `full` adds the
# components (clippy, rustfmt) and targets (the wasm guests) rust-toolchain.toml lists.
ensure_toolchain() {
  command -v rustup >/dev/null 2>&1 || die "rustup is not installed. Install it (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain none
then open a new shell (or run: . \"\$HOME/.cargo/env\") and run this command again."
  local channel
  channel=$(toolchain_field channel)
  [ -n "$channel" ] || die "rust-toolchain.toml names no channel"
  if ! rustup toolchain list | grep -q "^$channel-"; then
    say "Installing Rust $channel, pinned by rust-toolchain.toml (once; about 15 s and 600 MB)"
    rustup toolchain install "$channel" --profile minimal --no-self-update
  fi
  [ "$1" = full ] || return 0
  local have want missing=()
  have=$(rustup component list --installed --toolchain "$channel"; rustup target list --installed --toolchain "$channel")
  for want in $(toolchain_field components) $(toolchain_field targets); do
    printf '%s\n' "$have" | grep -qE "^($want|$want-.*|rust-std-$want)$" || missing+=("$want")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Adding to Rust $channel what rust-toolchain.toml lists for the tests: ${missing[*]}"
    rustup toolchain install --no-self-update
  fi
}
