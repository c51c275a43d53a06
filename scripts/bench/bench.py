#!/usr/bin/env python3
"""The minica performance suite: minica beside stunnel, HAProxy, cfssl and openssl.

Run through scripts/bench.sh, which installs the tools and builds release
binaries. Every server listens on 127.0.0.1; every load loop is bounded in
time. Figures are written to a Markdown report with SVG plots; nothing here
asserts a figure.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LUA = Path(__file__).resolve().parent / "wrk-report.lua"
# Sampled before anything runs: the benchmark's own load must not count.
LOAD_AT_START = os.getloadavg()

MODES = {
    # seconds per wrk run, concurrency levels, idle connection counts, iperf3 seconds, hyperfine runs
    "full": dict(secs=10, levels=[1, 16, 64, 256], idle=[1000, 10000], iperf=10, runs=30, newconn_c=16, mysql_queries=50000,
                 enrolments=3000, enrol_conns=32),
    "quick": dict(secs=3, levels=[1, 32], idle=[1000], iperf=3, runs=10, newconn_c=16, mysql_queries=20000,
                  enrolments=600, enrol_conns=32),
    "smoke": dict(secs=1, levels=[4], idle=[50], iperf=1, runs=2, newconn_c=4, mysql_queries=500,
                  enrolments=20, enrol_conns=4),
}


def raise_fd_limit():
    """As many file descriptors as we may have: 10,000 idle connections
    through a proxy need over 20,000 in each proxy process. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1 << 20, 1 << 17, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return want
        except (ValueError, OSError):
            continue
    return soft


def haproxy_maxconn():
    """HAProxy refuses to start when maxconn needs more descriptors than allowed."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(100, min(60000, (soft - 200) // 2))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Procs:
    """Child processes that are always stopped, even when a step fails."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def spawn(self, name, cmd):
        log = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def proc_cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / tick


def proc_rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


# ---------------------------------------------------------------- certificates

def make_certs(bins, work):
    """Server and client identities from `minica issue` (ECDSA P-256), plus
    the combined PEM files HAProxy wants."""
    home = work / "ca-home"
    minica = str(bins / "minica")
    run([minica, "--home", str(home), "issue", "bench-server", "--dns", "localhost",
         "--ip", "127.0.0.1", "--out", str(work / "server")])
    run([minica, "--home", str(home), "issue", "bench-client", "--out", str(work / "client")])
    for side in ("server", "client"):
        d = work / side
        (d / "haproxy.pem").write_text((d / "chain.pem").read_text() + (d / "key.pem").read_text())
    return home


# ---------------------------------------------------------------- backends

def start_http_backend(procs, work):
    """HAProxy answering every request with a fixed 200: the same fast
    keepalive backend behind every pair."""
    port = free_port()
    cfg = work / "backend-http.cfg"
    cfg.write_text(f"""global
  nbthread 1
  maxconn {haproxy_maxconn()}
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
frontend app
  bind 127.0.0.1:{port}
  http-request return status 200 content-type text/plain string "hello from the backend"
""")
    procs.spawn("backend-http", ["haproxy", "-db", "-f", str(cfg)])
    wait_port(port)
    return port


def start_iperf_backend(procs):
    port = free_port()
    procs.spawn("backend-iperf", ["iperf3", "-s", "-p", str(port)])
    wait_port(port)
    return port


# ---------------------------------------------------------------- the pairs

def pair_minica(procs, bins, work, backend):
    front, middle = free_port(), free_port()
    sidecar = str(bins / "minica-sidecar")
    common = ["--max-connections", "60000"]
    inbound = procs.spawn("minica-in", [sidecar, "inbound", "--listen", f"127.0.0.1:{middle}",
                                        "--upstream", f"127.0.0.1:{backend}",
                                        "--identity", str(work / "server"),
                                        "--allow", "spiffe://minica.internal/bench-client", *common])
    wait_port(middle)
    outbound = procs.spawn("minica-out", [sidecar, "outbound", "--listen", f"127.0.0.1:{front}",
                                          "--upstream", f"127.0.0.1:{middle}",
                                          "--server-name", "bench-server",
                                          "--identity", str(work / "client"),
                                          "--allow", "spiffe://minica.internal/bench-server", *common])
    wait_port(front)
    return front, [outbound.pid, inbound.pid]


def pair_stunnel(procs, bins, work, backend):
    front, middle = free_port(), free_port()
    ca = work / "server" / "ca.pem"
    server_cfg = work / "stunnel-in.conf"
    server_cfg.write_text(f"""foreground = yes
pid =
debug = 3
[in]
accept = 127.0.0.1:{middle}
connect = 127.0.0.1:{backend}
cert = {work / 'server' / 'chain.pem'}
key = {work / 'server' / 'key.pem'}
CAfile = {ca}
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
""")
    client_cfg = work / "stunnel-out.conf"
    client_cfg.write_text(f"""foreground = yes
pid =
debug = 3
[out]
client = yes
accept = 127.0.0.1:{front}
connect = 127.0.0.1:{middle}
cert = {work / 'client' / 'chain.pem'}
key = {work / 'client' / 'key.pem'}
CAfile = {ca}
verifyChain = yes
checkHost = bench-server
sni = bench-server
sslVersionMin = TLSv1.3
""")
    inbound = procs.spawn("stunnel-in", ["stunnel4", str(server_cfg)])
    wait_port(middle)
    outbound = procs.spawn("stunnel-out", ["stunnel4", str(client_cfg)])
    wait_port(front)
    return front, [outbound.pid, inbound.pid]


def pair_haproxy(procs, bins, work, backend):
    front, middle = free_port(), free_port()
    ca = work / "server" / "ca.pem"
    head = f"""global
  nbthread 1
  maxconn {haproxy_maxconn()}
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
"""
    server_cfg = work / "haproxy-in.cfg"
    server_cfg.write_text(head + f"""frontend in
  bind 127.0.0.1:{middle} ssl crt {work / 'server' / 'haproxy.pem'} ca-file {ca} verify required ssl-min-ver TLSv1.3
  default_backend app
backend app
  server app 127.0.0.1:{backend}
""")
    client_cfg = work / "haproxy-out.cfg"
    client_cfg.write_text(head + f"""frontend out
  bind 127.0.0.1:{front}
  default_backend peer
backend peer
  server peer 127.0.0.1:{middle} ssl crt {work / 'client' / 'haproxy.pem'} ca-file {ca} verify required verifyhost bench-server sni str(bench-server) ssl-min-ver TLSv1.3
""")
    inbound = procs.spawn("haproxy-in", ["haproxy", "-db", "-f", str(server_cfg)])
    wait_port(middle)
    outbound = procs.spawn("haproxy-out", ["haproxy", "-db", "-f", str(client_cfg)])
    wait_port(front)
    return front, [outbound.pid, inbound.pid]


PAIRS = {"minica-sidecar": pair_minica, "stunnel": pair_stunnel, "haproxy": pair_haproxy}


# ---------------------------------------------------------------- workloads

def wrk(port, conns, secs, close=False):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "10s", "-s", str(LUA)]
    if close:
        cmd += ["-H", "Connection: close"]
    out = run(cmd + [f"http://127.0.0.1:{port}/"]).stdout
    line = next(l for l in out.splitlines() if l.startswith("JSON "))
    r = json.loads(line[5:])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def iperf(port, secs):
    """Bulk MB/s through the pair. The iperf3 server runs one test at a time
    and may still be finishing the previous one: retry a few times."""
    for attempt in range(5):
        p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-J"],
                           capture_output=True, text=True)
        result = json.loads(p.stdout or "{}")
        if "sum_received" in result.get("end", {}):
            return result["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
        time.sleep(1)
    raise RuntimeError(f"iperf3 through 127.0.0.1:{port} failed: {result.get('error', p.stderr)}")


def idle_rss(port, pids, count):
    """KiB of RSS the pair adds per idle, established connection."""
    before = proc_rss_kib(pids)
    socks = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(min(5.0, 1.0 + count / 2000))  # let both hops finish their handshakes
        after = proc_rss_kib(pids)
    finally:
        for s in socks:
            s.close()
    return max(0.0, (after - before) / count)


def bench_pairs(cfg, bins, work):
    results = {}
    with Procs(work) as backends:
        http = start_http_backend(backends, work)
        iperf_port = start_iperf_backend(backends)
        for name, start in PAIRS.items():
            print(f"  {name}", flush=True)
            r = results[name] = {"keepalive": {}, "idle_kib": {}}
            with Procs(work) as procs:
                front, pids = start(procs, bins, work, http)
                wrk(front, 4, 1)  # warm-up
                for level in cfg["levels"]:
                    cpu0 = proc_cpu_seconds(pids)
                    res = wrk(front, level, cfg["secs"])
                    res["cpu_us_per_req"] = (proc_cpu_seconds(pids) - cpu0) / max(1, res["requests"]) * 1e6
                    res["cores_used"] = (proc_cpu_seconds(pids) - cpu0) / (res["duration_us"] / 1e6)
                    r["keepalive"][level] = res
                cpu0 = proc_cpu_seconds(pids)
                res = wrk(front, cfg["newconn_c"], cfg["secs"], close=True)
                res["cpu_us_per_req"] = (proc_cpu_seconds(pids) - cpu0) / max(1, res["requests"]) * 1e6
                r["newconn"] = res
                for count in cfg["idle"]:
                    r["idle_kib"][count] = idle_rss(front, pids, count)
            with Procs(work) as procs:
                front, _ = start(procs, bins, work, iperf_port)
                r["throughput_mbs"] = iperf(front, cfg["iperf"])
    return results


def bench_idle(cfg, bins, work, counts):
    """Only the idle-connection RSS of the minica pair (`--only idle`), for
    working on the sidecar's memory: the pair first serves the same warm-up,
    keepalive and new-connection load as in the full suite (so the heap has the
    same history), then holds `counts` idle connections in turn."""
    results = {}
    with Procs(work) as backends:
        http = start_http_backend(backends, work)
        with Procs(work) as procs:
            front, pids = pair_minica(procs, bins, work, http)
            wrk(front, 4, 1)  # warm-up
            wrk(front, max(cfg["levels"]), cfg["secs"])
            wrk(front, cfg["newconn_c"], cfg["secs"], close=True)
            for count in counts:
                results[count] = idle_rss(front, pids, count)
                print(f"  minica-sidecar: {results[count]:.1f} KiB per idle connection ({count})", flush=True)
    return results


# ---------------------------------------------------------------- the CA

def bench_ca(cfg, bins, work):
    minica = bins / "minica"
    d = work / "ca-bench"
    d.mkdir()
    # A CA for cfssl and openssl: one P-256 key and self-signed certificate.
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"), "-days", "365",
         "-subj", "/CN=bench ca", "-addext", "basicConstraints=critical,CA:TRUE"])
    (d / "cfssl.json").write_text(json.dumps({"signing": {"profiles": {"leaf": {
        "usages": ["digital signature", "server auth", "client auth"], "expiry": "2160h"}}}}))
    (d / "csr.json").write_text(json.dumps({"CN": "svc-a", "hosts": ["svc-a"],
                                            "key": {"algo": "ecdsa", "size": 256}}))
    (d / "ext.cnf").write_text("[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:svc-a\n")
    home, out = d / "home", d / "out"
    commands = {
        "minica issue": (f"rm -rf {home} {out} && {minica} --home {home} init >/dev/null",
                         f"{minica} --home {home} issue svc-a --out {out}"),
        "cfssl gencert": ("true", f"cfssl gencert -ca {d}/ca.pem -ca-key {d}/ca-key.pem -config {d}/cfssl.json "
                                  f"-profile leaf {d}/csr.json > {d}/cfssl-out.json"),
        "openssl req + x509": ("true", f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                       f"-keyout {d}/k.pem -subj /CN=svc-a -out {d}/r.csr 2>/dev/null && "
                                       f"openssl x509 -req -in {d}/r.csr -CA {d}/ca.pem -CAkey {d}/ca-key.pem "
                                       f"-days 90 -out {d}/c.pem -extfile {d}/ext.cnf -extensions v3 2>/dev/null"),
    }
    results = {"process_ms": {}}
    for name, (prepare, command) in commands.items():
        export = d / "hyperfine.json"
        run(["hyperfine", "--runs", str(cfg["runs"]), "--warmup", "1", "--prepare", prepare,
             "--export-json", str(export), "--shell=sh", command])
        m = json.loads(export.read_text())["results"][0]
        results["process_ms"][name] = {"mean": m["mean"] * 1e3, "stddev": m["stddev"] * 1e3}
    example = bins / "examples" / "bench_ca"
    if example.exists():
        out = run([str(example), "--" + ("smoke" if cfg is MODES["smoke"] else "run")]).stdout
        results["in_process"] = json.loads(out.strip().splitlines()[-1])
    return results


# ---------------------------------------------------------------- online CA

def find_pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return str(candidates[-1])


def start_postgres(procs, data):
    """A throwaway PostgreSQL on 127.0.0.1 in the new directory `data` (run as
    the `postgres` user when we are root: initdb refuses root). Returns its URL."""
    port = free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    run([*as_user, find_pg_bin("initdb"), "-D", str(data), "-U", "minica", "--auth=trust", "-E", "UTF8"])
    procs.spawn("postgres", [*as_user, find_pg_bin("postgres"), "-D", str(data), "-p", str(port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
                             "-c", "max_connections=200"])
    wait_port(port, timeout=60)
    return f"postgres://minica@127.0.0.1:{port}/postgres"


def make_tokens(minica, home, store, count, path):
    """`count` one-time tokens made with `minica token`, as `NAME TOKEN` lines."""
    import concurrent.futures
    store_args = ["--store", store] if store else []

    def one(i):
        name = f"enrol-{i}"
        out = run([str(minica), "--home", str(home), *store_args, "token", name, "--ttl", "1h"]).stdout
        return f"{name} {out.strip().splitlines()[-1]}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        path.write_text("\n".join(pool.map(one, range(count))) + "\n")


def enrol_load(bins, url, bundle, api, conns, count=None, tokens=None):
    cmd = [str(bins / "examples" / "bench_enroll"), "--url", url, "--ca-bundle", str(bundle), "--api", api,
           "--conns", str(conns)]
    cmd += ["--tokens", str(tokens)] if tokens else ["--count", str(count)]
    result = json.loads(run(cmd).stdout.strip().splitlines()[-1])
    if result["failed"]:
        raise RuntimeError(f"{api} enrolments failed: {result['failed']} (first: {result['first_error']})")
    return result


def bench_online(cfg, bins, work):
    """Enrolments/s through `minica serve` (embedded store and PostgreSQL)
    and through `cfssl serve`, from many concurrent clients."""
    minica = bins / "minica"
    d = work / "online"
    d.mkdir()
    count, conns = cfg["enrolments"], cfg["enrol_conns"]
    results = {}
    # The data directory sits outside the private bench tree so that the
    # `postgres` user can reach it.
    with tempfile.TemporaryDirectory(prefix="minica-bench-pg-") as pg_dir, Procs(d) as procs:
        os.chmod(pg_dir, 0o755)
        pg_url = start_postgres(procs, Path(pg_dir) / "data")
        for label, store in (("minica serve, embedded store", None), ("minica serve, PostgreSQL", pg_url)):
            home = d / ("home-pg" if store else "home")
            store_args = ["--store", store] if store else []
            run([str(minica), "--home", str(home), *store_args, "init"])
            port = free_port()
            server = procs.spawn(f"serve-{port}", [str(minica), "--home", str(home), *store_args, "serve",
                                                   "--listen", f"127.0.0.1:{port}"])
            wait_port(port)
            tokens = d / f"tokens-{port}.txt"
            make_tokens(minica, home, store, count, tokens)
            results[label] = enrol_load(bins, f"https://127.0.0.1:{port}", home / "bundle.pem", "minica", conns,
                                        tokens=tokens)
            server.terminate()
            server.wait(timeout=10)
        # cfssl serve over TLS (a minica server identity), signing with a P-256 CA.
        home = d / "home"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(d / "cfssl-ca-key.pem"), "-out", str(d / "cfssl-ca.pem"), "-days", "365",
             "-subj", "/CN=cfssl bench ca", "-addext", "basicConstraints=critical,CA:TRUE"])
        (d / "cfssl.json").write_text(json.dumps({"signing": {"profiles": {"leaf": {
            "usages": ["digital signature", "server auth", "client auth"], "expiry": "2160h"}},
            "default": {"usages": ["digital signature"], "expiry": "2160h"}}}))
        run([str(minica), "--home", str(home), "issue", "cfssl-serve", "--server", "--ip", "127.0.0.1",
             "--out", str(d / "cfssl-tls")])
        port = free_port()
        procs.spawn("cfssl", ["cfssl", "serve", "-address", "127.0.0.1", "-port", str(port),
                              "-ca", str(d / "cfssl-ca.pem"), "-ca-key", str(d / "cfssl-ca-key.pem"),
                              "-config", str(d / "cfssl.json"), "-tls-cert", str(d / "cfssl-tls" / "chain.pem"),
                              "-tls-key", str(d / "cfssl-tls" / "key.pem"), "-loglevel", "5"])
        wait_port(port)
        results["cfssl serve"] = enrol_load(bins, f"https://127.0.0.1:{port}", home / "bundle.pem", "cfssl", conns,
                                            count=count)
    return {"conns": conns, "count": count, "servers": results}


# ---------------------------------------------------------------- MySQL

def start_mariadb(procs, work):
    """A throwaway MariaDB on 127.0.0.1 with native TLS on the bench-server
    identity, and a password user `bench`."""
    data, sock, port = work / "mariadb-data", work / "mariadb.sock", free_port()
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *as_root])
    procs.spawn("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={data}", f"--port={port}",
                             "--bind-address=127.0.0.1", f"--socket={sock}", "--skip-name-resolve",
                             f"--ssl-ca={work / 'server' / 'ca.pem'}", f"--ssl-cert={work / 'server' / 'chain.pem'}",
                             f"--ssl-key={work / 'server' / 'key.pem'}", *as_root])
    wait_port(port, timeout=60)
    run(["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e",
         "CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'; GRANT USAGE ON *.* TO 'bench'@'%';"])
    return port


def slap_qps(port, queries, tls_args):
    """`SELECT 1` queries per second over one connection (mariadb-slap)."""
    out = run(["mariadb-slap", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-ubench", "-pbench", *tls_args,
               "--query=SELECT 1", "--concurrency=1", "--iterations=1", f"--number-of-queries={queries}"]).stdout
    secs = next(float(l.split()[-2]) for l in out.splitlines() if "Average number of seconds" in l)
    return queries / max(secs, 1e-6)


def connect_ms(cfg, port, tls_args, work):
    """Mean ms of one `mariadb -e 'SELECT 1'` process: connect, TLS, login, query."""
    export = work / "hyperfine-mysql.json"
    cmd = " ".join(["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-ubench", "-pbench", *tls_args,
                    "-e", "'SELECT 1'"])
    run(["hyperfine", "--runs", str(cfg["runs"]), "--warmup", "2", "--export-json", str(export), cmd])
    return json.loads(export.read_text())["results"][0]["mean"] * 1e3


def bench_mysql(cfg, bins, work):
    client = work / "client"
    native = [f"--ssl-ca={client / 'ca.pem'}", f"--ssl-cert={client / 'chain.pem'}",
              f"--ssl-key={client / 'key.pem'}", "--ssl-verify-server-cert"]
    plain = ["--skip-ssl"]
    queries = cfg["mysql_queries"]
    results = {}
    with Procs(work) as procs:
        db = start_mariadb(procs, work)
        front = free_port()
        procs.spawn("minica-mysql-out", [str(bins / "minica-sidecar"), "outbound", "--protocol", "mysql",
                                         "--listen", f"127.0.0.1:{front}", "--upstream", f"127.0.0.1:{db}",
                                         "--server-name", "localhost", "--identity", str(client)])
        wait_port(front)
        slap_qps(db, 100, native)  # warm-up
        results["MariaDB native TLS"] = {"qps": slap_qps(db, queries, native),
                                         "connect_ms": connect_ms(cfg, db, native, work)}
        results["app without TLS -> minica-sidecar outbound (mysql) -> MariaDB TLS"] = {
            "qps": slap_qps(front, queries, plain), "connect_ms": connect_ms(cfg, front, plain, work)}
    return results


# ---------------------------------------------------------------- the report

def versions():
    def first_line(cmd, prefix=""):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            return "not found"
        lines = (p.stdout + p.stderr).strip().splitlines()
        return next((l for l in lines if l.startswith(prefix)), "unknown")
    return {
        "stunnel": first_line(["stunnel4", "-version"], "stunnel"),
        "haproxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "--version"]),
        "iperf3": first_line(["iperf3", "--version"]),
        "hyperfine": first_line(["hyperfine", "--version"]),
        "cfssl": first_line(["cfssl", "version"]),
        "openssl": first_line(["openssl", "version"]),
        "rustc": first_line(["rustc", "--version"]),
    }


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in LOAD_AT_START)
    return (f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()};"
            f" load average (1, 5, 15 min) when the run started: {load} (well above 0 means other work"
            " was sharing the cores)")


def ratio(ours, best, higher_is_better=True):
    if not best:
        return "n/a"
    return f"{(ours / best) if higher_is_better else (best / ours if ours else float('inf')):.2f}x"


def plots(pairs, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(pairs)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in names:
        levels = sorted(pairs[name]["keepalive"])
        ax.plot(levels, [pairs[name]["keepalive"][l]["rps"] for l in levels], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent keepalive connections (wrk -c)")
    ax.set_ylabel("requests/s")
    ax.set_title("Keepalive HTTP through an mTLS pair")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "throughput-vs-concurrency.svg")
    plt.close(fig)

    top = max(pairs[names[0]]["keepalive"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.25
    for i, name in enumerate(names):
        r = pairs[name]["keepalive"][top]
        ax.bar([x + i * width for x in range(3)], [r["p50"] / 1e3, r["p99"] / 1e3, r["p999"] / 1e3],
               width, label=name)
    ax.set_xticks([x + width for x in range(3)], ["p50", "p99", "p99.9"])
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"Keepalive latency percentiles at {top} connections")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "latency-percentiles.svg")
    plt.close(fig)


def report(mode, pairs, ca, mysql, out, plot_dir_rel, online=None):
    lines = [
        "# Benchmarks",
        "",
        "Generated by `scripts/bench.sh" + ("" if mode == "full" else f" --{mode}") + "` on "
        + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + ". Do not edit by hand: run the suite again.",
        "",
        f"- Machine: {machine()}",
        "- Versions: " + "; ".join(f"{k}: {v}" for k, v in versions().items()),
        f"- Mode: `{mode}` ({MODES[mode]['secs']} s per wrk run; concurrency {MODES[mode]['levels']};"
        f" iperf3 {MODES[mode]['iperf']} s; hyperfine {MODES[mode]['runs']} runs).",
        "- Every pair is outbound proxy -> inbound proxy -> backend on 127.0.0.1, mutual TLS 1.3 with the same"
        " ECDSA P-256 identities from `minica issue`, the same backend (HAProxy returning a fixed 200 for"
        " HTTP; `iperf3 -s` for bulk), and `wrk -t1` / `iperf3` as the client. HAProxy runs `nbthread 1`;"
        " stunnel uses its default thread per connection; minica-sidecar uses its default runtime."
        " The machine has 2 cores shared by client, both proxies and backend.",
        "",
    ]
    if pairs:
        peers = [n for n in pairs if n != "minica-sidecar"]
        ours = pairs["minica-sidecar"]

        def best(f, higher=True):
            vals = [f(pairs[p]) for p in peers]
            return max(vals) if higher else min(vals)

        lines += ["## Sidecar pairs", "",
                  "| measure | " + " | ".join(pairs) + " | minica vs best peer |",
                  "|---|" + "---|" * len(pairs) + "---|"]

        def row(label, f, fmt, higher=True):
            vals = [f(pairs[n]) for n in pairs]
            lines.append(f"| {label} | " + " | ".join(fmt(v) for v in vals) + " | "
                         + ratio(f(ours), best(f, higher), higher) + " |")

        row("bulk throughput (MB/s, iperf3)", lambda r: r["throughput_mbs"], lambda v: f"{v:.0f}")
        for level in sorted(ours["keepalive"]):
            row(f"keepalive req/s, {level} conn", lambda r, l=level: r["keepalive"][l]["rps"], lambda v: f"{v:.0f}")
            row(f"p50 latency ms, {level} conn", lambda r, l=level: r["keepalive"][l]["p50"] / 1e3,
                lambda v: f"{v:.3f}", higher=False)
            row(f"p99 latency ms, {level} conn", lambda r, l=level: r["keepalive"][l]["p99"] / 1e3,
                lambda v: f"{v:.3f}", higher=False)
            row(f"p99.9 latency ms, {level} conn", lambda r, l=level: r["keepalive"][l]["p999"] / 1e3,
                lambda v: f"{v:.3f}", higher=False)
            row(f"proxy CPU µs per request, {level} conn", lambda r, l=level: r["keepalive"][l]["cpu_us_per_req"],
                lambda v: f"{v:.1f}", higher=False)
        row("new mTLS connections/s (one request each)", lambda r: r["newconn"]["rps"], lambda v: f"{v:.0f}")
        row("proxy CPU µs per new connection", lambda r: r["newconn"]["cpu_us_per_req"], lambda v: f"{v:.0f}",
            higher=False)
        for count in sorted(ours["idle_kib"]):
            row(f"RSS KiB per idle connection ({count})", lambda r, c=count: r["idle_kib"][c], lambda v: f"{v:.1f}",
                higher=False)
        top = max(ours["keepalive"])
        k = ours["keepalive"][top]
        lines += ["",
                  f"minica-sidecar per core at {top} connections: {k['rps'] / max(k['cores_used'], 1e-9):.0f} req/s"
                  f" per fully used core (it used {k['cores_used']:.2f} cores for {k['rps']:.0f} req/s).",
                  "Ratios: higher is better for rates, lower is better for latency, CPU and memory; the ratio is"
                  " always written so that above 1.00x means minica leads.",
                  "",
                  f"![throughput vs concurrency]({plot_dir_rel}/throughput-vs-concurrency.svg)",
                  f"![latency percentiles]({plot_dir_rel}/latency-percentiles.svg)", ""]
    if ca:
        pm = ca["process_ms"]
        lines += ["## CA", "", "| one issuance, whole process (hyperfine) | mean ms | ± ms |", "|---|---|---|"]
        for name, m in pm.items():
            lines.append(f"| {name} | {m['mean']:.2f} | {m['stddev']:.2f} |")
        ours_ms = pm["minica issue"]["mean"]
        lines += ["", f"`minica issue` takes {ours_ms / pm['cfssl gencert']['mean']:.2f}x the time of"
                      f" `cfssl gencert` (target: at most 0.5x) and {ours_ms / pm['openssl req + x509']['mean']:.2f}x"
                      " that of `openssl req` + `openssl x509` (target: below 1x).", ""]
        if "in_process" in ca:
            lines += ["| in-process (examples/bench_ca.rs, release) | figure | target |", "|---|---|---|"]
            for key, (label, target) in {
                "durable_issuances_per_s": ("durable issuances/s (ledger flushed per batch)", ">= 10,000"),
                "crl_100k_entries_s": ("CRL with 100,000 entries (smoke: 1,000), seconds to build", "< 1"),
                "verifications_per_s": ("3-certificate chain verifications/s, every leaf new, one core", "-"),
                "repeated_verifications_per_s": ("the same chain verified again (signatures remembered)", "-"),
                "verifications_all_cores_per_s": ("chain verifications/s, every leaf new, one thread per core",
                                                  ">= 20,000"),
            }.items():
                if key in ca["in_process"]:
                    lines.append(f"| {label} | {ca['in_process'][key]:,.2f} | {target} |")
            lines.append("")
        else:
            lines += ["In-process CA figures: not measured (examples/bench_ca.rs is not built).", ""]
    if mysql:
        native = mysql["MariaDB native TLS"]
        lines += ["## MySQL", "",
                  "`SELECT 1` over one connection (`mariadb-slap --concurrency=1`), and one `mariadb -e 'SELECT 1'`"
                  " process (connect, TLS, login, query; hyperfine). MariaDB's own TLS uses the same minica identities.",
                  "", "| path | queries/s | vs native | connect + query, ms |", "|---|---|---|---|"]
        for name, r in mysql.items():
            lines.append(f"| {name} | {r['qps']:.0f} | {r['qps'] / native['qps']:.2f}x | {r['connect_ms']:.1f} |")
        lines += ["", "Target: at least 0.90x of native queries/s, and no more than one extra round trip at set-up.", ""]
    if online:
        servers = online["servers"]
        cfssl = servers["cfssl serve"]
        lines += ["## Online CA", "",
                  f"{online['count']} enrolments from {online['conns']} concurrent clients"
                  " (examples/bench_enroll.rs), each on a new TLS 1.3 connection with an ECDSA P-256 CSR made"
                  " beforehand. minica: `POST /v1/enroll` with a one-time token (token consumed and certificate"
                  " recorded durably before the answer). cfssl: `POST /api/v1/cfssl/sign`, no certificate database"
                  " (cfssl records nothing), same P-256 signing.", "",
                  "| server | enrolments/s | p50 ms | p99 ms | vs cfssl serve |", "|---|---|---|---|---|"]
        for name, r in servers.items():
            lines.append(f"| {name} | {r['enrolments_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                         f"{ratio(r['enrolments_per_s'], cfssl['enrolments_per_s'])} |")
        lines += ["", "Target: at least 2x cfssl serve with the embedded store.", ""]
    out.write_text("\n".join(lines))


def keep_other_groups(results, pairs, ca, mysql, online):
    """With --only, the groups not measured this time keep the figures of the
    last run (results.json), so one group can be measured again alone."""
    if not results.exists():
        return pairs, ca, mysql, online
    last = json.loads(results.read_text())
    if pairs is None and last.get("pairs"):
        # JSON turned the concurrency levels and connection counts into strings.
        pairs = {name: {**r, "keepalive": {int(k): v for k, v in r["keepalive"].items()},
                        "idle_kib": {int(k): v for k, v in r["idle_kib"].items()}}
                 for name, r in last["pairs"].items()}
    return pairs, ca or last.get("ca"), mysql or last.get("mysql"), online or last.get("online")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="mode", const="quick")
    group.add_argument("--smoke", action="store_const", dest="mode", const="smoke")
    ap.add_argument("--bin-dir", default="target/release", help="where minica and minica-sidecar are built")
    ap.add_argument("--out", default=None, help="report directory (default: docs/, for BENCHMARKS.md)")
    ap.add_argument("--only", choices=["sidecar", "ca", "online", "mysql", "idle"],
                    help="run one group only; `idle`: only minica-sidecar's RSS per idle connection (at 1,000"
                         " and 10,000 connections; --smoke: 50), printed and written to idle.json in --out"
                         " if given, never to BENCHMARKS.md")
    args = ap.parse_args()
    mode = args.mode or "full"
    cfg = MODES[mode]
    bins = (ROOT / args.bin_dir).resolve()
    out_dir = Path(args.out).resolve() if args.out else ROOT / "docs"
    raise_fd_limit()
    if args.only == "idle":
        counts = MODES["smoke" if mode == "smoke" else "full"]["idle"]
        with tempfile.TemporaryDirectory(prefix="minica-bench-") as tmp:
            work = Path(tmp)
            make_certs(bins, work)
            print("minica-sidecar idle connections", flush=True)
            idle = bench_idle(cfg, bins, work, counts)
        print("JSON " + json.dumps({"mode": mode, "idle_kib": idle}))
        if args.out:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "idle.json").write_text(json.dumps({"mode": mode, "idle_kib": idle}, indent=1))
        return 0
    with tempfile.TemporaryDirectory(prefix="minica-bench-") as tmp:
        work = Path(tmp)
        make_certs(bins, work)
        pairs = ca = mysql = online = None
        if args.only in (None, "sidecar"):
            print("sidecar pairs", flush=True)
            pairs = bench_pairs(cfg, bins, work)
            plots(pairs, out_dir / "bench")
        if args.only in (None, "ca"):
            print("CA", flush=True)
            ca = bench_ca(cfg, bins, work)
        if args.only in (None, "online"):
            print("online CA", flush=True)
            online = bench_online(cfg, bins, work)
        if args.only in (None, "mysql"):
            print("MySQL", flush=True)
            mysql = bench_mysql(cfg, bins, work)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.only:
        pairs, ca, mysql, online = keep_other_groups(out_dir / "bench" / "results.json", pairs, ca, mysql, online)
    report(mode, pairs, ca, mysql, out_dir / "BENCHMARKS.md", "bench", online)
    (out_dir / "bench").mkdir(exist_ok=True)
    (out_dir / "bench" / "results.json").write_text(json.dumps({"mode": mode, "pairs": pairs, "ca": ca, "online": online, "mysql": mysql},
                                                                   indent=1))
    print(f"wrote {out_dir / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    sys.exit(main())
