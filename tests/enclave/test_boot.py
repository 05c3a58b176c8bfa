"""The boot agent's key step against a REAL key broker (uvicorn subprocess, SQLite): the released key is the
one the sealed model opens under, it is wiped when boot is done with it, and refusals are clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from attestation.attesters import EmulatedAttester
from enclave.boot import BrokerKey, Event, KeyFile
from enclave.boot.key import data_key
from enclave.errors import BootError, KeyReleaseError
from enclave.keyagent import KeyAgent
from enclave.sealing import open_sealed
from tests.enclave.conftest import BOOT_RESOURCE as RESOURCE
from tests.enclave.conftest import BOOT_REFUSED as REFUSED
from tests.keybroker.conftest import free_port

REPO = Path(__file__).resolve().parents[2]



def test_the_released_key_opens_the_sealed_model_and_is_wiped_after(boot_broker, vendor, sealed_key):
    sealed, value = sealed_key
    events: list[Event] = []
    with data_key(BrokerKey(boot_broker.url, RESOURCE), EmulatedAttester(vendor, "tdx"), events.append) as key:
        assert key.bytes() == value
        assert open_sealed(sealed, key).manifest.model_name == "veil-tiny"    # what the loader does with it
    with pytest.raises(ValueError, match="wiped"):
        key.bytes()
    assert [e.kind for e in events] == ["attested", "key"]
    assert boot_broker.url in events[0].message and RESOURCE in events[1].message
    shown = " ".join(e.message + repr(e.data) for e in events)
    assert value.hex() not in shown and repr(key) == "DataKey(<redacted>)"
    assert boot_broker.released_count() >= 1


def test_a_refusing_policy_is_a_key_release_error(boot_broker, vendor):
    events: list[Event] = []
    with pytest.raises(KeyReleaseError, match="refused the key"):
        with data_key(BrokerKey(boot_broker.url, REFUSED), EmulatedAttester(vendor, "tdx"), events.append):
            pass
    assert [e.kind for e in events] == ["attested"]


def test_an_unreachable_broker_is_a_boot_error_naming_it(vendor):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BootError, match=f"cannot reach the key broker at {url}") as info:
        with data_key(BrokerKey(url, RESOURCE), EmulatedAttester(vendor, "tdx")):
            pass
    assert not isinstance(info.value, KeyReleaseError)


def test_a_key_file_of_the_wrong_size_is_refused_and_a_good_one_is_wiped_after(tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"\x07" * 31)
    with pytest.raises(BootError, match="not a Veil data key file"):
        with data_key(KeyFile(short), attester=None):
            pass
    good = tmp_path / "good.key"
    good.write_bytes(b"\x07" * 32)
    with data_key(KeyFile(good), attester=None) as key:
        assert key.bytes() == b"\x07" * 32
    with pytest.raises(ValueError, match="wiped"):
        key.bytes()


LOADER = ("import sys\nfrom enclave.keyagent import fetch_key, report, unsealed_report\n"
          "from enclave.sealing import open_sealed\n"
          "key = fetch_key(sys.argv[1])\nmodel = open_sealed(sys.argv[2], key)\nkey.wipe()\n"
          "report(sys.argv[1], unsealed_report(1715530, 0.25))\nreport(sys.argv[1], 'ok')\n"
          "print(model.manifest.model_name)")


def test_the_broker_key_reaches_a_loading_worker_through_the_key_agent_only(boot_broker, vendor, sealed_key):
    """broker → enclave.boot → key agent → a child process doing what the loader does; every copy wiped."""
    sealed, value = sealed_key
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with data_key(BrokerKey(boot_broker.url, RESOURCE), EmulatedAttester(vendor, "tdx")) as key:
        with KeyAgent(key, uses=1) as agent:
            worker = subprocess.run([sys.executable, "-c", LOADER, agent.name, str(sealed)], capture_output=True,
                                    text=True, timeout=120, cwd=REPO, env=env)
            assert worker.returncode == 0, worker.stderr
            assert worker.stdout.strip() == "veil-tiny"
            assert value.hex() not in agent.name and value.hex() not in worker.stdout + worker.stderr
            assert agent.served == 1 and agent.errors() == []
            assert agent.unsealed() == [(1715530, 0.25)]
            with pytest.raises(ValueError, match="wiped"):        # served its one use: the agent's copy is gone
                agent._key.bytes()
    with pytest.raises(ValueError, match="wiped"):
        key.bytes()
