#!/usr/bin/python3
"""Fleet simulation on one host (issue 15): N tpjitd sharing one redis-server.

For each N: N daemons (own socket, own empty cache dir, --remote-cache on one
Redis, FLUSHALL between N) warm up the same spec at once, one rank each
(phase "cold fleet"); then a rolling restart: each daemon in turn is stopped,
its cache directory emptied, restarted and warmed up again (phase "rolling").
Recorded: compiles per daemon (tpjit stats), bytes read from Redis, each
node's warm-up wall time, Redis CPU seconds (/proc) and memory, and a
redis-benchmark of GET/SET at the measured mean entry size.

usage: fleet_bench.py --build build --spec specs/X.json --ns 1,4,16,32 --out DIR
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Redis:
    def __init__(self, work):
        self.sock = os.path.join(work, "redis.sock")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--maxmemory", "1gb", "--maxmemory-policy", "allkeys-lru",
             "--dir", work, "--logfile", os.path.join(work, "redis.log")])
        deadline = time.time() + 10
        while not os.path.exists(self.sock):
            if time.time() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        self.cli("PING")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.sock, *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def info(self, field):
        for line in self.cli("INFO").splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
        return ""

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Daemon:
    def __init__(self, build, work, redis_sock):
        self.build, self.work = build, work
        self.sock = os.path.join(work, "tpjitd.sock")
        self.cache = os.path.join(work, "cache")
        self.redis_url = "unix://" + redis_sock
        self.proc = None

    def start(self):
        t0 = time.time()
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        log = open(os.path.join(self.work, "tpjitd.log"), "a")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "daemon/tpjitd"), "--socket", self.sock,
             "--cache-dir", self.cache, "--gpus", "0", "--slots", "1",
             "--procs", "1", "--remote-cache", self.redis_url],
            stdout=log, stderr=log)
        deadline = time.time() + 120
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tpjitd did not start; see " + log.name)
            time.sleep(0.02)
        return time.time() - t0

    def stats(self):
        out = subprocess.run([os.path.join(self.build, "cli/tpjit"), "stats",
                              "--json", "--socket", self.sock], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def start_rank(build, daemon, spec):
    p = subprocess.Popen(
        [os.path.join(build, "bench/warmup/tpjit_bench_rank"), daemon.sock,
         spec, "0", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    return p


def finish_ranks(procs):
    time.sleep(0.5)  # every rank connected and waiting
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = []
    for p in procs:
        text, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"rank failed with {p.returncode}")
        out.append(json.loads(text.strip().splitlines()[-1]))
    return out


def remote(s, field):
    return int(s.get("remote_cache", {}).get(field, 0))


def run_n(build, spec, n, work, redis):
    redis.cli("FLUSHALL")
    daemons = []
    for i in range(n):
        d = os.path.join(work, f"n{n}-d{i}")
        os.makedirs(d)
        daemons.append(Daemon(build, d, redis.sock))
    for d in daemons:
        d.start()
    cpu0 = cpu_seconds(redis.proc.pid)
    ops0 = int(redis.info("total_commands_processed"))
    t0 = time.time()
    ranks = finish_ranks([start_rank(build, d, spec) for d in daemons])
    cold_wall = time.time() - t0
    cold_cpu = cpu_seconds(redis.proc.pid) - cpu0
    stats = [d.stats() for d in daemons]
    cold = {
        "wall_seconds": cold_wall,
        "node_seconds": [r["cubins_seconds"] for r in ranks],
        "compiles": sum(int(s.get("compiles", 0)) for s in stats),
        "remote_bytes_read": sum(remote(s, "bytes_read") for s in stats),
        "remote_bytes_written": sum(remote(s, "bytes_written") for s in stats),
        "remote_hits": sum(remote(s, "hits") for s in stats),
        "leases_won": sum(remote(s, "leases_won") for s in stats),
        "lease_waits": sum(remote(s, "lease_waits") for s in stats),
        "redis_cpu_seconds": cold_cpu,
        "redis_commands": int(redis.info("total_commands_processed")) - ops0,
        "digests": sorted({r["digest"] for r in ranks}),
        "kernels": ranks[0]["kernels"],
    }
    # Rolling restart: each node in turn, with an empty local cache.
    cpu0 = cpu_seconds(redis.proc.pid)
    ops0 = int(redis.info("total_commands_processed"))
    t0 = time.time()
    rolling_nodes = []
    for d in daemons:
        d.stop()
        shutil.rmtree(d.cache, ignore_errors=True)
        start_s = d.start()
        r = finish_ranks([start_rank(build, d, spec)])[0]
        s = d.stats()
        rolling_nodes.append({
            "seconds": r["cubins_seconds"], "start_seconds": start_s,
            "cubin_bytes": r["cubin_bytes"], "compiles": int(s.get("compiles", 0)),
            "remote_bytes_read": remote(s, "bytes_read"),
            "remote_hits": remote(s, "hits"), "digest": r["digest"]})
    rolling = {
        "wall_seconds": time.time() - t0,
        "redis_cpu_seconds": cpu_seconds(redis.proc.pid) - cpu0,
        "redis_commands": int(redis.info("total_commands_processed")) - ops0,
        "compiles": sum(x["compiles"] for x in rolling_nodes),
        "remote_bytes_read": sum(x["remote_bytes_read"] for x in rolling_nodes),
        "node_seconds": [x["seconds"] for x in rolling_nodes],
        "start_seconds": [x["start_seconds"] for x in rolling_nodes],
        "digests": sorted({x["digest"] for x in rolling_nodes}),
    }
    keys = int(redis.cli("DBSIZE") or 0)
    mem = int(redis.info("used_memory") or 0)
    for d in daemons:
        d.stop()
    return {"n": n, "cold": cold, "rolling": rolling, "redis_keys": keys,
            "redis_used_memory": mem}


def benchmark(sock, size, n):
    out = subprocess.run(
        ["redis-benchmark", "-s", sock, "-t", "get,set", "-d", str(size),
         "-n", str(n), "-c", "16", "-q", "--csv"], check=True,
        capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] in ("GET", "SET"):
            res[cells[0]] = float(cells[1])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--ns", default="1,4,16,32")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    spec = os.path.abspath(a.spec)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tpjit-fleet-")
    redis = Redis(work)
    try:
        runs = [run_n(build, spec, int(n), work, redis) for n in a.ns.split(",")]
        entry = max(1, runs[-1]["cold"]["remote_bytes_written"]
                    // max(1, runs[-1]["cold"]["compiles"]))
        bench = {"entry_bytes": entry,
                 "ops_per_second": benchmark(redis.sock, entry, 2000),
                 "small_ops_per_second": benchmark(redis.sock, 64, 20000)}
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "spec": os.path.basename(spec),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "redis": subprocess.run(["redis-server", "--version"],
                                            capture_output=True,
                                            text=True).stdout.strip()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": runs, "redis_benchmark": bench}
    name = os.path.splitext(os.path.basename(spec))[0]
    with open(os.path.join(a.out, name + ".json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(a.out, name + ".md"), "w") as f:
        f.write(markdown(result))
    print(markdown(result))


def estimate(r):
    """1,000 nodes x 8 GPUs on paper, from the largest N measured."""
    run = r["runs"][-1]
    n, k = run["n"], run["cold"]["kernels"]
    entry = r["redis_benchmark"]["entry_bytes"]
    get_rate = r["redis_benchmark"]["ops_per_second"].get("GET", 1)
    cold_cmds = run["cold"]["redis_commands"] / n
    roll_cmds = run["rolling"]["redis_commands"] / n
    cpu_per_cmd = (run["cold"]["redis_cpu_seconds"]
                   + run["rolling"]["redis_cpu_seconds"]) / max(
                       1, run["cold"]["redis_commands"]
                       + run["rolling"]["redis_commands"])
    nodes = 1000
    roll_gb = nodes * k * entry / 1e9
    return [
        "",
        f"On paper, 1,000 nodes x 8 GPUs, one deployment of this spec ({k} "
        f"kernels, {entry / 1024:.0f} KiB per entry): one tpjitd per node "
        "serves its 8 GPUs' ranks, so Redis sees 1,000 clients, and the fleet "
        f"compiles {k} kernels, not {nodes * k:,} (or {8 * nodes * k:,} "
        "without tpjit). Measured at N = "
        f"{n}: {cold_cmds:.0f} Redis commands per node for a cold warm-up "
        f"(lease polls included), {roll_cmds:.0f} per node for a restart "
        f"with an empty disk; {cpu_per_cmd * 1e6:.0f} us of Redis CPU per "
        "command. A rollout to all 1,000 nodes at once: "
        f"{nodes * cold_cmds:,.0f} commands, about "
        f"{nodes * cold_cmds * cpu_per_cmd:.1f} s of Redis CPU, and "
        f"{roll_gb:.2f} GB read ({roll_gb * 8 / 10:.2f} s of a 10 Gbit/s link); "
        f"at the measured {get_rate:,.0f} GET/s of {entry} B values, the "
        f"{nodes * k:,} GETs take {nodes * k / get_rate:.1f} s of one Redis "
        "core. Memory: "
        f"{k * entry / 2**20:.1f} MiB per deployment (x the deployments "
        "kept). One Redis instance is enough; the limit is the network "
        "card of the Redis host, not Redis.",
    ]


def markdown(r):
    m = r["machine"]
    lines = [
        f"# Fleet simulation: {r['spec']}, N tpjitd + one Redis on one host",
        "",
        f"Machine: {m['cores']} cores, {m['platform']}; {m['redis']}; {r['date']}.",
        "One rank per daemon, 1 slot x 1 compile process each, no GPU. "
        "Cold fleet: all N daemons warm up at once from empty caches and an "
        "empty Redis. Rolling: each daemon in turn restarted with an empty "
        "local cache and warmed up.",
        "",
        "| N | kernels | cold: compiles (fleet) | cold: wall s | cold: node s "
        "median / max | Redis CPU s / commands (cold) | rolling: compiles | rolling: node "
        "s median / max | rolling: daemon start s median | rolling: MiB from "
        "Redis per node | Redis CPU s / "
        "commands (rolling) | Redis keys / MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for run in r["runs"]:
        c, ro = run["cold"], run["rolling"]
        n = run["n"]
        lines.append(
            f"| {n} | {c['kernels']} | {c['compiles']} | {c['wall_seconds']:.2f} "
            f"| {statistics.median(c['node_seconds']):.2f} / "
            f"{max(c['node_seconds']):.2f} | {c['redis_cpu_seconds']:.2f} / "
            f"{c['redis_commands']} "
            f"| {ro['compiles']} | {statistics.median(ro['node_seconds']):.3f} / "
            f"{max(ro['node_seconds']):.3f} "
            f"| {statistics.median(ro['start_seconds']):.2f} "
            f"| {ro['remote_bytes_read'] / n / 2**20:.2f} "
            f"| {ro['redis_cpu_seconds']:.2f} / {ro['redis_commands']} "
            f"| {run['redis_keys']} / {run['redis_used_memory'] / 2**20:.1f} |")
    b = r["redis_benchmark"]
    lines += estimate(r)
    lines += [
        "",
        f"redis-benchmark (16 clients, Unix socket): GET/SET of "
        f"{b['entry_bytes']} B values (the mean entry): "
        f"{b['ops_per_second'].get('GET', 0):,.0f} / "
        f"{b['ops_per_second'].get('SET', 0):,.0f} per second; 64 B values: "
        f"{b['small_ops_per_second'].get('GET', 0):,.0f} / "
        f"{b['small_ops_per_second'].get('SET', 0):,.0f} per second.",
        ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
