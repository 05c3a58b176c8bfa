"""API robustness (issue #8 item 5): schemathesis generates requests from the broker's own OpenAPI document
for every KBS, admin and operations route and sends them to a real broker process. No response may be a
5xx, and every status must be one the document lists for that operation. Admin routes get a fresh valid
admin token (all roles) per request, so generation reaches past authentication; KBS routes are called as
an unattested client would call them. VEIL_SCHEMATHESIS_EXAMPLES sets examples per operation (default 25).
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.keybroker.conftest import development_emulated, start_broker

EXAMPLES = int(os.environ.get("VEIL_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def api_broker(trust_dirs, tmp_path_factory):
    anchors, bundle = trust_dirs
    work = tmp_path_factory.mktemp("schemathesis")
    b = start_broker(work, f"sqlite:///{work / 'broker.db'}", "--allow-emulated", "--emulated-anchors",
                     str(anchors), "--collateral", str(bundle))
    b.admin.push_policy("development-emulated", development_emulated())
    b.admin.create_key("dev/api/dek", policy="development-emulated")
    yield b
    b.stop()


def test_no_server_errors_and_only_documented_statuses(api_broker):
    """Every operation of the document, EXAMPLES generated cases each (schemathesis strategies run by
    Hypothesis here; schemathesis' own pytest plugin does not load under this pytest)."""
    from keybroker.admin.keys import token
    api = schemathesis.openapi.from_dict(httpx.get(api_broker.url + "/openapi.json").json())
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/kbs/v0/auth", "/kbs/v0/attest", "/admin/v1/keys"}
    failures = []
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            headers = {}
            if case.path.startswith("/admin/"):
                headers["Authorization"] = f"Bearer {token(api_broker.admin._key, audience=api_broker.admin.audience)}"
            case.call_and_validate(base_url=api_broker.url, headers=headers,
                                   checks=[not_a_server_error, status_code_conformance])
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - gather every operation's failure, then report all
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
