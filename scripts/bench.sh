#!/usr/bin/env bash
# The performance suite: minica beside the tools users would pick instead
# (stunnel, HAProxy, cfssl, openssl, MariaDB's own TLS), measured in one run
# on this machine.
#
#   scripts/bench.sh            full run, writes docs/BENCHMARKS.md and docs/bench/*.svg
#   scripts/bench.sh --quick    the same in under ~2 minutes (shorter runs, fewer levels)
#   scripts/bench.sh --smoke --out DIR   seconds; checks the harness works (used by tests)
#   scripts/bench.sh --only sidecar|ca|mysql   one group again; the others keep their last figures
#   scripts/bench.sh --only idle   minica-sidecar's RSS per idle connection only (printed; no report)
#
# Installs what it needs when missing (Debian packages, matplotlib from PyPI),
# builds release binaries, and sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in stunnel4:stunnel4 haproxy:haproxy wrk:wrk iperf3:iperf3 hyperfine:hyperfine \
            cfssl:golang-cfssl openssl:openssl python3:python3 \
            mariadbd:mariadb-server mariadb-slap:mariadb-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing benchmark peers: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib

cargo build --release --workspace --bins --examples
exec python3 scripts/bench/bench.py --bin-dir target/release "$@"
