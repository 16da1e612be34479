"""Deterministic model bytes: a valid little safetensors file per seed."""

import hashlib
import json
import struct


def model_bytes(seed: str, data_bytes: int = 4096) -> bytes:
    header = json.dumps(
        {
            "__metadata__": {"seed": seed},
            "weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    data = hashlib.shake_256(seed.encode()).digest(data_bytes)
    return struct.pack("<Q", len(header)) + header + data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
