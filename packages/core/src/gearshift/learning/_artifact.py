"""The router artifact: one portable JSON file, never a pickle.

```json
{"format": "gearshift.learned-router", "version": 1, "sha256": "<hex of the canonical body>",
 "body": {"models": [...], "costs": [...], "features": {...}, "predictor": {"kind": "linear", ...},
          "operating_point": {...}, "curve": {...}, "training": {...}}}
```

Arrays are objects `{"dtype": "float32", "shape": [4096, 2], "base64": "..."}` holding the raw
little-endian bytes. The checksum covers the body as written (keys sorted, no spaces), so a file cut
short, edited by hand or damaged on disk is refused instead of routing on garbage. Every refusal is a
`ConfigError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import ConfigError

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "ArtifactReader",
    "decode_array",
    "encode_array",
    "read_artifact",
    "write_artifact",
]

ARTIFACT_FORMAT = "gearshift.learned-router"
"""The `format` tag of every router artifact."""

ARTIFACT_VERSION = 1
"""The artifact version this gearshift writes, and the newest it reads."""

_DTYPES = {"float16", "float32", "float64", "int32", "int64"}
_MAX_DIM = 2**31 - 1  # larger is no real array, and overflows NumPy's shape arithmetic


def encode_array(array: np.ndarray, dtype: str = "float32") -> dict[str, Any]:
    """An array as JSON: its dtype, shape and little-endian bytes in base64."""
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {
        "dtype": dtype,
        "shape": list(data.shape),
        "base64": base64.b64encode(data.tobytes()).decode("ascii"),
    }


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def write_artifact(
    path: str | os.PathLike[str], body: Mapping[str, Any], *, kind: str = ARTIFACT_FORMAT
) -> None:
    """Write `body` with its format tag (`kind`), version and checksum, atomically (temp file, rename)."""
    canonical = _canonical(body)
    document = {
        "format": kind,
        "version": ARTIFACT_VERSION,
        "sha256": hashlib.sha256(canonical).hexdigest(),
        "body": json.loads(canonical),
    }
    target = os.fspath(path)
    temporary = f"{target}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, sort_keys=True, separators=(",", ":"))
        handle.write("\n")
    os.replace(temporary, target)


class ArtifactReader:
    """Typed access to an artifact body; every problem becomes a `ConfigError` naming the file and field."""

    def __init__(self, path: str, body: Mapping[str, Any], noun: str = "router artifact") -> None:
        self.path = path
        self.body = body
        self.noun = noun

    def fail(self, message: str) -> ConfigError:
        """The error for a malformed field."""
        return ConfigError(f"{self.noun} is malformed: {message}", source=self.path)

    def get(self, mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        """`mapping[key]`, checked to be of `kind`."""
        if not isinstance(mapping, Mapping) or key not in mapping:
            raise self.fail(f"{where}.{key} is missing")
        value = mapping[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(f"{where}.{key} has the wrong type")
        if not isinstance(value, kind):
            raise self.fail(f"{where}.{key} has the wrong type ({type(value).__name__})")
        return value

    def array(
        self, mapping: Mapping[str, Any], key: str, where: str, shape: tuple[int | None, ...]
    ) -> np.ndarray:
        """The array at `mapping[key]`, checked against `shape` (None: any length), as a writable copy."""
        spec = self.get(mapping, key, dict, where)
        return decode_array(spec, f"{where}.{key}", shape, self)


def decode_array(
    spec: Mapping[str, Any], where: str, shape: tuple[int | None, ...], reader: ArtifactReader
) -> np.ndarray:
    """The array an `encode_array` object holds; its dtype, shape and size are checked."""
    dtype = spec.get("dtype")
    dims = spec.get("shape")
    data = spec.get("base64")
    if (
        not isinstance(dtype, str)
        or dtype not in _DTYPES
        or not isinstance(dims, list)
        or not isinstance(data, str)
    ):
        raise reader.fail(f"{where} is not an encoded array")
    if len(dims) != len(shape) or any(
        not isinstance(d, int)
        or isinstance(d, bool)
        or not 0 <= d <= _MAX_DIM
        or (want is not None and d != want)
        for d, want in zip(dims, shape, strict=False)
    ):
        raise reader.fail(
            f"{where} has shape {dims}, expected {[s if s is not None else 'n' for s in shape]}"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise reader.fail(f"{where} holds invalid base64") from None
    item = np.dtype(dtype).newbyteorder("<")
    if len(raw) != item.itemsize * math.prod(dims):
        raise reader.fail(f"{where} holds {len(raw)} bytes, not the {dims} {dtype} values it declares")
    array = np.frombuffer(raw, dtype=item).reshape(dims).astype(np.dtype(dtype).newbyteorder("="))
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise reader.fail(f"{where} holds non-finite numbers")
    return array


def read_artifact(
    path: str | os.PathLike[str],
    *,
    kind: str = ARTIFACT_FORMAT,
    noun: str = "router artifact",
    how: str = "`gearshift train` or LearnedRouter.save",
) -> ArtifactReader:
    """The checked body of the artifact at `path`.

    Refuses, with a `ConfigError` naming the file: a missing or unreadable file, text that is not
    JSON (a truncated file), JSON of another kind, an artifact of a newer version than this gearshift
    reads, and a body whose checksum does not match (a corrupt or hand-edited file). `kind` is the
    format tag expected, `noun` what the messages call the file and `how` how to write one.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{noun} not found (write one with {how})", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {noun}: {exc.strerror or exc}", source=source) from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"{exc.msg} at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ConfigError(
            f"not a gearshift {noun}: the file is not valid JSON ({detail}); it may be truncated",
            source=source,
        ) from None
    if not isinstance(document, dict) or document.get("format") != kind:
        raise ConfigError(
            f"not a gearshift {noun}: expected a JSON object with format '{kind}' (write one with {how})",
            source=source,
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{noun} has an invalid version {version!r}", source=source)
    if version > ARTIFACT_VERSION:
        raise ConfigError(
            f"{noun} has format version {version}, newer than this gearshift reads "
            f"(version {ARTIFACT_VERSION}); upgrade gearshift or write it again",
            source=source,
        )
    body = document.get("body")
    if not isinstance(body, dict):
        raise ConfigError(f"{noun} is malformed: it has no body", source=source)
    try:
        digest = hashlib.sha256(_canonical(body)).hexdigest()
    except ValueError:
        digest = ""
    if document.get("sha256") != digest:
        raise ConfigError(
            f"{noun} is corrupt: its checksum does not match its contents (damaged or edited "
            "by hand); retrain or restore it",
            source=source,
        )
    return ArtifactReader(source, body, noun)
