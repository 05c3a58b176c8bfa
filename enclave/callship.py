"""Ship the enclave's per-call audit chain to the key broker's attestation log.

The shipper attests to the broker with the key that signs the chain (the
attested TLS key) as its KBS `tee-pubkey`, then posts the records appended
since the last acknowledged batch (keybroker.audit.calls). The broker appends
a batch only if it continues the chain where the previous one ended, so a
record dropped, edited or reordered between here and there is refused, and a
retried batch is acknowledged once. `veil enclave serve --broker …` ships
every `--audit-interval` seconds and once more at shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass

from joserfc.jwk import ECKey

from .callaudit import CallAuditChain, broker_payload

MAX_BATCH = 5_000                      # call records per request (well under the broker's 8 MiB)


class ShipError(Exception):
    """Records that can no longer be shipped (dropped from memory before an acknowledgement)."""


@dataclass
class Shipped:
    batches: int = 0
    records: int = 0


def for_identity(broker_url: str, attester, signing_jwk: dict, *, http=None):
    """A KBS client that attests with the call-audit signing key (the TLS key) as its tee-pubkey."""
    from keybroker.client import KbsClient
    return KbsClient(broker_url, attester, http=http, key=ECKey.import_key(signing_jwk))


class CallAuditShipper:
    def __init__(self, chain: CallAuditChain, client, *, max_batch: int = MAX_BATCH) -> None:
        """`client`: a keybroker.client.KbsClient whose key is the chain's signing key (`for_identity`)."""
        self.chain = chain
        self.client = client
        self.max_batch = max_batch
        self.next_seq = 0              # the first record the broker has not acknowledged
        self.total = Shipped()

    def ship(self) -> Shipped:
        """Post every record not yet acknowledged, in batches; what this call shipped."""
        done = Shipped()
        while True:
            pending = [e for e in self.chain.entries() if e.record.seq >= self.next_seq][: self.max_batch]
            if not pending:
                break
            if pending[0].record.seq != self.next_seq:
                raise ShipError(f"call records {self.next_seq}…{pending[0].record.seq - 1} left memory before the "
                                "broker acknowledged them; ship more often or keep more records")
            ack = self.client.ship_calls(broker_payload(pending, self.chain.public_key()))
            self.next_seq = int(ack["next_seq"])
            done.batches += 1
            done.records += len(pending)
        self.total.batches += done.batches
        self.total.records += done.records
        return done
