"""Write the seed corpora: `python -m fuzz.seeds` (rewrites fuzz/corpus/ and fuzz/data/).

Seeds are real inputs: the evidence, certificates, CRLs, collateral and RIMs of
the repository's corpus/evidence (or VEIL_CORPUS), emulated TDX/SNP evidence
from attestation.emulated, the example policies, and a small model sealed here
under the fixed fuzzing key. File names are the SHA-1 of the content, as
libFuzzer names its own corpus files, so rerunning is idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from fuzz.targets._fixed import DATA, SEAL_KEY, SEALED_FILE, ec_key, ed_key

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
CORPUS = ROOT / "corpus"
EV = Path(os.environ.get("VEIL_CORPUS") or REPO / "corpus") / "evidence"


class Seeds:
    def __init__(self) -> None:
        self.by_target: dict[str, list[bytes]] = {}

    def add(self, target: str, *items: bytes | str) -> None:
        self.by_target.setdefault(target, []).extend(i.encode() if isinstance(i, str) else i for i in items)

    def write(self) -> None:
        for target, items in sorted(self.by_target.items()):
            d = CORPUS / target
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            for item in items:
                (d / hashlib.sha1(item).hexdigest()).write_bytes(item)
            print(f"{target:16} {len(items):3} seeds {sum(map(len, items)):8,} bytes")


def ev(path: str) -> bytes:
    return (EV / path).read_bytes()


def tdx(s: Seeds) -> None:
    from attestation.collateral.intel import split_pcs_body
    from attestation.emulated import EmulatedVendor
    from attestation.tdx.abi import parse_quote

    quotes = [ev(f"tdx/quotes/{n}") for n in ("dcapqvl_tdx_quote_v4.dat", "gotdx_v5_td15.dat",
                                               "teekit_tdx_v4_edgeless.dat", "trustee_tdx_quote_4_debug_v4.dat")]
    with tempfile.TemporaryDirectory() as tmp:
        vendor = EmulatedVendor.create(Path(tmp) / "vendor")
        emulated = [vendor.tdx_quote(bytes(range(64)), version=v) for v in (4, 5)]
        snp = vendor.evidence("snp", bytes(range(64))).report
    s.add("tdx_quote", *quotes, *emulated)
    s.add("tdx_verify", quotes[0], quotes[1])
    s.add("evidence_blob", quotes[0], quotes[1].hex(), base64.b64encode(quotes[2]),
          ev("snp/virtee_milan_v2/report_milan.hex"), base64.urlsafe_b64encode(snp))
    collateral = ev("tdx/collateral/dcapqvl_2025-06_b0c06f000000.json")
    (DATA / "tdx_collateral.json").write_bytes(collateral)
    doc = json.loads(collateral)
    pcs_body = ev("tdx/collateral/teekit_2025-09/tcb_info_00806f050000.json")
    s.add("tdx_collateral", b"\0" + collateral, b"\1" + doc["tcb_info"].encode(),
          b"\2" + doc["qe_identity"].encode(), b"\3" + pcs_body,
          b"\1" + split_pcs_body(pcs_body, "tcbInfo", structure="seed")[0])
    quote = parse_quote(quotes[0])
    chain = quote.signature.qe_cert.pck_chain_pem
    from cryptography import x509
    leaf = x509.load_pem_x509_certificates(chain)[0]
    ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.2.840.113741.1.13.1")).value.value
    s.add("certificates", b"\0" + chain, b"\1" + ext, b"\2" + ev("roots/intel/tcb_signing_chain_2025-2032.pem"),
          b"\2" + doc["tcb_info_issuer_chain"].encode())
    pck_crl = ev("tdx/collateral/gotdx_2023-06_50806f000000/pck_crl_platform.der")
    s.add("crl", pck_crl, ev("tdx/collateral/gotdx_2023-06_50806f000000/root_ca_crl.der"), pck_crl.hex(),
          b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(pck_crl) + b"-----END X509 CRL-----\n")
    s.add("snp_report", snp)


def snp(s: Seeds) -> None:
    from attestation.snp.certtable import build_cert_table

    milan = bytes.fromhex(ev("snp/virtee_milan_v2/report_milan.hex").decode().strip())
    reports = [milan, ev("snp/teekit_gcp_milan_v5/sev-gcp.bin"), ev("snp/azure_genoa_v3/report.bin"),
               ev("snp/trustee_aws_vlek_milan_v3/test-vlek-report.bin"), ev("snp/gosevguest_milan_v2_debug/attestation.bin")]
    s.add("snp_report", *reports)
    vcek = ev("snp/virtee_milan_v2/vcek_milan.der")
    s.add("snp_verify", milan + vcek, reports[1] + ev("snp/teekit_gcp_milan_v5/sev-gcp-vcek.pem"),
          reports[2] + ev("snp/azure_genoa_v3/vcek-genoa.pem"))
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    ask, ark = (c.public_bytes(Encoding.DER) for c in
                x509.load_pem_x509_certificates(ev("snp/virtee_milan_v2/cert_chain_milan.pem")))
    s.add("snp_certtable", build_cert_table({"vcek": vcek, "ask": ask, "ark": ark}),
          build_cert_table({"vcek": vcek}) + bytes(48))


def nvidia(s: Seeds) -> None:
    from attestation.nvidia.evidence import GpuEvidence, evidence_list_json
    from attestation.nvidia.spdm import decode_report_text

    text = ev("nvidia/hopper_2023_sample/attestationReport.txt")
    s.add("spdm_report", text, decode_report_text(ev("nvidia/hopper_2025_sample/hopperAttestationReport.txt")))
    gpu = GpuEvidence(report=decode_report_text(text), certificates=ev("nvidia/hopper_2023_sample/gpuAkCertChain.txt"),
                      uuid="GPU-fuzz", cc_mode="on")
    gpus = evidence_list_json([gpu])
    s.add("gpu_evidence", gpus)
    s.add("rim_xml", ev("nvidia/rims/1010_0200_882_96005E0001_test_no_gpu.swidtag"),
          ev("nvidia/rims/Driver_RIM_test_no_gpu.swidtag"))
    s.add("certificates", b"\2" + ev("nvidia/hopper_2023_sample/gpuAkCertChain.txt"))
    return gpus


def broker(s: Seeds, gpus: str) -> None:
    import jwt
    from joserfc.jwk import ECKey

    from keybroker.client import attestation_body, request_body, tee_pubkey
    from keybroker.kbs.jwe import wrap
    from keybroker.tokens.ear import PROFILE
    from attestation.evidence import Evidence
    from fuzz.targets.ear_jwt import ISSUER

    key = ECKey.import_key(ec_key(1))
    pub = tee_pubkey(key)
    quote = ev("tdx/quotes/dcapqvl_tdx_quote_v4.dat")
    report = ev("snp/azure_genoa_v3/report.bin")
    vcek = ev("snp/virtee_milan_v2/vcek_milan.der")
    nonce = base64.b64encode(bytes(32)).decode()
    s.add("kbs_json", json.dumps(request_body("tdx")),
          json.dumps(attestation_body(nonce, pub, Evidence("tdx", quote))),
          json.dumps(attestation_body(nonce, pub, Evidence("snp", report, (vcek,)))),
          json.dumps(attestation_body(nonce, pub, Evidence("tdx", quote), gpus)))
    s.add("jwe", json.dumps(wrap(pub, bytes(range(32)))))
    now = int(time.time())
    payload = {"eat_profile": PROFILE, "iss": ISSUER, "iat": now, "exp": now + 100 * 365 * 86400, "jti": "fuzz",
               "submods": {"cpu0": {"ear.status": "affirming"}}}
    s.add("ear_jwt", jwt.encode(payload, ec_key(2), algorithm="ES256", headers={"kid": "token-fuzz", "typ": "JWT"}))


def policies(s: Seeds) -> None:
    import re

    examples = sorted((REPO / "policies" / "examples").glob("*.yaml"))
    s.add("policy_yaml", *(p.read_bytes() for p in examples))
    conditions = [m.strip() for p in examples for m in re.findall(r"condition: (.*?)(?:#|$)", p.read_text(), re.M)]
    s.add("cel", *conditions, 'claims.tdx.rtmrs.exists(r, r == "11" + "11") && now > timestamp("2025-01-01T00:00:00Z")',
          'resource.startsWith("models/") ? claims.big > 5u : claims.ratio < 1.0')


def sealed(s: Seeds) -> None:
    import numpy as np
    from safetensors.numpy import save

    from enclave.secrets import DataKey
    from enclave.sealing.format import MANIFEST_NAME
    from enclave.sealing.seal import seal_model

    tensors = save({"embed.weight": np.arange(24, dtype=np.float32).reshape(4, 6),
                    "norm.bias": np.zeros(3, dtype=np.float16)}, metadata={"format": "pt"})
    s.add("safetensors", tensors)
    out = DATA / "sealed_model"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "fuzz-model"
        model.mkdir()
        (model / SEALED_FILE).write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                                                     "num_attention_heads": 1, "vocab_size": 32}, indent=2))
        (model / "model.safetensors").write_bytes(tensors)
        manifest = seal_model(model, out, DataKey(SEAL_KEY), chunk_size=48, workers=1)
    s.add("sealed_manifest", manifest.model_dump_json(), b"\0" + (out / MANIFEST_NAME).read_bytes())
    s.add("sealed_blob", (out / manifest.file(SEALED_FILE).blob).read_bytes())


def audit(s: Seeds) -> None:
    from datetime import datetime, timezone

    from keybroker.audit.checkpoint import Checkpoint, NoteSigner, sign_note
    from keybroker.audit.entry import LogEntry, Reason

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    entries = [
        LogEntry.record(seq=0, time=at, kind="attestation", tee="tdx", session_id="s1", decision="allow",
                        evidence=ev("tdx/quotes/dcapqvl_tdx_quote_v4.dat")[:600],
                        claims={"tee": "tdx", "tcb_status": "UpToDate", "svn": [1, 2, 3]}, verification_time=at),
        LogEntry.record(seq=1, time=at, kind="denial", decision="deny", resource="models/m/dek", policy_id="p",
                        policy_version=3, reasons=(Reason(code="policy.tdx.mrtd", message="no match",
                                                          expected="aa", actual="bb"),)),
        LogEntry.record(seq=2, time=at, kind="admin", actor="admin-1", action="key.create", tenant="t"),
    ]
    lines = [e.canonical_bytes() for e in entries]
    s.add("audit_entry", *lines, b"\n".join(lines))
    signer = NoteSigner("veil-fuzz.invalid/log", ed_key(4))
    body = Checkpoint("veil-fuzz.invalid/log", 3, hashlib.sha256(b"root").digest(), ()).body()
    s.add("audit_note", sign_note(body, [signer]), body, signer.verifier.key_string())


def main() -> None:
    if not EV.is_dir():
        sys.exit(f"real evidence corpus not found at {EV}; set VEIL_CORPUS to a folder holding evidence/")
    DATA.mkdir(exist_ok=True)
    s = Seeds()
    tdx(s)
    snp(s)
    gpus = nvidia(s)
    broker(s, gpus)
    policies(s)
    sealed(s)
    audit(s)
    s.write()
    total = sum(p.stat().st_size for p in (CORPUS).rglob("*") if p.is_file())
    data = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    print(f"corpus {total:,} bytes, data {data:,} bytes")


if __name__ == "__main__":
    main()
