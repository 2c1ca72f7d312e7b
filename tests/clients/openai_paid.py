#!/usr/bin/env python3
"""Pays for chat completions the way Routstr's users do: the official `openai` Python package,
unmodified, with a Cashu token as its API key (sent as `Authorization: Bearer cashuB...`).

    python tests/clients/openai_paid.py BASE_URL TOKEN [N]

Makes N (default 1) non-streaming chat completions of at most 8 tokens and prints a JSON
summary: for each, the HTTP status, the text, the usage and the `x-provenance-cost-msat`
header; a refused request (the package raises) is recorded with its status and message, and
the script goes on. Exit status 0 unless the package itself is missing.
"""

import json
import sys

import openai

base, token = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
client = openai.OpenAI(base_url=base.rstrip("/") + "/v1", api_key=token, max_retries=0)
results = []
for _ in range(count):
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="tiny",
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            temperature=0,
            seed=1,
        )
        completion = raw.parse()
        results.append(
            {
                "status": raw.status_code,
                "text": completion.choices[0].message.content,
                "usage": completion.usage.model_dump() if completion.usage else None,
                "cost_msat": raw.headers.get("x-provenance-cost-msat"),
            }
        )
    except openai.APIStatusError as error:
        results.append({"status": error.status_code, "error": str(error)})
print(json.dumps(results))
