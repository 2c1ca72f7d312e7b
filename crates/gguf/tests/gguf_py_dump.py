"""Prints what llama.cpp's own Python GGUF reader (PyPI `gguf`) sees in a file, as JSON.

Used by tests/gguf_py.rs as an independent oracle: tensor names, types, shapes, absolute data
offsets and sizes, the data offset and alignment, and the scalar and string metadata.
"""
import json
import sys

from gguf import GGUFReader, GGUFValueType


def main(path):
    reader = GGUFReader(path)
    fields = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or not field.types:
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            fields[name] = {"array": field.types[-1].name, "len": len(field.data)}
        elif field.types[0] in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
            continue  # float formatting differs between languages; the arrays cover them
        else:
            fields[name] = field.contents()
    tensors = [
        {
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "size": int(t.n_bytes),
            "n_elements": int(t.n_elements),
        }
        for t in reader.tensors
    ]
    json.dump(
        {
            "alignment": int(reader.alignment),
            "data_offset": int(reader.data_offset),
            "fields": fields,
            "tensors": tensors,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1])
