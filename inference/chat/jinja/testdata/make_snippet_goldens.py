#!/usr/bin/python3
"""Record Python Jinja2 renderings of snippets.json in transformers' setup.

Usage: /usr/bin/python3 make_snippet_goldens.py > snippet_goldens.json
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "testdata"))
from make_goldens import make_env  # noqa: E402


def main():
    with open(os.path.join(here, "snippets.json"), encoding="utf-8") as f:
        snippets = json.load(f)
    env = make_env()
    out = {}
    for name, src, variables in snippets:
        try:
            out[name] = {"rendered": env.from_string(src).render(**variables)}
        except Exception as e:
            out[name] = {"error": str(e), "error_type": type(e).__name__}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
