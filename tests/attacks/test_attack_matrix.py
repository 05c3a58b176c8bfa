"""The attack matrix (issue #8 item 2): one test per attack on the release path.

Each attack must be refused with the HTTP status and the reason code named in its `attack` mark, the
refusal must be in the attestation log as read back through the admin API's audit export, no release
may be recorded and no key material (token or JWE) may come back. Everything else is the genuine
flow against a real broker process (SQLite, and PostgreSQL where one is reachable).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import httpx
import jwt
import pytest

from attestation.attesters.emulated import EmulatedAttester, EmulatedGpuAttester
from attestation.binding import report_data
from attestation.composite import cpu_report_data, gpu_nonce
from attestation.emulated.tdx import SEPT_VE_DISABLE, TdBody, build_quote, quoting_key
from attestation.evidence import Evidence
from keybroker.admin.client import AdminClient
from keybroker.admin.keys import generate
from keybroker.client import KbsClient, attestation_body, ephemeral_key, request_body, tee_pubkey

from tests.attacks.conftest import EXPIRED_FMSPC, REVOKED_CHIP, REVOKED_FMSPC

VALUE = hashlib.sha256(b"attack-matrix key").digest()
RESOURCE = "dev/attack/dek"
OUT_OF_SCOPE = "scope/attack/dek"              # bound to a policy whose resources are dev/** only
GPU_RESOURCE = "dev/attack-gpu/dek"
OUT_OF_DATE_SVN = bytes([4, 1, 2]) + bytes(13)  # a TEE TCB the emulated collateral rates OutOfDate
KEY_FIELDS = {"token", "ciphertext", "encrypted_key", "iv", "tag", "protected"}


def attack(title: str, reason: str):
    return pytest.mark.attack(title, reason)


def gpu_policy(name: str) -> str:
    """The pinned emulated-TDX policy plus one emulated H100 in CC mode whose measurements match the RIMs."""
    from tests.keybroker.conftest import pinned
    return pinned(name) + """      gpus:
        count: 1
        architectures: [hopper]
        cc_mode: ["on"]
        require_rim_match: true
"""


@pytest.fixture(scope="module")
def setup(broker, policy_docs):
    admin = broker.admin
    admin.push_policy("attack-pinned", policy_docs.pinned("attack-pinned"))
    admin.push_policy("attack-gpu", gpu_policy("attack-gpu"))
    admin.create_key(RESOURCE, value=VALUE, policy="attack-pinned")
    admin.create_key(OUT_OF_SCOPE, value=VALUE, policy="attack-pinned")
    admin.create_key(GPU_RESOURCE, value=VALUE, policy="attack-gpu")
    return broker


# ----------------------------------------------------------------------------- the denial check

def log_entries(broker, since: int = 0) -> tuple[int, list[dict]]:
    """(log size, entries with seq >= since) as the admin API's audit export shows them."""
    data = broker.admin.export()
    return data["size"], [json.loads(e["entry"]) for e in data["entries"] if e["seq"] >= since]


def expect_denied(broker, attempt, status: int, code: str) -> dict:
    """Run `attempt` (→ httpx.Response); assert the refusal, its reason code, its log entry, no release."""
    size, _ = log_entries(broker)
    released = broker.released_count()
    resp = attempt()
    body = resp.json()
    assert resp.status_code == status, (resp.status_code, body)
    assert body["code"] == code, body
    if "reasons" in body:
        assert body["reasons"][0]["code"] == code
    assert not KEY_FIELDS & set(body), f"key material in a refusal: {sorted(body)}"
    assert base64.b64encode(VALUE).decode() not in resp.text and VALUE.hex() not in resp.text
    assert broker.released_count() == released
    _, new = log_entries(broker, size)
    logged = [e for e in new if e["kind"] == "denial" and e["decision"] == "deny" and e["reasons"]
              and e["reasons"][0]["code"] == code]
    assert logged, f"no denial {code} in the log; new entries: {[(e['kind'], e['reasons']) for e in new]}"
    assert not [e for e in new if e["kind"] == "release"]
    return logged[-1]


# ----------------------------------------------------------------------------- KBS helpers

class Session:
    """One RCAR session opened by hand, so a test can alter exactly one thing."""

    def __init__(self, broker, tee: str = "tdx") -> None:
        self.http = httpx.Client(base_url=broker.url, timeout=30)
        self.nonce = self.http.post("/kbs/v0/auth", json=request_body(tee)).json()["nonce"]
        self.key = ephemeral_key()
        self.pubkey = tee_pubkey(self.key)

    def report_data(self, *, pubkey: dict | None = None, nonce: str | None = None) -> bytes:
        return report_data(nonce or self.nonce, pubkey or self.pubkey)

    def attest(self, evidence: Evidence, *, nonce: str | None = None, additional: str = "") -> httpx.Response:
        return self.http.post("/kbs/v0/attest",
                              json=attestation_body(nonce or self.nonce, self.pubkey, evidence, additional))

    def fetch(self, path: str = RESOURCE, **headers: str) -> httpx.Response:
        return self.http.get(f"/kbs/v0/resource/{path}", headers=headers)


def genuine(vendor, session: Session, tee: str = "tdx", **fields) -> Evidence:
    return EmulatedAttester(vendor, tee, **fields).collect(session.report_data())


def test_the_genuine_flow_is_allowed(setup, vendor):
    """The control: the unaltered flow gets the key, so each denial below is down to its one change."""
    s = Session(setup)
    assert s.attest(genuine(vendor, s)).status_code == 200
    from keybroker.kbs import jwe
    assert jwe.unwrap(s.fetch().json(), s.key) == VALUE
    resp = gpu_attempt(setup, vendor, EmulatedGpuAttester(vendor))      # CPU + one GPU, as the GPU policy wants
    assert resp.status_code == 200 and KEY_FIELDS & set(resp.json()), resp.text


# ----------------------------------------------------------------------------- freshness and binding

@attack("replayed evidence: a captured quote answers a new challenge", "binding.report_data")
def test_attack_replayed_evidence(setup, vendor):
    victim = Session(setup)
    captured = genuine(vendor, victim)
    assert victim.attest(captured).status_code == 200
    attacker = Session(setup)
    expect_denied(setup, lambda: attacker.attest(captured), 401, "binding.report_data")


@attack("replayed nonce: the same attestation posted twice in its session", "kbs.nonce_consumed")
def test_attack_replayed_nonce(setup, vendor):
    s = Session(setup)
    evidence = genuine(vendor, s)
    assert s.attest(evidence).status_code == 200
    expect_denied(setup, lambda: s.attest(evidence), 401, "kbs.nonce_consumed")


@attack("evidence from another session: a victim's unused nonce and evidence in the attacker's session",
        "kbs.nonce_mismatch")
def test_attack_evidence_from_another_session(setup, vendor):
    victim, attacker = Session(setup), Session(setup)
    evidence = genuine(vendor, victim)
    expect_denied(setup, lambda: attacker.attest(evidence, nonce=victim.nonce), 401, "kbs.nonce_mismatch")
    assert victim.attest(evidence).status_code == 200          # the victim's own session is unharmed


@attack("report data bound to another key: evidence hashes a key other than the tee-pubkey sent",
        "binding.report_data")
def test_attack_report_data_bound_to_another_key(setup, vendor):
    s = Session(setup)
    evidence = EmulatedAttester(vendor, "tdx").collect(s.report_data(pubkey=tee_pubkey(ephemeral_key())))
    expect_denied(setup, lambda: s.attest(evidence), 401, "binding.report_data")


# ----------------------------------------------------------------------------- the platform

@attack("debug TD: TD_ATTRIBUTES.DEBUG set", "tdx.debug")
def test_attack_debug_td(setup, vendor):
    s = Session(setup)
    expect_denied(setup, lambda: s.attest(genuine(vendor, s, td_attributes=SEPT_VE_DISABLE | 1)), 401, "tdx.debug")


@attack("debug SNP guest: guest policy DEBUG (bit 19) set", "snp.debug")
def test_attack_debug_snp_guest(setup, vendor):
    from attestation.emulated.snp import DEFAULT_POLICY
    s = Session(setup, "snp")
    evidence = genuine(vendor, s, "snp", policy=DEFAULT_POLICY | 1 << 19)
    expect_denied(setup, lambda: s.attest(evidence), 401, "snp.debug")


@attack("downgraded TCB: TEE TCB SVNs of an OutOfDate level under a policy that wants UpToDate",
        "policy.tcb_status")
def test_attack_downgraded_tcb(setup, vendor):
    s = Session(setup)
    assert s.attest(genuine(vendor, s, tee_tcb_svn=OUT_OF_DATE_SVN)).status_code == 200   # authentic, just old
    entry = expect_denied(setup, s.fetch, 401, "policy.tcb_status")
    assert entry["reasons"][0]["actual"] == "OutOfDate" and entry["resource"] == RESOURCE


@attack("revoked PCK: the quote's PCK certificate is on Intel's PCK CRL", "tdx.pck_revoked")
def test_attack_revoked_pck(setup, vendor):
    s = Session(setup)
    expect_denied(setup, lambda: s.attest(genuine(vendor, s, fmspc=REVOKED_FMSPC)), 401, "tdx.pck_revoked")


@attack("revoked VCEK: the report's VCEK is on AMD's CRL", "snp.revoked")
def test_attack_revoked_vcek(setup, vendor):
    s = Session(setup, "snp")
    expect_denied(setup, lambda: s.attest(genuine(vendor, s, "snp", chip_id=REVOKED_CHIP)), 401, "snp.revoked")


@attack("expired collateral: the platform's TCB info ended 45 days ago", "tdx.tcb_info_expired")
def test_attack_expired_collateral(setup, vendor):
    s = Session(setup)
    expect_denied(setup, lambda: s.attest(genuine(vendor, s, fmspc=EXPIRED_FMSPC)), 401, "tdx.tcb_info_expired")


@attack("wrong root: a quote whose PCK chain ends in a root that is not a configured anchor", "tdx.pck_chain")
def test_attack_wrong_root(setup, tmp_path):
    from attestation.emulated import EmulatedVendor
    impostor = EmulatedVendor.create(tmp_path / "impostor")    # same names as the real vendor, other keys
    s = Session(setup)
    entry = expect_denied(setup, lambda: s.attest(impostor.evidence("tdx", s.report_data())), 401, "tdx.pck_chain")
    assert "not a configured Intel anchor" in entry["reasons"][0]["message"]


@attack("chain with a swapped intermediate: the impostor's PCK CA between its PCK and the real root",
        "tdx.pck_chain")
def test_attack_swapped_intermediate(setup, vendor, tmp_path):
    from attestation.emulated import EmulatedVendor
    from cryptography.hazmat.primitives.serialization import Encoding
    impostor = EmulatedVendor.create(tmp_path / "impostor")
    pck_key, pck_cert = impostor._pck_for(impostor.default_platform)
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in (pck_cert, impostor._intel.pck_ca, vendor._intel.root))
    s = Session(setup)
    quote = build_quote(TdBody(report_data=s.report_data()), version=4, body_type=None,
                        qe=quoting_key(vendor.default_platform.cpusvn, pck_key, chain))
    entry = expect_denied(setup, lambda: s.attest(Evidence("tdx", quote)), 401, "tdx.pck_chain")
    assert "PCK Platform CA" in entry["reasons"][0]["message"]


# ----------------------------------------------------------------------------- GPUs (composite evidence)

def gpu_attempt(broker, vendor, gpus) -> httpx.Response:
    """A composite attestation: GPU evidence answering the nonce derived from the session, CPU report data
    covering that evidence (attestation/composite.py)."""
    s = Session(broker)
    additional, data = cpu_report_data(gpus.collect(gpu_nonce(s.nonce, s.pubkey)), s.nonce, s.pubkey)
    resp = s.attest(EmulatedAttester(vendor, "tdx").collect(data), additional=additional)
    return resp if resp.status_code != 200 else s.fetch(GPU_RESOURCE)


@attack("GPU not in CC mode: the GPU reports CC mode off", "policy.gpu.cc_mode")
def test_attack_gpu_not_in_cc_mode(setup, vendor):
    expect_denied(setup, lambda: gpu_attempt(setup, vendor, EmulatedGpuAttester(vendor, cc_mode="off")),
                  401, "policy.gpu.cc_mode")


@attack("GPU evidence with another nonce: the GPU answered a nonce not derived from this session",
        "composite.gpu_nonce")
def test_attack_gpu_evidence_with_another_nonce(setup, vendor):

    class OtherNonce(EmulatedGpuAttester):
        def collect(self, nonce: bytes) -> tuple:
            return super().collect(os.urandom(32))
    expect_denied(setup, lambda: gpu_attempt(setup, vendor, OtherNonce(vendor)), 401, "composite.gpu_nonce")


@attack("RIM mismatch: GPU measurements differ from NVIDIA's signed RIMs", "nvidia.measurements")
def test_attack_rim_mismatch(setup, vendor):
    tampered = dict(vendor.nvidia.measurements())
    tampered[2] = hashlib.sha384(b"patched GPU firmware").digest()
    expect_denied(setup, lambda: gpu_attempt(setup, vendor, EmulatedGpuAttester(vendor, measurements=tampered)),
                  401, "nvidia.measurements")


# ----------------------------------------------------------------------------- resources and tokens

@attack("resource outside the policy's scope: a key under scope/ bound to a dev/** policy", "policy.resource")
def test_attack_resource_outside_policy_scope(setup, vendor):
    c = KbsClient(setup.url, EmulatedAttester(vendor, "tdx"))
    c.attest()
    entry = expect_denied(setup, lambda: c.http.get(f"/kbs/v0/resource/{OUT_OF_SCOPE}"), 401, "policy.resource")
    assert entry["resource"] == OUT_OF_SCOPE


@attack("token reuse after expiry: the attestation token (Bearer) and session cookie after the attestation expired",
        "kbs.attestation_expired")
def test_attack_token_reuse_after_expiry(setup, vendor):
    c = KbsClient(setup.url, EmulatedAttester(vendor, "tdx"))
    assert c.get_resource(RESOURCE, bearer=True) == VALUE                 # the token works while it is fresh
    jti = jwt.decode(c.token, options={"verify_signature": False})["jti"]
    setup.sql_exec("UPDATE attestations SET expires_at = created_at WHERE id = :id", id=jti)   # time has passed
    thief = httpx.Client(base_url=setup.url)                              # no cookie: the token alone
    expect_denied(setup, lambda: thief.get(f"/kbs/v0/resource/{RESOURCE}",
                                           headers={"Authorization": f"Bearer {c.token}"}),
                  401, "kbs.attestation_expired")
    expect_denied(setup, lambda: c.http.get(f"/kbs/v0/resource/{RESOURCE}"), 401, "kbs.attestation_expired")


# ----------------------------------------------------------------------------- the admin API

@attack("admin call without a token: create a key with no Authorization header", "admin.no_token")
def test_attack_admin_call_without_token(setup):
    path = f"dev/no-token-{uuid.uuid4().hex[:8]}/dek"
    expect_denied(setup, lambda: httpx.post(f"{setup.url}/admin/v1/keys/{path}", json={"size": 32}),
                  401, "admin.no_token")
    assert path not in {k["path"] for k in setup.admin.list_keys()}


@attack("admin call with the wrong role: an auditor creates a key and pushes a policy", "admin.role")
def test_attack_admin_call_with_wrong_role(setup, tmp_path, policy_docs):
    key_file = tmp_path / "auditor.key"
    setup.admin.add_admin("auditor", ["auditor"], generate(key_file))
    auditor = AdminClient(setup.url, key_file)
    path = f"dev/auditor-{uuid.uuid4().hex[:8]}/dek"

    def create() -> httpx.Response:
        return auditor.http.post(f"/admin/v1/keys/{path}", json={"size": 32},
                                 headers={"Authorization": f"Bearer {_token(auditor)}"})

    def push() -> httpx.Response:
        return auditor.http.post("/admin/v1/policies/attack-pinned", json={"text": policy_docs.pinned("attack-pinned")},
                                 headers={"Authorization": f"Bearer {_token(auditor)}"})

    entry = expect_denied(setup, create, 403, "admin.role")
    assert entry["actor"].startswith("auditor (") and entry["action"].startswith("admin POST /admin/v1/keys/")
    before = setup.admin.list_policies()
    expect_denied(setup, push, 403, "admin.role")
    assert path not in {k["path"] for k in setup.admin.list_keys()} and setup.admin.list_policies() == before


def _token(client: AdminClient) -> str:
    from keybroker.admin.keys import token
    return token(client._key, audience=client.audience)
