#!/usr/bin/python3
"""Record golden chat-template renderings with Python Jinja2.

Mimics the environment transformers builds for apply_chat_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension, a json.dumps-based tojson filter, raise_exception and
strftime_now globals, and render(messages, tools, documents=None,
add_generation_prompt, bos_token, eos_token, **kwargs). strftime_now uses a
fixed clock so the goldens are reproducible; golden_test.go uses the same one.

Usage (Debian python3-jinja2):
  /usr/bin/python3 make_goldens.py /work/shared/assets/chat-templates > goldens.json
"""
import datetime
import json
import os
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime.datetime(2025, 3, 7, 9, 5, 3)


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    template_dir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    env = make_env()
    out = {}
    for tname, tokens in sorted(cases["templates"].items()):
        with open(os.path.join(template_dir, tname), encoding="utf-8") as f:
            template = env.from_string(f.read())
        for cname, conv in cases["conversations"].items():
            if "only" in conv and tname not in conv["only"]:
                continue
            for agp in (True, False):
                name = "%s/%s/agp=%s" % (tname, cname, "true" if agp else "false")
                kwargs = dict(tokens)
                kwargs.update(conv.get("kwargs", {}))
                try:
                    rendered = template.render(
                        messages=conv["messages"],
                        tools=cases["tools"] if conv.get("tools") else None,
                        documents=None,
                        add_generation_prompt=agp,
                        **kwargs)
                    out[name] = {"rendered": rendered}
                except jinja2.exceptions.TemplateError as e:
                    kind = "TemplateError" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
                    out[name] = {"error": str(e), "error_type": kind}
                except Exception as e:  # TypeError and friends from Python operators
                    out[name] = {"error": str(e), "error_type": type(e).__name__}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
