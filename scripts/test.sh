#!/usr/bin/env bash
# Runs the whole test suite on a Debian machine with Rust.
# Installs the real peers the tests talk to (openssl, curl, ...) when they are
# missing, builds every binary once, then runs `cargo test --workspace`.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing test peers: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The end-to-end tests run the real binaries; build them once, in the same
# target directory and profile as the tests, so everything is shared.
cargo build --workspace --bins
cargo test --workspace "$@"
