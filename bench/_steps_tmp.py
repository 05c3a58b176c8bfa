import sys, time
sys.path.insert(0, "bench")
import attest_verify as b
from attestation.anchors import vendor_anchors
from attestation.tdx import pck, pcs, abi, trust
q = b.TDX_QUOTE.read_bytes(); col = b.load_intel_collateral_json(b.TDX_COLLATERAL.read_text())
def t(name, f, n=2000):
    f(); s=time.perf_counter()
    for _ in range(n): f()
    print(f"{name:20s} {(time.perf_counter()-s)/n*1e6:7.1f} us")
quote = abi.parse_quote(q)
pem = quote.signature.qe_cert.pck_chain_pem
t("parse_quote", lambda: abi.parse_quote(q))
t("parse_pck_chain", lambda: pck.parse_pck_chain(pem))
t("split_pem", lambda: pck.split_pem_chain(pem))
ch = pck.parse_pck_chain(pem)
ext = ch.leaf.extensions.get_extension_for_oid(pck.SGX_EXTENSION_OID).value.value
t("sgx_ext", lambda: pck.parse_sgx_extension(ext))
t("extensions", lambda: __import__('cryptography').x509.load_der_x509_certificate(pck.split_pem_chain(pem)[0]).extensions.get_extension_for_oid(pck.SGX_EXTENSION_OID))
t("tcb_info", lambda: pcs.parse_tcb_info(col.tcb_info))
t("qe_identity", lambda: pcs.parse_qe_identity(col.qe_identity))
t("cert_chain tcb", lambda: pck.load_chain(col.tcb_info_issuer_chain, "x"))
t("crl load", lambda: __import__('cryptography').x509.load_der_x509_crl(col.pck_crl))
t("crl_parts", lambda: trust.der.crl_parts(col.pck_crl))
t("cert parts", lambda: trust.der.certificate_parts(ch.leaf.public_bytes(trust.Encoding.DER)))
t("public_key leaf", lambda: ch.leaf.public_key())
k = ch.leaf.public_key()
