#!/usr/bin/env python3
"""Run a queries file against the HTTP API and write one answer a line.

    python3 scripts/run_queries.py --base http://127.0.0.1:3000 \
        --queries ../shared/bench/queries.jsonl > actual.jsonl
    python3 ../shared/bench/compare.py expected.jsonl actual.jsonl

Each line of the queries file is {"name", "params"}; list parameters are sent
repeated (nationality=A&nationality=B). Output lines: {"name", "total", "ids"}.
Standard library only.
"""

import argparse
import json
import sys
import urllib.parse
import urllib.request


def query_string(params):
    pairs = []
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((key, str(v)))
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="http://127.0.0.1:3000")
    ap.add_argument("--queries", required=True)
    args = ap.parse_args()
    with open(args.queries, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            q = json.loads(line)
            url = "%s/people?%s" % (args.base, query_string(q["params"]))
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
            out = {"name": q["name"], "total": body["total"],
                   "ids": [p["id"] for p in body["items"]]}
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
