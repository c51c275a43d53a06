#!/usr/bin/env bash
# examples/mesh/run.sh: two services, svc-a and svc-b, on one machine, each
# behind one minica-sidecar process with an inbound and an outbound route.
# Identities come from `minica issue`; `allow` lets only svc-a call svc-b and
# only svc-b call svc-a. The script calls each way, shows that a third
# identity (intruder) is refused, prints the metrics, and cleans up.
#
# Usage: examples/mesh/run.sh [--keep]
#   MINICA=path/to/minica SIDECAR=path/to/minica-sidecar (default: from PATH,
#   else target/debug/), BASE_PORT (default 17000), WORK (default: a temp dir).
#   --keep: leave everything running until Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
find_bin() {
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"
    elif [ -x "$root/target/debug/$1" ]; then echo "$root/target/debug/$1"
    elif [ -n "${CARGO_TARGET_DIR:-}" ] && [ -x "$CARGO_TARGET_DIR/debug/$1" ]; then echo "$CARGO_TARGET_DIR/debug/$1"
    else echo "error: $1 not found: run 'cargo build --workspace --bins' or put it on PATH" >&2; exit 2
    fi
}
MINICA=${MINICA:-$(find_bin minica)}
SIDECAR=${SIDECAR:-$(find_bin minica-sidecar)}
for tool in python3 curl openssl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done

BASE_PORT=${BASE_PORT:-17000}
WORK=${WORK:-$(mktemp -d -t minica-mesh.XXXXXX)}
TD=minica.internal
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Ports: app, inbound (mTLS), outbound (plaintext, local), admin.
a_app=$((BASE_PORT + 1));  a_in=$((BASE_PORT + 2));  a_out=$((BASE_PORT + 3));  a_admin=$((BASE_PORT + 4))
b_app=$((BASE_PORT + 11)); b_in=$((BASE_PORT + 12)); b_out=$((BASE_PORT + 13)); b_admin=$((BASE_PORT + 14))

echo "== identities (minica issue) in $WORK"
home="$WORK/ca-home"
for name in svc-a svc-b intruder; do
    "$MINICA" issue "$name" --home "$home" --out "$WORK/$name" >/dev/null
done

echo "== the two services (python3 -m http.server)"
for svc in a b; do
    mkdir -p "$WORK/www-$svc"
    echo "hello from svc-$svc" > "$WORK/www-$svc/index.html"
done
(cd "$WORK/www-a" && exec python3 -m http.server --bind 127.0.0.1 "$a_app" >"$WORK/app-a.log" 2>&1) & pids+=($!)
(cd "$WORK/www-b" && exec python3 -m http.server --bind 127.0.0.1 "$b_app" >"$WORK/app-b.log" 2>&1) & pids+=($!)

wait_http() { # port what
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$1/${3:-}" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $2 on port $1 did not come up (logs in $WORK)" >&2
    exit 1
}
wait_http "$a_app" "svc-a"
wait_http "$b_app" "svc-b"

# One sidecar per service: inbound (peers -> app) and outbound (app -> peer).
write_config() { # svc peer admin in app out peer_in
    cat > "$WORK/$1.toml" <<TOML
admin = "127.0.0.1:$3"

[[route]]
name = "$1-in"
direction = "inbound"
listen = "127.0.0.1:$4"
upstream = "127.0.0.1:$5"
identity = "$WORK/$1"
allow = ["spiffe://$TD/$2"]

[[route]]
name = "$1-to-$2"
direction = "outbound"
listen = "127.0.0.1:$6"
upstream = "127.0.0.1:$7"
identity = "$WORK/$1"
server_name = "$2"
allow = ["spiffe://$TD/$2"]
TOML
}
write_config svc-a svc-b "$a_admin" "$a_in" "$a_app" "$a_out" "$b_in"
write_config svc-b svc-a "$b_admin" "$b_in" "$b_app" "$b_out" "$a_in"

echo "== sidecars"
for svc in svc-a svc-b; do
    "$SIDECAR" check --config "$WORK/$svc.toml"
    "$SIDECAR" run --config "$WORK/$svc.toml" 2>"$WORK/$svc-sidecar.log" & pids+=($!)
done
wait_http "$a_admin" "svc-a's sidecar" readyz
wait_http "$b_admin" "svc-b's sidecar" readyz

echo "== svc-a calls svc-b through its outbound sidecar (plaintext on 127.0.0.1:$a_out)"
curl -fsS "http://127.0.0.1:$a_out/"
echo "== svc-b calls svc-a"
curl -fsS "http://127.0.0.1:$b_out/"

echo "== intruder (same CA, not in allow) tries svc-b's inbound directly"
if printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -quiet -connect "127.0.0.1:$b_in" \
    -CAfile "$WORK/intruder/ca.pem" -cert "$WORK/intruder/cert.pem" \
    -cert_chain "$WORK/intruder/chain.pem" -key "$WORK/intruder/key.pem" 2>/dev/null | grep -q "hello from"; then
    echo "FAIL: intruder got through" >&2; exit 1
fi
echo "refused, as it should be:"
sleep 0.3
curl -fs "http://127.0.0.1:$b_admin/metrics" | grep 'handshake_failures_total{route="svc-b-in".*reason="not_allowed"}'
grep -h "not allowed" "$WORK/svc-b-sidecar.log" | tail -1

echo "== one log line per connection (svc-b's sidecar)"
grep -h "connection closed" "$WORK/svc-b-sidecar.log" | tail -2

if [ "${1:-}" = "--keep" ]; then
    echo "== running; Ctrl-C to stop (work dir: $WORK)"
    wait
fi
echo "== done (logs in $WORK)"
