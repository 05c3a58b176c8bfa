import sys, time, cProfile, pstats
sys.path.insert(0, "bench")
import attest_verify as b
from attestation.anchors import vendor_anchors
from attestation.options import VerifyOptions
from attestation.verify import verify_claims
from attestation.tdx import verify as tv
quote = b.TDX_QUOTE.read_bytes(); text = b.TDX_COLLATERAL.read_text()
opts = VerifyOptions(anchors=vendor_anchors(), collateral=b.StaticCollateral(tdx_sets=(b.load_intel_collateral_json(text),)), at=b.TDX_AT)
e = b.Evidence(tee="tdx", report=quote)
def run(n):
    t=0
    for _ in range(n):
        tv.clear_caches(); s=time.perf_counter(); verify_claims(e, opts); t+=time.perf_counter()-s
    return t/n*1e6
run(50)
print("cold us", min(run(300) for _ in range(3)))
if len(sys.argv)>1:
    pr=cProfile.Profile(); pr.enable(); run(500); pr.disable()
    pstats.Stats(pr).sort_stats("cumtime").print_stats(60)
