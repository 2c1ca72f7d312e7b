#!/usr/bin/env python3
"""Drives the OpenAI Responses API (`/v1/responses`) of a server (llama-server, or the signing
proxy in front of it) with the official `openai` Python package, unmodified, and prints a JSON
summary on stdout.

    python tests/clients/openai_responses.py BASE_URL [--model NAME] [--header-prefix P]...

Two requests, `responses.create` whole and streamed. For each, the summary has the text the
client assembled (`output_text`; streamed, the `response.output_text.delta` events), the
status, the usage, and the response headers whose names start with one of the prefixes
(default `x-provenance`; case-insensitive). Exit status 0 when both produced text.
"""

import sys

import openai

# The script's directory is on sys.path: the other client's header filter and driver.
from openai_client import picked, run_requests

PROMPT = "Name three primary colours."




def respond(client, model, stream, prefixes):
    raw = client.responses.with_raw_response.create(
        model=model, input=PROMPT, max_output_tokens=16, temperature=0,
        extra_body={"seed": 42}, stream=stream,
    )
    out = {"status": raw.status_code, "headers": picked(raw.headers, prefixes)}
    parsed = raw.parse()
    if not stream:
        out.update(text=parsed.output_text, response_status=parsed.status,
                   usage=parsed.usage.model_dump() if parsed.usage else None)
        return out
    text, status, usage, events = [], None, None, 0
    for event in parsed:
        events += 1
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        elif event.type == "response.completed":
            status = event.response.status
            usage = event.response.usage.model_dump() if event.response.usage else None
    out.update(text="".join(text), response_status=status, usage=usage, events=events)
    return out


def main():
    return run_requests(__doc__.split("\n\n")[0], {
        "responses": (respond, False),
        "responses_stream": (respond, True),
    })


if __name__ == "__main__":
    sys.exit(main())
