"""A password in a URL never shows: not in store.url, reprs, ledger errors, config errors, the CLI,
provider reprs and errors, decision records or logs, whatever characters it holds.

Each password is two halves around one special character; a test asserts that neither half shows
anywhere, so a mask that stops at the special character (the old one did, at space, #, ? and /)
fails it.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import quote

import pytest

from gearshift import (
    AllModelsFailed,
    ConfigError,
    GearshiftConfig,
    LedgerUnavailable,
    Message,
    ModelPrices,
    ModelRegistry,
    ModelSpec,
    Router,
    SignalScorer,
    load_config,
    read_records,
)
from gearshift._messages import ChatRequest
from gearshift._url_secrets import mask_text, mask_url, url_secrets
from gearshift.budgets import BudgetLedger, BudgetsConfig, open_store
from gearshift.budgets._open import safe_url
from gearshift.cli import main
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import LocalOpenAIServer, LocalRedisServer, RedisServerMissing

HEAD, TAIL = "Kq7vHEAD", "TAILz9w"
SPECIALS = {
    "space": " ",
    "hash": "#",
    "question": "?",
    "slash": "/",
    "at": "@",
    "colon": ":",
    "percent": "%",
    "unicode": "é漢",
}
# What a raw special character does to a URL parser: these end the host part early.
BREAKS_THE_URL = {"hash", "question", "slash"}


def _password(special: str) -> str:
    return f"{HEAD}{SPECIALS[special]}{TAIL}"


def _assert_clean(*texts: object) -> None:
    for text in texts:
        shown = str(text)
        assert HEAD not in shown and TAIL not in shown, shown
        assert quote(HEAD) not in shown and quote(TAIL) not in shown, shown


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _url_forms(password: str, host: str = "127.0.0.1:6379") -> list[str]:
    encoded = quote(password, safe="")
    return [
        f"redis://:{password}@{host}/0",
        f"redis://default:{password}@{host}/0",
        f"rediss://:{encoded}@{host}/1",
        f"redis://default:{encoded}@{host}",
        f"redis://{host}/0?password={password}",
        f"redis://{host}/0?password={encoded}&health_check_interval=2",
        f"unix://:{encoded}@/run/redis.sock?db=0",
        f"https://gateway-user:{password}@gateway.example/v1",
        f"https://{encoded}@gateway.example/v1",
    ]


@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_every_url_form_is_masked(special: str) -> None:
    for url in _url_forms(_password(special)):
        masked = mask_url(url)
        _assert_clean(masked, safe_url(url), mask_text(f"failed at {url} just now", [url]))
        assert "***" in masked
        # The unknown-URL path of free text masks what it can see: the password up to a space.
        if special != "space":
            _assert_clean(mask_text(f"failed at {url} just now"))
        assert any(HEAD in secret for secret in url_secrets(url))


def test_masking_keeps_what_is_not_secret() -> None:
    assert mask_url("redis://default:pw@cache.internal:6380/2") == "redis://default:***@cache.internal:6380/2"
    assert mask_url("redis://cache.internal:6380/2") == "redis://cache.internal:6380/2"
    assert mask_url("https://token123@gw.example/v1") == "https://***@gw.example/v1"
    assert mask_url("redis://h/0?password=a b&db=3") == "redis://h/0?password=***&db=3"
    assert mask_url("sqlite:////var/lib/gearshift/budgets.db") == "sqlite:////var/lib/gearshift/budgets.db"
    assert mask_url("memory://") == "memory://"


@pytest.mark.parametrize("special", sorted(SPECIALS))
async def test_a_redis_store_never_shows_its_password(special: str, tmp_path: Path) -> None:
    password = _password(special)
    port = _closed_port()
    raw = f"redis://:{password}@127.0.0.1:{port}/0"
    encoded = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
    if special in BREAKS_THE_URL:
        # An unencoded / ? # ends the host part: a config error that says to percent-encode.
        with pytest.raises(ConfigError) as refused:
            open_store(raw, source="gearshift.toml")
        _assert_clean(refused.value, repr(refused.value))
        assert "percent-encode" in str(refused.value)
        urls = [encoded]
    else:
        urls = [raw, encoded]
    for url in urls:
        store = open_store(url)
        assert store.url.endswith(f"@127.0.0.1:{port}/0")
        ledger = BudgetLedger(store)
        config = BudgetsConfig.from_dict({"store": url})
        _assert_clean(
            store.url, repr(store), repr(ledger), repr(config), config.model_dump_json(exclude={"store"})
        )
        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.reserve(("agent:a",), usd=0.01, tokens=10)
        _assert_clean(caught.value, repr(caught.value), caught.value.url)
        assert f"127.0.0.1:{port}" in str(caught.value)
        await store.aclose()


@pytest.mark.parametrize("special", sorted(SPECIALS))
def test_config_files_and_the_cli_never_show_a_store_password(
    special: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    password = _password(special)
    port = _closed_port()
    url = f"redis://:{password}@127.0.0.1:{port}/x"  # a database that is not a number: refused
    path = tmp_path / "gearshift.toml"
    path.write_text(f"[budgets]\nstore = {_toml_string(url)}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "budgets.store"
    _assert_clean(caught.value)
    good = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"
    path.write_text(f"[budgets]\nstore = {_toml_string(good)}\n", encoding="utf-8")
    config = load_config(path)
    _assert_clean(repr(config), config)
    caplog.set_level(logging.DEBUG)
    assert main(["budget", "show", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "cannot be reached" in err
    _assert_clean(out, err, caplog.text)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@pytest.fixture(scope="module")
def can_run_redis() -> None:
    try:
        LocalRedisServer(start_timeout=5.0).close()
    except RedisServerMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the Redis store: {exc}")
        pytest.skip(f"no redis-server here: {exc}")


@pytest.mark.parametrize("special", sorted(SPECIALS))
async def test_a_real_redis_with_such_a_password_works_and_refuses_a_wrong_one(
    special: str, can_run_redis: None
) -> None:
    password = _password(special)
    with LocalRedisServer(password=password) as server:
        store = open_store(server.url)
        ledger = BudgetLedger(store)
        try:
            done = await ledger.reserve(("agent:a",), usd=0.01, tokens=10)
            await ledger.commit(done, usd=0.01, tokens=10)
            _assert_clean(store.url, repr(store), repr(ledger))
        finally:
            await store.aclose()
        wrong = open_store(server.url.replace(quote(TAIL), quote(TAIL[::-1])))
        try:
            with pytest.raises(LedgerUnavailable) as caught:
                await BudgetLedger(wrong).reserve(("agent:a",), usd=0.01, tokens=10)
        finally:
            await wrong.aclose()
        assert HEAD not in str(caught.value) and TAIL[::-1] not in str(caught.value)


@pytest.fixture
def caplog_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("special", sorted(SPECIALS))
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "encoded"])
async def test_a_base_url_password_stays_out_of_providers_errors_and_records(
    special: str, encoded: bool, tmp_path: Path, caplog_debug: pytest.LogCaptureFixture
) -> None:
    password = _password(special)
    secret = quote(password, safe="") if encoded else password
    port = _closed_port()
    base_url = f"http://gw-user:{secret}@127.0.0.1:{port}/v1"
    if special in BREAKS_THE_URL and not encoded:
        with pytest.raises(ConfigError) as refused:
            OpenAIProvider("gw", base_url=base_url, api_key="sk-unused-1234")
        assert refused.value.key == "providers.gw.base_url"
        with pytest.raises(ConfigError) as refused_in_file:
            GearshiftConfig.from_dict({"providers": {"gw": {"kind": "openai", "base_url": base_url}}})
        assert refused_in_file.value.key == "providers.gw.base_url"
        _assert_clean(refused.value, refused_in_file.value)
        assert "percent-encode" in str(refused.value) and "percent-encode" in str(refused_in_file.value)
        return
    providers = [
        OpenAIProvider("gw", base_url=base_url, api_key="sk-unused-1234", timeout=2.0),
        AnthropicProvider("gw-claude", base_url=base_url, api_key="sk-unused-5678", timeout=2.0),
    ]
    _assert_clean(*(repr(p) for p in providers))
    assert "gw-user:***@127.0.0.1" in repr(providers[0])
    config = GearshiftConfig.from_dict(
        {"providers": {"gw": {"kind": "openai", "base_url": base_url, "require_key": False}}}
    )
    _assert_clean(repr(config), repr(config.providers["gw"]), config)
    spec = ModelPrices(input=1.0, output=2.0)
    registry = ModelRegistry(
        [
            ModelSpec(id="a", provider="gw", model="a", tier=1, prices=spec),
            ModelSpec(id="b", provider="gw-claude", model="b", tier=2, prices=spec),
        ]
    )
    log = tmp_path / "decisions.jsonl"
    router = Router(registry, policy=SignalScorer(), providers=providers, decision_log=open_decision_log(log))
    try:
        with pytest.raises(AllModelsFailed) as caught:
            await router.acomplete("hi there")
    finally:
        await router.aclose()
    _assert_clean(
        caught.value, repr(caught.value), *caught.value.exceptions, log.read_text(), caplog_debug.text
    )
    assert [r["kind"] for r in read_records(log)] == ["decision", "attempt", "attempt"]


@pytest.mark.parametrize("special", ["space", "at", "unicode"])
async def test_a_call_through_a_base_url_with_a_password_logs_no_password(
    special: str, caplog_debug: pytest.LogCaptureFixture
) -> None:
    secret = quote(_password(special), safe="")
    with LocalOpenAIServer(models=("m",)) as server:
        base_url = server.base_url.replace("http://", f"http://gw-user:{secret}@")
        provider = OpenAIProvider("gw", base_url=base_url, require_key=False)
        spec = ModelSpec(id="m", provider="gw", model="m", tier=1, prices=ModelPrices(input=1.0, output=2.0))
        try:
            response = await provider.complete(spec, ChatRequest(messages=(Message.user("hi"),)))
        finally:
            await provider.aclose()
    assert "'m'" in response.text
    assert "HTTP Request" in caplog_debug.text  # httpx logged the request, URL and all
    _assert_clean(caplog_debug.text)
