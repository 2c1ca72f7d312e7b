#!/usr/bin/env python3
"""Drives an OpenAI-compatible server (llama-server, or the signing proxy in front of it) with
the official `openai` Python package, unmodified, and prints a JSON summary on stdout.

    python tests/clients/openai_client.py BASE_URL [--model NAME] [--header-prefix P]...

BASE_URL is the server root (`http://127.0.0.1:8080`); `/v1` is appended. Four requests:
chat completions and legacy completions, each non-streaming and streaming (streams ask for
usage with `stream_options.include_usage`). For each, the summary has the text the client
assembled, the finish reason, the usage if any, and the response headers whose names start
with one of the prefixes (default `x-provenance`; case-insensitive), read through the
client's raw-response API (`with_raw_response`). Exit status 0 when every request succeeded
and produced text; the package's own exceptions propagate otherwise.

Install the pinned package with `bash .ci/python-clients.sh` (it prints the interpreter).
"""

import argparse
import json
import sys

import openai

PROMPT = "Name three primary colours."


def picked(headers, prefixes):
    return {
        name.lower(): value
        for name, value in headers.items()
        if any(name.lower().startswith(p) for p in prefixes)
    }


def run(create, stream, prefixes, text_of, **request):
    """One request through `with_raw_response`; the assembled text and the picked headers."""
    if stream:
        request.update(stream=True, stream_options={"include_usage": True})
    raw = create(temperature=0, seed=42, **request)
    out = {"status": raw.status_code, "headers": picked(raw.headers, prefixes)}
    parsed = raw.parse()
    chunks = list(parsed) if stream else [parsed]
    text, finish, usage = [], None, None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            text.append(text_of(choice) or "")
            finish = choice.finish_reason or finish
    out.update(text="".join(text), finish_reason=finish, usage=usage, chunks=len(chunks))
    return out


def chat(client, model, stream, prefixes):
    return run(
        client.chat.completions.with_raw_response.create, stream, prefixes,
        lambda choice: (choice.delta if stream else choice.message).content,
        model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=32,
    )


def completion(client, model, stream, prefixes):
    return run(
        client.completions.with_raw_response.create, stream, prefixes,
        lambda choice: choice.text,
        model=model, prompt="The three primary colours are", max_tokens=24,
    )


def run_requests(description, requests):
    """Parses the command line, makes each of `requests` (summary key -> (function, stream)),
    prints the JSON summary and returns the exit status: 0 when every request produced text.
    Shared with openai_responses.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("base_url")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--header-prefix", action="append", dest="prefixes")
    args = parser.parse_args()
    prefixes = [p.lower() for p in (args.prefixes or ["x-provenance"])]
    client = openai.OpenAI(base_url=args.base_url.rstrip("/") + "/v1",
                           api_key="unused", max_retries=0, timeout=300)
    summary = {"client": f"openai {openai.__version__}"}
    for key, (request, stream) in requests.items():
        summary[key] = request(client, args.model, stream, prefixes)
    json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
    print()
    ok = all(summary[k]["text"] for k in summary if k != "client")
    return 0 if ok else 1


def main():
    return run_requests(__doc__.split("\n\n")[0], {
        "chat": (chat, False),
        "chat_stream": (chat, True),
        "completion": (completion, False),
        "completion_stream": (completion, True),
    })


if __name__ == "__main__":
    sys.exit(main())
