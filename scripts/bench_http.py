#!/usr/bin/env python3
"""Sequential, one-connection benchmark of GET /people, measured the way the
kit's `pg_reference.py bench` measures PostgreSQL: every query of the file is
run once per round, rounds interleave the queries, one sample is one
request (here: the whole HTTP round trip, total and page), percentiles are
nearest-rank.

    python3 scripts/bench_http.py --base http://127.0.0.1:3000 \
        --queries ../shared/bench/queries.jsonl --rounds 20 [--warmup 1]

Prints JSON lines (`type` per query type, then `overall`) on stdout and a
table on stderr. Standard library only.
"""

import argparse
import http.client
import json
import math
import sys
import time
import urllib.parse

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from run_queries import query_string  # noqa: E402


def percentile(xs, p):
    rank = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[min(rank, len(xs)) - 1]


def stats(samples):
    xs = sorted(samples)
    return {"n": len(xs), "p50_ms": round(percentile(xs, 50), 3),
            "p95_ms": round(percentile(xs, 95), 3), "p99_ms": round(percentile(xs, 99), 3),
            "max_ms": round(xs[-1], 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    url = urllib.parse.urlsplit(args.base)
    with open(args.queries, encoding="utf-8") as f:
        queries = [json.loads(l) for l in f if l.strip()]
    paths = [(q["name"], "/people?" + query_string(q["params"])) for q in queries]
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    samples = {name: [] for name, _ in paths}
    clock = time.perf_counter
    for rnd in range(args.warmup + args.rounds):
        for name, path in paths:
            t0 = clock()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            t1 = clock()
            if resp.status != 200:
                sys.exit("%s: HTTP %d %s" % (name, resp.status, body[:200]))
            if rnd >= args.warmup:
                samples[name].append((t1 - t0) * 1000.0)
    by_type, everything = {}, []
    for name, xs in samples.items():
        by_type.setdefault(name.split(".")[0], []).extend(xs)
        everything.extend(xs)
    err = sys.stderr
    print("HTTP bench: %d queries x %d rounds (+%d warm-up), one connection, ms" % (
        len(paths), args.rounds, args.warmup), file=err)
    print("%-10s %8s %8s %8s %8s" % ("type", "p50", "p95", "p99", "max"), file=err)
    for t, xs in by_type.items():
        rec = {"kind": "type", "type": t}
        rec.update(stats(xs))
        print(json.dumps(rec))
        print("%-10s %8.3f %8.3f %8.3f %8.3f" % (t, rec["p50_ms"], rec["p95_ms"], rec["p99_ms"], rec["max_ms"]), file=err)
    rec = {"kind": "overall", "queries": len(paths)}
    rec.update(stats(everything))
    print(json.dumps(rec))
    print("%-10s %8.3f %8.3f %8.3f %8.3f" % ("overall", rec["p50_ms"], rec["p95_ms"], rec["p99_ms"], rec["max_ms"]), file=err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
