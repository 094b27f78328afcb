import json
import sqlite3
import time
from pathlib import Path

import pytest

from gearshift import ChatRequest, Message, Router, ToolSpec, load_config
from gearshift._errors import ConfigError
from gearshift.routing._decision_log import JSONLDecisionLog, open_decision_log, read_records
from gearshift.testing import LocalOpenAIServer, Reply

LOOKUP = ToolSpec(name="lookup", description="Look a moon up.", parameters={"type": "object"})


@pytest.mark.parametrize("name", ["log.jsonl", "log.db", "log.sqlite"])
def test_records_round_trip_in_order(tmp_path: Path, name: str) -> None:
    log = open_decision_log(tmp_path / name)
    for i in range(250):
        log.write({"kind": "attempt", "ts": float(i), "request_id": f"r{i}", "n": i})
    log.flush()
    assert [r["n"] for r in read_records(tmp_path / name)] == list(range(250))
    log.close()
    log.close()  # closing twice is harmless


def test_sqlite_log_is_a_queryable_table(tmp_path: Path) -> None:
    log = open_decision_log(tmp_path / "d.db")
    log.write({"kind": "decision", "ts": 1.0, "request_id": "x", "model": "m"})
    log.close()
    rows = sqlite3.connect(tmp_path / "d.db").execute("SELECT kind, request_id FROM records").fetchall()
    assert rows == [("decision", "x")]


def test_writing_after_close_is_an_error(tmp_path: Path) -> None:
    log = open_decision_log(tmp_path / "d.jsonl")
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.write({"kind": "x"})


def test_unknown_extension_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"log\.path.*\.jsonl"):
        open_decision_log(tmp_path / "log.txt")


@pytest.mark.parametrize("name", ["log.jsonl", "log.db"])
def test_retention_deletes_records_older_than_max_age_days_and_keeps_the_rest(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    now = time.time()
    log = open_decision_log(path)
    for age_days in (40, 31, 29, 1):
        log.write({"kind": "attempt", "ts": now - age_days * 86400, "request_id": f"r{age_days}"})
    log.close()
    if name.endswith(".jsonl"):
        with path.open("a", encoding="utf-8") as file:
            file.write("not a record\n")  # what retention cannot read, it keeps
    log = open_decision_log(path, max_age_days=30)
    log.write({"kind": "attempt", "ts": now, "request_id": "new"})
    log.close()
    kept = [r["request_id"] for r in read_records(path)] if name.endswith(".db") else None
    if kept is None:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert "not a record" in lines
        kept = [json.loads(line)["request_id"] for line in lines if line.startswith("{")]
    assert kept == ["r29", "r1", "new"]


def test_max_age_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_age_days"):
        open_decision_log(tmp_path / "d.jsonl", max_age_days=0)


def test_every_record_kind_of_the_schema_is_documented() -> None:
    from gearshift.routing._records import RECORD_KINDS, SCHEMA_VERSION

    doc = (Path(__file__).resolve().parents[2] / "docs" / "decision-log.md").read_text(encoding="utf-8")
    assert f"record schema, version {SCHEMA_VERSION}" in doc
    assert [kind for kind in RECORD_KINDS if f"**`{kind}`**" not in doc] == []


@pytest.mark.parametrize("name", ["decisions.jsonl", "decisions.db"])
@pytest.mark.parametrize("include_prompts", [True, False])
async def test_include_prompts_in_the_config_records_prompts_and_answers_in_the_decision_log(
    tmp_path: Path, name: str, include_prompts: bool
) -> None:
    prompt = "Which of the moons of Jupiter is the largest? (include_prompts check)"
    answer = "Ganymede, larger than Mercury."
    with LocalOpenAIServer(models=("small",)) as server:
        server.script("small", Reply(answer), Reply("Io", tool_calls=[("lookup", {"moon": "Io"})]))
        config = tmp_path / "gearshift.toml"
        config.write_text(
            f'[providers.local]\nkind = "openai"\nbase_url = "{server.base_url}"\nrequire_key = false\n\n'
            '[[models]]\nid = "small"\nprovider = "local"\nmodel = "small"\ntier = 1\n'
            "prices = { input = 0.1, output = 0.2 }\n\n"
            f'[log]\npath = "{name}"\ninclude_prompts = {str(include_prompts).lower()}\n',
            encoding="utf-8",
        )
        router = Router.from_config(load_config(config))
        result = await router.acomplete(prompt)
        stream = router.astream(ChatRequest(messages=(Message.user(prompt),), tools=(LOOKUP,)))
        async for _ in stream:
            pass
        await router.aclose()
    streamed = stream.result
    assert streamed is not None and streamed.response.tool_calls  # the stream answered with a tool call
    records = list(read_records(tmp_path / name))
    decisions = [r for r in records if r["kind"] == "decision"]
    assert [r["request_id"] for r in decisions] == [result.request_id, streamed.request_id]
    attempts = {r["request_id"]: r for r in records if r["kind"] == "attempt"}
    if include_prompts:
        assert [d["prompt"] for d in decisions] == [prompt, prompt]
        assert attempts[result.request_id]["answer"] == answer
        assert attempts[result.request_id]["answer_tool_calls"] == []
        assert attempts[streamed.request_id]["answer"] == "Io"
        assert attempts[streamed.request_id]["answer_tool_calls"] == [
            {"name": "lookup", "arguments": '{"moon": "Io"}'}
        ]
    else:
        assert "prompt" not in decisions[0]
        assert all("answer" not in r for r in attempts.values())
        assert all(text not in json.dumps(r) for r in records for text in (prompt, answer, "moon"))


def test_a_log_path_in_a_missing_folder_is_refused_unless_it_is_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gearshift.toml"
    config.write_text('[log]\npath = "logz/decisions.jsonl"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="does not exist") as missing:
        Router.from_config(load_config(config))
    error = missing.value
    assert (error.key, error.source, error.line) == ("log.path", str(config), 2)
    assert str(tmp_path / "logz") in str(error) and str(tmp_path / "logz" / "decisions.jsonl") in str(error)
    assert not (tmp_path / "logz").exists()  # a typo creates no folder
    (tmp_path / "afile").write_text("", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        JSONLDecisionLog(tmp_path / "afile" / "decisions.jsonl")
    # gearshift's own data folder ($GEARSHIFT_HOME here) is created as the CLI creates it.
    monkeypatch.setenv("GEARSHIFT_HOME", str(tmp_path / "home"))
    config.write_text(f'[log]\npath = "{tmp_path / "home" / "logs" / "decisions.db"}"\n', encoding="utf-8")
    router = Router.from_config(load_config(config))
    router.close()
    assert (tmp_path / "home" / "logs" / "decisions.db").is_file()


def _local_router_config(path: Path, url: str, log: str, extra_log: str = "") -> Path:
    path.write_text(
        f'[providers.local]\nkind = "openai"\nbase_url = "{url}"\nrequire_key = false\n\n'
        '[[models]]\nid = "small"\nprovider = "local"\nmodel = "small"\ntier = 1\n'
        "prices = { input = 0.1, output = 0.2 }\n\n"
        f'[log]\npath = "{log}"\n{extra_log}',
        encoding="utf-8",
    )
    return path


async def test_a_router_after_one_killed_mid_write_cuts_the_torn_line_and_the_report_reads_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from gearshift.cli import main

    log = tmp_path / "decisions.jsonl"
    with LocalOpenAIServer(models=("small",)) as server:
        config = load_config(_local_router_config(tmp_path / "gearshift.toml", server.base_url, log.name))
        router = Router.from_config(config)
        await router.acomplete("first")
        await router.aclose()
        whole = log.read_bytes()
        torn = whole + whole.splitlines(keepends=True)[-1][:25]  # killed 25 bytes into a record
        log.write_bytes(torn)
        with caplog.at_level("WARNING", logger="gearshift"):
            router = Router.from_config(config)
        await router.acomplete("second")
        await router.aclose()
    assert main(["report", "--log", str(log), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 2
    assert log.read_bytes().startswith(whole)
    assert "dropped 25 bytes of an unfinished last line" in caplog.text and str(log) in caplog.text


def test_retention_keeps_a_line_that_is_not_utf8_and_the_route_command_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gearshift.cli import main

    log = tmp_path / "decisions.jsonl"
    now = time.time()
    old = json.dumps({"kind": "attempt", "ts": now - 40 * 86400, "request_id": "old"}).encode()
    latin1 = b'{"kind": "feedback", "ts": %f, "comment": "caf\xe9"}' % (now - 50 * 86400)
    new = json.dumps({"kind": "attempt", "ts": now - 86400, "request_id": "new"}).encode()
    log.write_bytes(b"\n".join([old, latin1, new]) + b"\n")
    with LocalOpenAIServer(models=("small",)) as server:
        config = _local_router_config(
            tmp_path / "gearshift.toml", server.base_url, log.name, "max_age_days = 30\n"
        )
        assert main(["route", "--config", str(config), "--json", "hello"]) == 0
    capsys.readouterr()
    lines = log.read_bytes().splitlines()
    assert lines[:2] == [latin1, new]  # the old record went; the line retention cannot read stayed
    assert not list(tmp_path.glob("*.pruning"))


@pytest.mark.parametrize("failing", ["_drop_before", "_store"])
def test_a_writer_thread_failure_is_logged_and_never_leaves_flush_or_close_waiting(
    tmp_path: Path, failing: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    log = JSONLDecisionLog(tmp_path / "d.jsonl", max_age_days=30)
    store = log._store
    failures = []

    def fail_once(*args: object) -> None:
        if not failures:
            failures.append(args)
            raise OSError(28, "No space left on device")
        store(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(log, failing, fail_once)
    log._pruned_at -= 7200  # the hourly prune is due with the first batch
    with caplog.at_level("ERROR", logger="gearshift"):
        for request_id in ("r1", "r2"):  # r2 is written after the failure
            log.write({"kind": "attempt", "ts": time.time(), "request_id": request_id})
            flushed = threading.Thread(target=log.flush, daemon=True)
            flushed.start()
            flushed.join(10)
            assert not flushed.is_alive(), "flush() is still waiting on a dead writer thread"
        closed = threading.Thread(target=log.close, daemon=True)
        closed.start()
        closed.join(10)
        assert not closed.is_alive(), "close() is still waiting"
    assert failures and "No space left on device" in caplog.text and "d.jsonl" in caplog.text
    stored = [r["request_id"] for r in read_records(tmp_path / "d.jsonl")]
    assert stored == (["r2"] if failing == "_store" else ["r1", "r2"])


@pytest.mark.parametrize("name", ["log.jsonl", "log.db"])
def test_a_nan_or_infinite_number_is_written_as_null_and_the_record_kept(tmp_path: Path, name: str) -> None:
    log = open_decision_log(tmp_path / name)
    log.write({"kind": "attempt", "ts": 1.0, "request_id": "r1", "cost_usd": float("nan")})
    log.write({"kind": "attempt", "ts": 2.0, "request_id": "r2", "scores": {"x": [float("-inf"), 0.5]}})
    log.close()
    if name.endswith(".jsonl"):
        texts = (tmp_path / name).read_text(encoding="utf-8").splitlines()
    else:
        texts = [
            d for (d,) in sqlite3.connect(tmp_path / name).execute("SELECT data FROM records ORDER BY id")
        ]

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    records = [json.loads(text, parse_constant=refuse) for text in texts]
    assert records == [
        {"kind": "attempt", "ts": 1.0, "request_id": "r1", "cost_usd": None},
        {"kind": "attempt", "ts": 2.0, "request_id": "r2", "scores": {"x": [None, 0.5]}},
    ]
