#!/usr/bin/env bash
# examples/mysql/run.sh: MariaDB over mutual TLS with minica certificates, on
# one machine. Issues a server identity (db) and a client identity (app),
# exports them in MySQL's conventions (`minica export --format mysql`: the
# usual file names and a my.cnf), starts a throw-away MariaDB on 127.0.0.1
# from that my.cnf with an account bound to the certificate (REQUIRE SUBJECT
# '/CN=app'), connects directly with TLS, then through minica-sidecar in the
# three modes:
#   1. outbound --protocol mysql: a plaintext client, TLS to the server;
#   2. inbound  --protocol mysql: a stock TLS client, plaintext to the server;
#   3. plain: outbound tcp -> inbound tcp (TLS from the first byte);
# and finally revokes app: after FLUSH SSL the server refuses it.
# Everything is stopped and removed at the end.
#
# Usage: examples/mysql/run.sh [--keep]
#   MINICA=path/to/minica SIDECAR=path/to/minica-sidecar (default: from PATH,
#   else $CARGO_TARGET_DIR/debug/, else target/debug/), BASE_PORT (default 18000), WORK (default: a temp dir).
#   --keep: leave everything running until Ctrl-C.
# Needs mariadbd, mariadb-install-db and mariadb (Debian: mariadb-server,
# mariadb-client).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
find_bin() {
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"
    elif [ -n "${CARGO_TARGET_DIR:-}" ] && [ -x "$CARGO_TARGET_DIR/debug/$1" ]; then echo "$CARGO_TARGET_DIR/debug/$1"
    elif [ -x "$root/target/debug/$1" ]; then echo "$root/target/debug/$1"
    else echo "error: $1 not found: run 'cargo build --workspace --bins' or put it on PATH" >&2; exit 2
    fi
}
MINICA=${MINICA:-$(find_bin minica)}
SIDECAR=${SIDECAR:-$(find_bin minica-sidecar)}
for tool in mariadbd mariadb-install-db mariadb; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is needed (apt-get install mariadb-server mariadb-client)" >&2; exit 2; }
done

BASE_PORT=${BASE_PORT:-18000}
WORK=${WORK:-$(mktemp -d -t minica-mysql.XXXXXX)}
TD=minica.internal
db_port=$((BASE_PORT + 6)); out_port=$((BASE_PORT + 7)); in_port=$((BASE_PORT + 8))
tcp_in=$((BASE_PORT + 9)); tcp_out=$((BASE_PORT + 10))
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    case "$WORK" in /tmp/minica-mysql.*) rm -rf "$WORK" ;; esac
}
trap cleanup EXIT

echo "== identities (minica issue) in $WORK"
home="$WORK/ca-home"
"$MINICA" issue db --home "$home" --dns localhost --ip 127.0.0.1 --out "$WORK/db" >/dev/null
"$MINICA" issue app --home "$home" --client --out "$WORK/app" >/dev/null
ls "$WORK/db" "$WORK/app"

echo "== in MySQL's conventions (minica export --format mysql)"
# --crl: the server checks CRLs of every level from the start, so that a
# revocation later needs only a refreshed crl.pem and FLUSH SSL.
"$MINICA" export db --home "$home" --identity "$WORK/db" --format mysql --crl --out "$WORK/db-mysql"
"$MINICA" export app --home "$home" --identity "$WORK/app" --format mysql --out "$WORK/app-mysql"
cat "$WORK/db-mysql/my.cnf"

echo "== MariaDB on 127.0.0.1:$db_port from db-mysql/my.cnf"
user_opt=()
[ "$(id -u)" = 0 ] && user_opt=(--user=root)   # mariadbd refuses to run as root otherwise
mariadb-install-db --no-defaults --datadir="$WORK/data" --auth-root-authentication-method=normal \
    --skip-test-db "${user_opt[@]}" >"$WORK/install.log" 2>&1
# --defaults-file: the exported [mysqld] section (ssl-ca, ssl-cert, ssl-key,
# ssl-crl, tls_version, require_secure_transport). The inbound and plain
# sidecar modes below reach this same server in plaintext from 127.0.0.1, so
# this demo turns require_secure_transport off; a real server keeps it ON.
mariadbd --defaults-file="$WORK/db-mysql/my.cnf" "${user_opt[@]}" --datadir="$WORK/data" \
    --port="$db_port" --bind-address=127.0.0.1 --socket="$WORK/sock" \
    --pid-file="$WORK/mariadbd.pid" --skip-name-resolve --skip-log-bin \
    --require-secure-transport=OFF \
    >"$WORK/mariadbd.log" 2>&1 & pids+=($!)
root_sql() { mariadb --no-defaults --socket="$WORK/sock" -uroot --batch -e "$1"; }
for _ in $(seq 100); do root_sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
root_sql "SELECT 1" >/dev/null || { echo "error: mariadbd did not start:"; cat "$WORK/mariadbd.log"; exit 1; } >&2
root_sql "CREATE USER app@'%' REQUIRE SUBJECT '/CN=app'; GRANT SELECT ON *.* TO app@'%';
          CREATE USER viasidecar@'127.0.0.1'; GRANT SELECT ON *.* TO viasidecar@'127.0.0.1';"

tls_client=(--ssl-ca="$WORK/app/ca.pem" --ssl-cert="$WORK/app/chain.pem"
            --ssl-key="$WORK/app/key.pem" --ssl-verify-server-cert)
session="SELECT CURRENT_USER() AS user, VARIABLE_VALUE AS ssl_version
         FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'"
ask() { # port user [client options...]
    local port=$1 user=$2; shift 2
    mariadb --no-defaults -h 127.0.0.1 -P "$port" -u "$user" --table "$@" -e "$session"
}
ask_cnf() { # port user: the [client] section of app's exported my.cnf
    mariadb --defaults-file="$WORK/app-mysql/my.cnf" -h 127.0.0.1 -P "$1" -u "$2" --table -e "$session"
}
wait_listening() { # route (its log says so once it listens)
    for _ in $(seq 100); do
        grep -q "route listening" "$WORK/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "error: route $1 did not start:" >&2; cat "$WORK/$1.log" >&2; exit 1
}

echo "== 0. directly, with app-mysql/my.cnf (the server checks REQUIRE SUBJECT)"
ask_cnf "$db_port" app
echo "-- without a client certificate (refused):"
ask "$db_port" app --ssl-ca="$WORK/app/ca.pem" --ssl-verify-server-cert 2>&1 || true

echo "== 1. outbound --protocol mysql: the client speaks plaintext, the server sees TLS from 'app'"
"$SIDECAR" outbound --protocol mysql --name db-out --listen "127.0.0.1:$out_port" \
    --upstream "127.0.0.1:$db_port" --server-name localhost --identity "$WORK/app" \
    --allow "spiffe://$TD/db" 2>"$WORK/db-out.log" & pids+=($!)
wait_listening db-out
ask "$out_port" app --skip-ssl

echo "== 2. inbound --protocol mysql: a stock TLS client, plaintext to the server"
"$SIDECAR" inbound --protocol mysql --name db-in --listen "127.0.0.1:$in_port" \
    --upstream "127.0.0.1:$db_port" --identity "$WORK/db" \
    --allow "spiffe://$TD/app" 2>"$WORK/db-in.log" & pids+=($!)
wait_listening db-in
ask "$in_port" viasidecar "${tls_client[@]}"
echo "-- a client without TLS (refused, no plaintext fallback):"
ask "$in_port" viasidecar --skip-ssl 2>&1 || true

echo "== 3. plain: outbound tcp -> inbound tcp (TLS from the first byte) -> server"
"$SIDECAR" inbound --name tcp-in --listen "127.0.0.1:$tcp_in" --upstream "127.0.0.1:$db_port" \
    --identity "$WORK/db" --allow "spiffe://$TD/app" 2>"$WORK/tcp-in.log" & pids+=($!)
"$SIDECAR" outbound --name tcp-out --listen "127.0.0.1:$tcp_out" --upstream "127.0.0.1:$tcp_in" \
    --server-name localhost --identity "$WORK/app" --allow "spiffe://$TD/db" \
    2>"$WORK/tcp-out.log" & pids+=($!)
wait_listening tcp-in; wait_listening tcp-out
ask "$tcp_out" viasidecar --skip-ssl

echo "== the sidecars' connection log lines"
sleep 0.2
grep -h "connection" "$WORK"/db-out.log "$WORK"/db-in.log "$WORK"/tcp-in.log | cut -c1-240

echo "== 4. minica revoke app, refresh the server's CRLs, FLUSH SSL"
"$MINICA" revoke app --home "$home"
"$MINICA" export db --home "$home" --identity "$WORK/db" --format mysql --out "$WORK/db-mysql" --force >/dev/null
root_sql "FLUSH SSL"
echo "-- app now (refused: its certificate is on the intermediate's CRL):"
ask_cnf "$db_port" app 2>&1 || true

if [ "${1:-}" = "--keep" ]; then
    echo "== running (work dir $WORK); Ctrl-C to stop"
    wait
fi
echo "== done"
