#!/usr/bin/env python3
"""Print the request path of every query of a queries file, one a line, for
scripts/wrk_mix.lua:  python3 scripts/wrk_paths.py queries.jsonl > paths.txt"""

import json
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from run_queries import query_string  # noqa: E402

with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.strip():
            print("/people?" + query_string(json.loads(line)["params"]))
