"""`/ready` says what is missing: a provider key, or a budget store that does not answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from proxy_support import free_port, write_config

from gearshift.serve import ServeSettings, create_app, key_hash

OPS_KEY = "gs-ops-0123456789abcdef"


async def _ready(
    config: Path, keys_file: Path | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    app = create_app(ServeSettings(config=config, keys_file=keys_file))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:  # a local probe
        return await client.get("/ready", headers=headers)


async def test_a_missing_provider_key_is_not_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEARSHIFT_TEST_ANTHROPIC_KEY", raising=False)
    response = await _ready(write_config(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9"))
    assert response.status_code == 503
    assert response.json()["problems"] == ["provider 'claude' has no key: set GEARSHIFT_TEST_ANTHROPIC_KEY"]


async def test_an_unreachable_budget_store_is_not_ready(tmp_path: Path) -> None:
    budgets = f'[budgets]\nstore = "redis://:s3cret@127.0.0.1:{free_port()}/0"\n'
    response = await _ready(write_config(tmp_path, "http://127.0.0.1:9/v1", budgets=budgets))
    assert response.status_code == 503
    (problem,) = response.json()["problems"]
    assert "cannot be reached" in problem and "s3cret" not in problem


async def test_with_proxy_keys_only_a_key_holder_is_told_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe without a key learns ready or not ready, as it needs; what is missing (the variables of
    the provider keys, the budget store) was told to anyone who could reach a keyed proxy."""
    monkeypatch.delenv("GEARSHIFT_TEST_ANTHROPIC_KEY", raising=False)
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\nname = "ops"\nsha256 = "{key_hash(OPS_KEY)}"\n')
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9")
    for headers in (None, {"authorization": "Bearer gs-not-a-key-0123456789"}):
        probed = await _ready(config, keys, headers)
        assert probed.status_code == 503 and probed.json() == {"status": "not ready"}
    told = await _ready(config, keys, {"authorization": f"Bearer {OPS_KEY}"})
    assert told.status_code == 503
    assert told.json()["problems"] == ["provider 'claude' has no key: set GEARSHIFT_TEST_ANTHROPIC_KEY"]
