"""`/ready` says what is missing: a provider key, or a budget store that does not answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from proxy_support import free_port, write_config

from gearshift.serve import ServeSettings, create_app


async def _ready(config: Path) -> httpx.Response:
    app = create_app(ServeSettings(config=config))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:  # a local probe
        return await client.get("/ready")


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
