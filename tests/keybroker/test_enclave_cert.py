"""Broker-issued enclave certificates against a real broker: issued only for the attested key and only when
the named resource's policy allows; a real TLS handshake trusts them through the broker's CA alone."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from attestation.attesters.emulated import EmulatedAttester
from enclave.server.tls import public_jwk
from keybroker.client import KbsClient, KbsError

from .test_release import denied


@pytest.fixture(scope="module")
def cert_setup(broker, policy_docs):
    broker.admin.push_policy("development-emulated", policy_docs.development_emulated())
    broker.admin.push_policy("cert-other-fw", policy_docs.pinned("cert-other-fw", mrtd=hashlib.sha384(b"x").digest()))
    broker.admin.create_key("dev/cert/dek", policy="development-emulated")
    broker.admin.create_key("dev/cert-strict/dek", policy="cert-other-fw")


def enclave_client(broker, vendor) -> tuple[ec.EllipticCurvePrivateKey, KbsClient]:
    key = ec.generate_private_key(ec.SECP256R1())
    tee_key = ECKey.import_key(public_jwk(key.public_key()))
    return key, KbsClient(broker.url, EmulatedAttester(vendor, "tdx"), key=tee_key)


def test_certificate_for_the_attested_key_chains_to_the_published_ca(broker, vendor, cert_setup):
    key, client = enclave_client(broker, vendor)
    issued = client.request_certificate("dev/cert/dek")
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    ca = x509.load_pem_x509_certificate(broker.http.get("/kbs/v0/enclave-ca").text.encode())
    assert issued["ca"] == broker.http.get("/kbs/v0/enclave-ca").text            # byte-identical every time
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["veil-enclave"]
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert any(u.startswith("urn:veil:attestation:") for u in uris)
    assert any(u.startswith("urn:veil:policy:development-emulated:") for u in uris)
    entry = broker.last_log()
    assert (entry["kind"], entry["action"], entry["resource"]) == ("release", "certificate", "dev/cert/dek")


def _serve_once(cert_pem: str, key, ready: threading.Event, port: list[int]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    import tempfile
    with tempfile.NamedTemporaryFile("wb") as cf, tempfile.NamedTemporaryFile("wb") as kf:
        cf.write(cert_pem.encode()); cf.flush()
        kf.write(key_pem); kf.flush()
        ctx.load_cert_chain(cf.name, kf.name)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port.append(srv.getsockname()[1])
        ready.set()
        for _ in range(2):
            conn, _ = srv.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello from the enclave")
            except (ssl.SSLError, OSError):
                pass


def test_a_tls_client_trusting_only_the_broker_ca_accepts_the_enclave(broker, vendor, cert_setup, tmp_path):
    key, client = enclave_client(broker, vendor)
    issued = client.request_certificate("dev/cert/dek")
    ready, port = threading.Event(), []
    threading.Thread(target=_serve_once, args=(issued["certificate"], key, ready, port), daemon=True).start()
    ready.wait(10)
    trusting = ssl.create_default_context(cadata=issued["ca"])
    with socket.create_connection(("127.0.0.1", port[0])) as raw, \
            trusting.wrap_socket(raw, server_hostname="veil-enclave") as tls:
        assert tls.recv(64) == b"hello from the enclave"
    stranger = ssl.create_default_context()                       # system roots only: must refuse
    with socket.create_connection(("127.0.0.1", port[0])) as raw, pytest.raises(ssl.SSLCertVerificationError):
        stranger.wrap_socket(raw, server_hostname="veil-enclave")


def test_no_certificate_when_the_policy_denies(broker, vendor, cert_setup):
    _, client = enclave_client(broker, vendor)
    client.attest()
    err = denied(broker, lambda: client.request_certificate("dev/cert-strict/dek"), 401, "policy.tdx.mrtd")
    assert "certificate" not in err.detail
    assert broker.last_log()["action"] == "certificate"


def test_no_certificate_without_an_attestation_or_with_bad_names(broker, vendor, cert_setup):
    resp = broker.http.post("/kbs/v0/certificate", json={"resource": "dev/cert/dek"})
    assert resp.status_code == 401
    _, client = enclave_client(broker, vendor)
    with pytest.raises(KbsError) as info:
        client.request_certificate("dev/cert/dek", names=["Not A Name!"])
    assert (info.value.status, info.value.code) == (400, "cert.names")
