#!/usr/bin/env python3
"""Job latency and import throughput against a running local server.

    python3 scripts/bench_jobs.py --base http://127.0.0.1:3000 [--runs 20]

- report latency: time from sending POST /requests to GET /requests/{id}
  answering `completed` (polled every millisecond), for a report over all
  people and over a narrow filter; median and p95 (nearest rank).
- import throughput: 50 import requests of 1,000 new people each, sent at
  once; people per second from the first POST to the last completion.
Standard library only.
"""

import argparse
import http.client
import json
import math
import sys
import time
import urllib.parse


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs), max(1, math.ceil(p / 100 * len(xs)))) - 1]


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"content-type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())


def wait(client, rid, deadline_s=120):
    end = time.perf_counter() + deadline_s
    while True:
        status, rec = client.call("GET", "/requests/" + rid)
        if status != 200:
            sys.exit("GET /requests/%s: %d %s" % (rid, status, rec))
        if rec["status"] in ("completed", "failed"):
            return rec
        if time.perf_counter() > end:
            sys.exit("request %s did not finish" % rid)
        time.sleep(0.001)


def report_latency(client, name, filt, runs):
    samples = []
    for _ in range(runs + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        status, acc = client.call("POST", "/requests", {"kind": "report", "filter": filt})
        if status != 202:
            sys.exit("POST: %d %s" % (status, acc))
        rec = wait(client, acc["id"])
        samples.append((time.perf_counter() - t0) * 1000)
        if rec["status"] != "completed":
            sys.exit("report failed: %s" % rec)
    samples = samples[1:]
    out = {"kind": "report", "name": name, "runs": runs, "total": rec["result"]["total"],
           "p50_ms": round(percentile(samples, 50), 2), "p95_ms": round(percentile(samples, 95), 2),
           "max_ms": round(max(samples), 2)}
    print(json.dumps(out))
    return out


def import_throughput(base, requests, per_request):
    client = Client(base)
    ids = []
    t0 = time.perf_counter()
    for r in range(requests):
        people = [{"id": "bench-%d-%d" % (r, i), "first_name": "Bench%d" % i, "last_name": "Importer%d" % r,
                   "nationality": "Benchland", "hobbies": ["Benchmarking"]} for i in range(per_request)]
        status, acc = client.call("POST", "/requests", {"kind": "import", "people": people})
        if status != 202:
            sys.exit("POST import: %d %s" % (status, acc))
        ids.append(acc["id"])
    accepted = 0
    for rid in ids:
        rec = wait(client, rid, 600)
        if rec["status"] != "completed":
            sys.exit("import failed: %s" % rec)
        accepted += rec["result"]["accepted"]
    seconds = time.perf_counter() - t0
    status, page = client.call("GET", "/people?nationality=Benchland&page_size=1")
    out = {"kind": "import", "requests": requests, "people": accepted, "seconds": round(seconds, 2),
           "people_per_s": round(accepted / seconds), "searchable": page["total"]}
    print(json.dumps(out))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:3000")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--imports", type=int, default=50)
    args = ap.parse_args()
    client = Client(args.base)
    report_latency(client, "all people", {}, args.runs)
    report_latency(client, "narrow: search kowal, Polish", {"search": "kowal", "nationality": ["Polish"]}, args.runs)
    import_throughput(args.base, args.imports, 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
