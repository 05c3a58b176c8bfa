"""`veil broker serve --log-format text|json` (keybroker/logs.py): one record per line, structured fields kept."""

from __future__ import annotations

import json
import logging
import pydoc

import httpx

from keybroker.logs import TextFormatter, log_config

from .conftest import start_broker


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("veil.broker", logging.INFO, __file__, 1, "request refused", None, None)
    record.__dict__.update(extra)
    return record


def _json_formatter() -> logging.Formatter:
    spec = dict(log_config("json")["formatters"]["broker"])
    return pydoc.locate(spec.pop("()"))(**spec)


def test_text_lines_keep_the_structured_fields():
    line = TextFormatter().format(_record(code="kbs.no_session", status=401))
    assert line.endswith(" INFO veil.broker request refused code=kbs.no_session status=401")


def test_json_lines_are_one_object_with_the_fields_and_no_terminal_colours():
    doc = json.loads(_json_formatter().format(_record(code="kbs.no_session", status=401, color_message="\x1b[1m")))
    assert {k: doc[k] for k in ("level", "logger", "message", "code", "status")} == {
        "level": "INFO", "logger": "veil.broker", "message": "request refused", "code": "kbs.no_session",
        "status": 401}
    assert "color_message" not in doc and doc["time"].endswith("+00:00")


def test_a_json_broker_writes_only_json_lines(trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--log-format", "json", "--workers", "2",
                          "--allow-emulated", "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    try:
        assert httpx.get(broker.url + "/kbs/v0/resource/dev/model/dek", timeout=30).status_code == 401
    finally:
        broker.stop()
    records = [json.loads(line) for line in (tmp_path / "broker.out").read_text().splitlines() if line.strip()]
    messages = [r["message"] for r in records]
    assert "Application startup complete." in messages and "Application shutdown complete." in messages
    assert any(r["level"] == "WARNING" and "EMULATED TRUST ANCHORS" in r["message"] for r in records)
    refused = [r for r in records if r["message"] == "request refused"]
    assert [(r["code"], r["status"], r["method"], r["path"], r["client"]) for r in refused] == [
        ("kbs.no_session", 401, "GET", "/kbs/v0/resource/dev/model/dek", "127.0.0.1")]
