#!/usr/bin/env python3
"""Writes fixtures/traffic/ollama/: Ollama API exchanges built from the examples of Ollama's
published API documentation, for the signing proxy's Ollama adapter tests. No Ollama server can
be installed from the registries this project uses, so these are not recordings: every JSON
value below is copied from the documentation (see fixtures/traffic/README.md for the files and
commit), and the framing follows Ollama's server source at that commit:

- bodies are Go `json.Marshal` output: compact, fields in the order of the Go structs in
  api/types.go, and `<`, `>`, `&` escaped as \\u003c, \\u003e, \\u0026;
- non-streaming responses: `Content-Type: application/json; charset=utf-8` with Content-Length;
- streaming responses: `Content-Type: application/x-ndjson`, chunked, one JSON object and a
  newline per chunk (server/routes.go streamResponse).

    python3 scripts/ollama-fixtures.py [DIR]      # default fixtures/traffic/ollama
"""

import json
import sys
from pathlib import Path

HOST = "127.0.0.1:11434"
DATE = "Fri, 04 Aug 2023 19:22:45 GMT"


def go_json(value):
    """Compact JSON as Go's encoding/json writes it (HTML characters escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # Go writes small floats without an exponent down to 1e-6 (Python: "1e-05").
    return text.replace(":1e-05", ":0.00001").encode()


def request(method, path, body=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    payload = b""
    if body is not None:
        payload = go_json(body)
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


def response(body):
    payload = go_json(body)
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Date: {DATE}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload, payload


def stream(objects):
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/x-ndjson\r\n"
        f"Date: {DATE}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    raw, body = head, b""
    for obj in objects:
        line = go_json(obj) + b"\n"
        raw += f"{len(line):x}\r\n".encode() + line + b"\r\n"
        body += line
    return raw + b"0\r\n\r\n", body


METRICS_GENERATE_STREAM = {
    "total_duration": 10706818083,
    "load_duration": 6338219291,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 130079000,
    "eval_count": 259,
    "eval_duration": 4232710000,
}

# "Generate request (Streaming)" gives the first and the final object; docs/api/streaming.mdx
# gives a complete stream. Both are used, each as its own exchange.
GENERATE_STREAM = [
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "response": "The",
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "response": "",
        "done": True,
        "context": [1, 2, 3],
        **METRICS_GENERATE_STREAM,
    },
]

STREAMING_MDX = [
    ("2025-10-26T17:15:24.097767Z", "That", False),
    ("2025-10-26T17:15:24.109172Z", "'", False),
    ("2025-10-26T17:15:24.121485Z", "s", False),
    ("2025-10-26T17:15:24.132802Z", " a", False),
    ("2025-10-26T17:15:24.143931Z", " fantastic", False),
    ("2025-10-26T17:15:24.155176Z", " question", False),
    ("2025-10-26T17:15:24.166576Z", "!", True),
]


def streaming_mdx():
    out = []
    for created_at, text, done in STREAMING_MDX:
        obj = {"model": "gemma4", "created_at": created_at, "response": text, "done": done}
        if done:
            obj["done_reason"] = "stop"
        out.append(obj)
    return out


GENERATE = {
    "model": "llama3.2",
    "created_at": "2023-08-04T19:22:45.499127Z",
    "response": "The sky is blue because it is the color of the sky.",
    "done": True,
    "context": [1, 2, 3],
    "total_duration": 5043500667,
    "load_duration": 5025959,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 325953000,
    "eval_count": 290,
    "eval_duration": 4709213000,
}

CHAT_STREAM = [
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", "content": "The", "images": None},
        "done": False,
    },
    {
        "model": "llama3.2",
        "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000,
    },
]

CHAT = {
    "model": "llama3.2",
    "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"},
    "done": True,
    "total_duration": 5191566416,
    "load_duration": 2154458,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000,
    "eval_count": 298,
    "eval_duration": 4799921000,
}


def tags_model(name, modified_at, size, digest, family, parameter_size):
    return {
        "name": name,
        "model": name,
        "modified_at": modified_at,
        "size": size,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": parameter_size,
            "quantization_level": "Q4_K_M",
        },
    }


TAGS = {
    "models": [
        tags_model(
            "deepseek-r1:latest",
            "2025-05-10T08:06:48.639712648-07:00",
            4683075271,
            "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163",
            "qwen2",
            "7.6B",
        ),
        tags_model(
            "llama3.2:latest",
            "2025-05-04T17:37:44.706015396-07:00",
            2019393189,
            "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "llama",
            "3.2B",
        ),
    ]
}

# The documented /api/show example (its json5 comments dropped; the three lists are empty
# because `verbose` is not set, as the comments say).
SHOW = {
    "modelfile": '# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this one, replace the FROM line with:\n# FROM llava:latest\n\nFROM /Users/matt/.ollama/models/blobs/sha256:200765e1283640ffbd013184bf496e261032fa75b99498a9613be4e94d63ad52\nTEMPLATE """{{ .System }}\nUSER: {{ .Prompt }}\nASSISTANT: """\nPARAMETER num_ctx 4096\nPARAMETER stop "</s>"\nPARAMETER stop "USER:"\nPARAMETER stop "ASSISTANT:"',
    "parameters": 'num_keep                       24\nstop                           "<|start_header_id|>"\nstop                           "<|end_header_id|>"\nstop                           "<|eot_id|>"',
    "template": "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
    "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    },
    "model_info": {
        "general.architecture": "llama",
        "general.file_type": 2,
        "general.parameter_count": 8030261248,
        "general.quantization_version": 2,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
        "llama.attention.layer_norm_rms_epsilon": 0.00001,
        "llama.block_count": 32,
        "llama.context_length": 8192,
        "llama.embedding_length": 4096,
        "llama.feed_forward_length": 14336,
        "llama.rope.dimension_count": 128,
        "llama.rope.freq_base": 500000,
        "llama.vocab_size": 128256,
        "tokenizer.ggml.bos_token_id": 128000,
        "tokenizer.ggml.eos_token_id": 128009,
        "tokenizer.ggml.merges": [],
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "llama-bpe",
        "tokenizer.ggml.token_type": [],
        "tokenizer.ggml.tokens": [],
    },
    "capabilities": ["completion", "vision"],
}

SKY = "Why is the sky blue?"
CHAT_MESSAGES = [{"role": "user", "content": "why is the sky blue?"}]

EXCHANGES = [
    # name, method, path, request body, (raw response, decoded body), documentation section
    ("generate-stream", "POST", "/api/generate", {"model": "llama3.2", "prompt": SKY},
     stream(GENERATE_STREAM), "api.md: Generate request (Streaming)"),
    ("generate-stream-full", "POST", "/api/generate",
     {"model": "gemma4", "prompt": "Why is the sky blue?"},
     stream(streaming_mdx()), "api/streaming.mdx: the example stream"),
    ("generate", "POST", "/api/generate", {"model": "llama3.2", "prompt": SKY, "stream": False},
     response(GENERATE), "api.md: Request (No streaming)"),
    ("chat-stream", "POST", "/api/chat", {"model": "llama3.2", "messages": CHAT_MESSAGES},
     stream(CHAT_STREAM), "api.md: Chat request (Streaming)"),
    ("chat", "POST", "/api/chat",
     {"model": "llama3.2", "messages": CHAT_MESSAGES, "stream": False},
     response(CHAT), "api.md: Chat request (No streaming)"),
    ("tags", "GET", "/api/tags", None, response(TAGS), "api.md: List Local Models"),
    ("show", "POST", "/api/show", {"model": "llava"}, response(SHOW),
     "api.md: Show Model Information"),
]


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fixtures/traffic/ollama")
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for name, method, path, body, (raw, decoded), source in EXCHANGES:
        (out / f"{name}.request.http").write_bytes(request(method, path, body))
        (out / f"{name}.response.http").write_bytes(raw)
        (out / f"{name}.response.body").write_bytes(decoded)
        index.append({
            "name": name,
            "method": method,
            "path": path,
            "stream": raw.find(b"x-ndjson") >= 0,
            "source": source,
        })
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"ollama-fixtures: wrote {len(index)} exchanges to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
