"""`gearshift_headers`: the proxy reads its `x-gearshift-*` headers from the raw ASGI list in one pass."""

from __future__ import annotations

from starlette.datastructures import Headers

from gearshift.serve._step import gearshift_headers


def test_only_gearshift_headers_are_kept_and_the_first_of_a_repeated_one_counts() -> None:
    raw = [
        (b"content-type", b"application/json"),
        (b"x-gearshift-agent-id", b"planner"),
        (b"x-gearshift-max-tier", b" 2 "),
        (b"x-gearshift-agent-id", b"intruder"),
        (b"x-gearshiftless", b"no"),
    ]
    found = gearshift_headers(raw)
    assert found == {"x-gearshift-agent-id": "planner", "x-gearshift-max-tier": " 2 "}
    starlette = Headers(raw=raw)  # what the proxy looked each header up in before
    assert all(starlette.get(name) == value for name, value in found.items())


def test_values_are_read_as_latin_1_like_starlette_reads_them() -> None:
    raw = [(b"x-gearshift-run-id", "caf\u00e9".encode("latin-1"))]
    assert gearshift_headers(raw) == {"x-gearshift-run-id": Headers(raw=raw)["x-gearshift-run-id"]}
