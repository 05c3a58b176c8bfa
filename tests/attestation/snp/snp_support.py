"""Helpers for the SNP tests: the real samples of corpus/evidence, and a local AMD-like hierarchy.

The local hierarchy ("ARK-Milan" → "SEV-Milan"/"SEV-VLEK-Milan" → VCEK/VLEK, RSA-PSS
SHA-384, with AMD's certificate extensions) stands in for AMD where a test needs
to sign: CRLs, revoked intermediates, VLEK extension variants. It is configured
as an `emulated` anchor, so the verifier code path is the production one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestation.anchors import Anchor, TrustAnchors, vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.options import VerifyOptions

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
AMD_OID = "1.3.6.1.4.1.3704.1"


@dataclass(frozen=True)
class Sample:
    """One real SNP sample and what corpus/README.md says it decodes to."""

    name: str
    report: str
    endorsement: str
    version: int
    product: str
    signer: str
    policy: int
    vmpl: int
    platform_info: int
    reported_tcb: tuple[int, int, int, int]       # bl, tee, snp, ucode
    firmware: str
    chip_id_prefix: str
    measurement: str
    report_data: str
    debug: bool = False
    at: datetime = NOW
    extra: dict = field(default_factory=dict)


SAMPLES = (
    Sample("virtee_milan_v2", "virtee_milan_v2/report_milan.hex", "virtee_milan_v2/vcek_milan.der",
           2, "Milan", "vcek", 0x30000, 0, 0x1, (3, 0, 8, 115), "1.52.4", "d49554ec717f4e5b",
           "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
           "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd"),
    Sample("teekit_gcp_milan_v5", "teekit_gcp_milan_v5/sev-gcp.bin", "teekit_gcp_milan_v5/sev-gcp-vcek.pem",
           5, "Milan", "vcek", 0x30000, 0, 0x25, (4, 0, 27, 222), "1.55.35", "980cf7b61876cb37",
           "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3",
           "00" * 64, extra={"mit": (11, 11), "cpuid": (0x19, 0x01, 1)}),
    Sample("azure_genoa_v3", "azure_genoa_v3/report.bin", "azure_genoa_v3/vcek-genoa.pem",
           3, "Genoa", "vcek", 0x3001F, 0, 0x24, (10, 0, 23, 84), "1.55.40", "0506ffba875e939c",
           "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae",
           "b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f" + "00" * 32,
           extra={"cpuid": (0x19, 0x11, 1), "guest_svn": 65547,
                  "family_id": "01232000000000000000000000000000", "id_key_digest": "942fd93ebde6ea7a"}),
    Sample("trustee_aws_vlek_milan_v3", "trustee_aws_vlek_milan_v3/test-vlek-report.bin",
           "trustee_aws_vlek_milan_v3/test-vlek.der",
           3, "Milan", "vlek", 0x30000, 1, 0x27, (4, 0, 24, 217), "1.55.29", "0000000000000000",
           "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0",
           "819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca",
           at=datetime(2025, 6, 1, tzinfo=timezone.utc),
           extra={"current_tcb": (4, 0, 24, 220), "committed_tcb": (4, 0, 24, 219),
                  "csp_id": "CN=cc-us-east-2.amazonaws.com"}),
    Sample("gosevguest_milan_v2_debug", "gosevguest_milan_v2_debug/attestation.bin",
           "gosevguest_milan_v2_debug/vcek.der",
           2, "Milan", "vcek", 0xB0000, 0, 0x1, (2, 0, 5, 68), "1.49.3", "3ac3fe21e13fb099",
           "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
           "0102030405" + "00" * 59, debug=True),
)


def read_report(evidence_dir: Path, relative: str) -> bytes:
    data = (evidence_dir / "snp" / relative).read_bytes()
    return bytes.fromhex(data.decode()) if relative.endswith(".hex") else data


def options(*, anchors: TrustAnchors | None = None, collateral=None, at: datetime = NOW,
            check_revocation: bool = False, allow_debug: bool = False) -> VerifyOptions:
    return VerifyOptions(anchors=anchors or vendor_anchors(), collateral=collateral or StaticCollateral(),
                         at=at, check_revocation=check_revocation, allow_debug=allow_debug)


# --------------------------------------------------------------------------- local hierarchy

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veil test AMD"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _der_int(n: int) -> bytes:
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")
    return bytes([0x02, len(body)]) + body


def _der_ia5(s: str) -> bytes:
    return bytes([0x16, len(s)]) + s.encode()


def amd_extensions(*, product_name: str, tcb: tuple[int, int, int, int], hwid: bytes | None = None,
                   csp_id: str | None = None, fmc: int | None = None) -> list[x509.UnrecognizedExtension]:
    bl, tee, snp, ucode = tcb
    values = {"1": _der_int(0), "2": _der_ia5(product_name), "3.1": _der_int(bl), "3.2": _der_int(tee),
              "3.3": _der_int(snp), "3.4": _der_int(0), "3.5": _der_int(0), "3.6": _der_int(0),
              "3.7": _der_int(0), "3.8": _der_int(ucode)}
    if fmc is not None:
        values["3.9"] = _der_int(fmc)
    if hwid is not None:
        values["4"] = hwid
    if csp_id is not None:
        values["5"] = _der_ia5(csp_id)
    return [x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{AMD_OID}.{k}"), v) for k, v in values.items()]


def issue(subject: str, key, issuer: str, issuer_key, *, extensions=(), ca: bool = False,
          not_before: datetime = NOW - timedelta(days=365),
          not_after: datetime = NOW + timedelta(days=365)) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA384(), rsa_padding=PSS)


@dataclass(frozen=True)
class LocalAmd:
    """A locally generated Milan hierarchy, configured as an emulated anchor."""

    ark_key: rsa.RSAPrivateKey
    ask_key: rsa.RSAPrivateKey
    ark: x509.Certificate
    ask: x509.Certificate
    asvk: x509.Certificate
    anchor: Anchor

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors((self.anchor,))

    def crl(self, *, revoked: tuple[int, ...] = (), signer_key=None, last: datetime = NOW - timedelta(days=1),
            next_: datetime = NOW + timedelta(days=30)) -> bytes:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.ark.subject)
                   .last_update(last).next_update(next_))
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last).build())
        crl = builder.sign(signer_key or self.ark_key, hashes.SHA384(), rsa_padding=PSS)
        return crl.public_bytes(Encoding.DER)


def make_local_amd() -> LocalAmd:
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = issue("ARK-Milan", ark_key, "ARK-Milan", ark_key, ca=True)
    ask = issue("SEV-Milan", ask_key, "ARK-Milan", ark_key, ca=True)
    asvk = issue("SEV-VLEK-Milan", ask_key, "ARK-Milan", ark_key, ca=True)
    anchor = Anchor(name="emulated-amd-milan", kind="emulated", vendor="amd", product="Milan",
                    certificate=ark, intermediates=(ask, asvk))
    return LocalAmd(ark_key, ask_key, ark, ask, asvk, anchor)


def sign_report(body: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Replace the signature of a 0x4A0-byte report: R and S as 72-byte little-endian fields."""
    der = key.sign(body[:0x2A0], ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    return body[:0x2A0] + r.to_bytes(72, "little") + s.to_bytes(72, "little") + bytes(0x170) + body[0x4A0:]

