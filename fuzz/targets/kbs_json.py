"""KBS protocol JSON bodies as the broker reads them (keybroker/kbs): Request and Attestation.

Mirrors the broker: json.loads + the pydantic message (ValueError /
ValidationError are what keybroker.kbs.routes turns into 400), then the TEE
public key check and the `tee-evidence` decoding (EvidenceRejected), the
evidence parsers (ParseError) and the runtime-data binding digest (VerificationError). Anything
else would surface as a 500.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from attestation.binding import report_data
from attestation.composite import CompositeEvidence
from attestation.errors import ParseError, VerificationError
from attestation.evidence import detect_tee
from keybroker.kbs.evidence import EvidenceRejected, check_tee_pubkey, decode
from keybroker.kbs.messages import KbsAttestation, KbsRequest


def _attestation(doc: object) -> None:
    msg = KbsAttestation.model_validate(doc)
    rd = msg.runtime_data
    try:
        check_tee_pubkey(rd.tee_pubkey)
    except EvidenceRejected:
        pass
    for tee in ("tdx", "snp"):
        try:
            submitted = decode(tee, msg.tee_evidence)
        except EvidenceRejected:
            continue
        try:
            detect_tee(submitted.evidence.report)
            if submitted.additional_evidence:
                CompositeEvidence(submitted.evidence, submitted.additional_evidence).gpus()
        except ParseError:
            pass
        try:
            report_data(rd.nonce, rd.tee_pubkey, additional_evidence=submitted.additional_evidence)
        except VerificationError:           # binding.canonical_json: a denial with a reason
            pass


def test_one_input(data: bytes) -> None:
    try:
        doc = json.loads(data)
    except ValueError:                      # includes UnicodeDecodeError: routes answer 400 "not JSON"
        return
    for parse in (KbsRequest.model_validate, _attestation):
        try:
            parse(doc)
        except ValidationError:
            pass
