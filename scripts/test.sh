#!/usr/bin/env bash
# Runs the whole test suite on a Debian machine with Rust.
# Installs the real peers the tests talk to when they are missing (openssl,
# curl, MariaDB, PostgreSQL, and the benchmark peers whose harness gets a smoke run),
# builds every binary once, then runs `cargo test --workspace`.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# command:package
peers=(openssl:openssl curl:curl python3:python3
       mariadbd:mariadb-server mariadb:mariadb-client
       stunnel4:stunnel4 haproxy:haproxy wrk:wrk iperf3:iperf3 hyperfine:hyperfine cfssl:golang-cfssl)
need=()
for pair in "${peers[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
# PostgreSQL's server tools (initdb, pg_ctl) live outside PATH on Debian, in
# /usr/lib/postgresql/<version>/bin; the tests look there too.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing test peers: ${need[*]}"
  $sudo apt-get update -qq
  # Installing mariadb-server must not leave a system MariaDB running: the
  # tests start their own servers on ephemeral ports.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  if [[ " ${need[*]} " == *" mariadb-server "* ]]; then
    $sudo service mariadb stop >/dev/null 2>&1 || true
  fi
  # Likewise PostgreSQL: the tests run their own clusters with initdb/pg_ctl.
  if [[ " ${need[*]} " == *" postgresql "* ]]; then
    $sudo service postgresql stop >/dev/null 2>&1 || true
  fi
fi
# The benchmark harness draws its plots with matplotlib.
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check matplotlib

# The end-to-end tests run the real binaries; build them once, in the same
# target directory and profile as the tests, so everything is shared.
cargo build --workspace --bins --examples
cargo test --workspace "$@"
