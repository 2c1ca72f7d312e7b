#!/usr/bin/env python3
"""Drives an Ollama API server (or the signing proxy in front of one) with the official
`ollama` Python package, unmodified, and prints a JSON summary on stdout.

    python tests/clients/ollama_client.py BASE_URL [--model NAME] [--header-prefix P]...

Four requests: `/api/generate` and `/api/chat`, each non-streaming and streaming (NDJSON).
For each, the summary has the text the client assembled, `done_reason`, `eval_count`, the
number of objects received, and the response headers whose names start with one of the
prefixes (default `x-provenance`; case-insensitive). The `ollama` client has no raw-response
API, so headers are read with an httpx response hook passed through `ollama.Client(**kwargs)`.
Exit status 0 when every request succeeded and produced text.

No Ollama server can be installed here: this script is meant to run against the signing
proxy with an upstream that replays fixtures/traffic/ollama. Note that the client parses every
line of a stream with `json.loads` (ollama/_client.py), so an empty line or a non-JSON line
in the NDJSON body makes it fail.

Install the pinned package with `bash .ci/python-clients.sh` (it prints the interpreter).
"""

import argparse
import json
import sys

import ollama
from importlib.metadata import version

PROMPT = "Why is the sky blue?"
OPTIONS = {"temperature": 0, "seed": 42, "num_predict": 32}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--model", default="llama3.2")
    parser.add_argument("--header-prefix", action="append", dest="prefixes")
    args = parser.parse_args()
    prefixes = [p.lower() for p in (args.prefixes or ["x-provenance"])]

    seen = []

    def hook(response):
        seen.append({
            name.lower(): value
            for name, value in response.headers.items()
            if any(name.lower().startswith(p) for p in prefixes)
        })

    client = ollama.Client(host=args.base_url, event_hooks={"response": [hook]})

    def run(call, stream, text_of):
        before = len(seen)
        result = call(stream)
        parts = [result] if not stream else list(result)
        last = parts[-1]
        return {
            "text": "".join(text_of(p) or "" for p in parts),
            "done": last.done,
            "done_reason": last.done_reason,
            "eval_count": last.eval_count,
            "objects": len(parts),
            "headers": seen[before] if len(seen) > before else None,
        }

    def generate(stream):
        return client.generate(model=args.model, prompt=PROMPT, options=OPTIONS, stream=stream)

    def chat(stream):
        return client.chat(model=args.model, messages=[{"role": "user", "content": PROMPT}],
                           options=OPTIONS, stream=stream)

    summary = {
        "client": f"ollama {version('ollama')}",
        "generate": run(generate, False, lambda p: p.response),
        "generate_stream": run(generate, True, lambda p: p.response),
        "chat": run(chat, False, lambda p: p.message.content),
        "chat_stream": run(chat, True, lambda p: p.message.content),
    }
    json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
    print()
    ok = all(summary[k]["text"] for k in summary if k != "client")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
