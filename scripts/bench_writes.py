#!/usr/bin/env python3
"""Writes against a running local server: reads under a steady writer,
write-to-searchable latency, and bulk import throughput.

    python3 scripts/bench_writes.py --base http://127.0.0.1:3000 --paths PATHS [--duration 20]

1. the query mix under wrk (2 threads, 64 connections, --duration s),
   alone: p99 and requests/s;
2. the same while a writer submits an import of 5 new people every 0.2 s
   (25 people/s): p99 and requests/s, and the ratios to (1);
3. import of 5, POST to searchable: the time from sending POST /requests
   to GET /people?search=<their unique name> returning all 5 (polled
   every 2 ms), during (2), and again on a quiet server; p50, p95;
4. bulk: 20 imports of 1,000 new people sent at once (20 connections),
   people/s from the first POST to all 20,000 searchable; --bursts N runs
   N such bursts back to back, each with new people (--bulk-only: only
   those, and --paths is not read).
Bounded in time and count, 127.0.0.1 only; standard library (and wrk).
"""

import argparse
import http.client
import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.parse


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs), max(1, math.ceil(p / 100 * len(xs)))) - 1]


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.hostname != "127.0.0.1":
            sys.exit("bench_writes: only 127.0.0.1")
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"content-type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())


def letters(n):
    """A unique name word for n: letters only, so it is one searchable word."""
    out = ""
    n += 26 * 26
    while n:
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
    return "Qx" + out


def import_of_5(client, n):
    """Submits 5 new people named after n; returns ms until all 5 are searchable."""
    name = letters(n)
    people = [{"first_name": "Wri%d" % i, "last_name": name, "nationality": "Writeland",
               "hobbies": ["Writing"]} for i in range(5)]
    t0 = time.perf_counter()
    status, acc = client.call("POST", "/requests", {"kind": "import", "people": people})
    if status != 202:
        sys.exit("POST import: %d %s" % (status, acc))
    deadline = t0 + 30
    while True:
        status, page = client.call("GET", "/people?search=%s&page_size=1" % name.lower())
        if status == 200 and page["total"] == 5:
            return (time.perf_counter() - t0) * 1000
        if time.perf_counter() > deadline:
            sys.exit("import %s never became searchable" % name)
        time.sleep(0.002)


def wrk(base, paths, duration):
    out = subprocess.run(
        ["wrk", "-t2", "-c64", "-d%ds" % duration, "--latency", "-s", "scripts/wrk_mix.lua", base],
        env={"WRK_PATHS": paths, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True, text=True, check=True).stdout

    def ms(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = int(re.search(r"non-2xx or socket errors: (\d+)", out).group(1))
    return {"p50_ms": p50, "p99_ms": p99, "requests_per_s": rps, "errors": errors}


def steady_writer(base, stop, latencies, start_n):
    client = Client(base)
    n = start_n
    next_at = time.perf_counter()
    while not stop.is_set():
        latencies.append(import_of_5(client, n))
        n += 1
        next_at += 0.2  # 5 imports of 5 a second: 25 people/s
        time.sleep(max(0.0, next_at - time.perf_counter()))


def bulk(base, requests=20, per_request=1000, burst=0):
    """One burst; each `burst` number has its own ids and nationality."""
    tag = "" if burst == 0 else str(burst)
    bodies = [{"kind": "import", "people": [
        {"id": "bulk%s-%d-%d" % (tag, r, i), "first_name": "Bulk%d" % i, "last_name": "Loader%d" % r,
         "nationality": "Bulkland" + tag, "hobbies": ["Loading"]} for i in range(per_request)]}
        for r in range(requests)]
    payloads = [json.dumps(b).encode() for b in bodies]
    clients = [Client(base) for _ in range(requests)]
    for c in clients:
        c.conn.connect()
    errors = []

    def post(c, data):
        c.conn.request("POST", "/requests", body=data, headers={"content-type": "application/json"})
        resp = c.conn.getresponse()
        body = resp.read()
        if resp.status != 202:
            errors.append((resp.status, body[:200]))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=post, args=(c, d)) for c, d in zip(clients, payloads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("bulk POST: %s" % errors[:3])
    poll = Client(base)
    want = requests * per_request
    deadline = t0 + 300
    while True:
        status, page = poll.call("GET", "/people?nationality=Bulkland%s&page_size=1" % tag)
        if status == 200 and page["total"] == want:
            break
        if time.perf_counter() > deadline:
            sys.exit("bulk import never became searchable: %s" % page.get("total"))
        time.sleep(0.002)
    seconds = time.perf_counter() - t0
    return {"people": want, "seconds": round(seconds, 3), "people_per_s": round(want / seconds)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:3000")
    ap.add_argument("--paths", help="the query mix, one path a line (wrk_paths.py)")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--quiet-imports", type=int, default=50)
    ap.add_argument("--bursts", type=int, default=1,
                    help="bulk bursts run back to back at the end (each with new people)")
    ap.add_argument("--bulk-only", action="store_true", help="only the bulk bursts")
    args = ap.parse_args()
    if args.bulk_only:
        return bursts(args.base, args.bursts)
    if not args.paths:
        ap.error("--paths is needed unless --bulk-only")

    alone = wrk(args.base, args.paths, args.duration)
    print(json.dumps({"run": "query mix, no writes", **alone}), flush=True)

    stop = threading.Event()
    under_load = []
    writer = threading.Thread(target=steady_writer, args=(args.base, stop, under_load, 0))
    writer.start()
    time.sleep(1)
    written = wrk(args.base, args.paths, args.duration)
    stop.set()
    writer.join()
    print(json.dumps({"run": "query mix, writer of 25 people/s in imports of 5", **written,
                      "imports": len(under_load),
                      "p99_ratio": round(written["p99_ms"] / alone["p99_ms"], 2),
                      "throughput_ratio": round(written["requests_per_s"] / alone["requests_per_s"], 2)}),
          flush=True)
    print(json.dumps({"run": "import of 5, POST to searchable, under the query mix",
                      "imports": len(under_load),
                      "p50_ms": round(percentile(under_load, 50), 1),
                      "p95_ms": round(percentile(under_load, 95), 1),
                      "max_ms": round(max(under_load), 1)}), flush=True)

    client = Client(args.base)
    quiet = [import_of_5(client, 100000 + i) for i in range(args.quiet_imports)]
    print(json.dumps({"run": "import of 5, POST to searchable, quiet server", "imports": len(quiet),
                      "p50_ms": round(percentile(quiet, 50), 1),
                      "p95_ms": round(percentile(quiet, 95), 1),
                      "max_ms": round(max(quiet), 1)}), flush=True)

    return bursts(args.base, args.bursts)


def bursts(base, n):
    for burst in range(n):
        print(json.dumps({"run": "bulk: 20 imports of 1,000 new people at once, POST to all searchable",
                          "burst": burst + 1, **bulk(base, burst=burst)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
