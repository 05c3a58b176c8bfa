"""One mutation per check code: each turns claims that pass a check into claims that fail it (and only it)."""

from __future__ import annotations

from typing import Any, Callable

from attestation.claims import AnchorRef, Claims, GpuClaims, TcbStatus

Mutation = Callable[[Claims], Claims]


def set_path(model: Any, path: str, value: Any) -> Any:
    """A copy of `model` with the dotted `path` set to `value` (model_copy at every level)."""
    head, _, rest = path.partition(".")
    if not rest:
        return model.model_copy(update={head: value})
    return model.model_copy(update={head: set_path(getattr(model, head), rest, value)})


def tee_of(claims: Claims) -> Any:
    return claims.tdx if claims.tee == "tdx" else claims.snp


def other_hex(value: str) -> str:
    return ("ab" if not value.startswith("ab") else "cd") * (len(value) // 2)


def gpu(index: int, **changes: Any) -> GpuClaims:
    base = dict(index=index, architecture="hopper", source="spdm", driver_version="550.90.07",
                vbios_version="96.00.9f.00.01", nonce="00" * 32, cc_mode="on", measurement_result="success",
                anchor=AnchorRef(kind="vendor", name="nvidia-device-identity-ca", sha256="10" * 32))
    return GpuClaims(**{**base, **changes})


def _flip_anchor(anchor: AnchorRef) -> AnchorRef:
    return anchor.model_copy(update={"kind": "emulated" if anchor.kind == "vendor" else "vendor"})


def _measurement(field: str) -> Mutation:
    def mutate(c: Claims) -> Claims:
        return set_path(c, f"{c.tee}.{field}", other_hex(getattr(tee_of(c), field) or "00" * 48))
    return mutate


def _td_bit(bit: int) -> Mutation:
    return lambda c: set_path(c, "tdx.td_attributes.value", c.tdx.td_attributes.value ^ (1 << bit))


def _snp_flag(name: str) -> Mutation:
    return lambda c: set_path(c, f"snp.policy.{name}", not getattr(c.snp.policy, name))


def _zero_tcb(field: str) -> Mutation:
    def mutate(c: Claims) -> Claims:
        tcb = getattr(c.snp, field).model_copy(update={"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0})
        return set_path(c, f"snp.{field}", tcb)
    return mutate


def _first_gpu(**changes: Any) -> Mutation:
    return lambda c: c.model_copy(update={"gpus": (c.gpus[0].model_copy(update=changes),) + c.gpus[1:]})


def _cel(c: Claims) -> Claims:
    """Breaks every example's condition and nothing else: a warning, a VLEK, a non-H100 VBIOS."""
    c = c.model_copy(update={"warnings": c.warnings + ("test.warning",),
                             "gpus": tuple(g.model_copy(update={"vbios_version": "97.00.00.00.01"}) for g in c.gpus)})
    return set_path(c, "snp.signer_info.signing_key", "vlek") if c.snp else c


MUTATIONS: dict[str, Mutation] = {
    "policy.anchor": lambda c: c.model_copy(update={"anchor": _flip_anchor(c.anchor)}),
    "policy.tcb_status": lambda c: c.model_copy(update={"tcb_status": TcbStatus.OUT_OF_DATE}),
    "policy.advisories": lambda c: c.model_copy(update={"advisory_ids": c.advisory_ids + ("INTEL-SA-99999",)}),
    "policy.debug": lambda c: c.model_copy(update={"debug": True}),
    "policy.cel": _cel,
    "policy.tdx.td_attributes.sept_ve_disable": _td_bit(28),
    "policy.tdx.td_attributes.pks": _td_bit(30),
    "policy.tdx.td_attributes.kl": _td_bit(31),
    "policy.tdx.td_attributes.perfmon": _td_bit(63),
    "policy.tdx.td_attributes.reserved": _td_bit(1),
    "policy.tdx.xfam": lambda c: set_path(c, "tdx.xfam", "ffffffffffffffff"),
    "policy.tdx.fmspc": lambda c: set_path(c, "tdx.fmspc", "ffffffffffff"),
    "policy.tdx.tee_tcb_svn": lambda c: set_path(c, "tdx.tee_tcb_svn", "00" * 16),
    "policy.tdx.qe_isvsvn": lambda c: set_path(c, "tdx.qe_isvsvn", 0),
    "policy.snp.vmpl": lambda c: set_path(c, "snp.vmpl", 3),
    "policy.snp.policy.abi": lambda c: set_path(set_path(c, "snp.policy.abi_major", 0), "snp.policy.abi_minor", 0),
    "policy.snp.reported_tcb": _zero_tcb("reported_tcb"),
    "policy.snp.launch_tcb": _zero_tcb("launch_tcb"),
    "policy.snp.guest_svn": lambda c: set_path(c, "snp.guest_svn", 0),
    "policy.snp.firmware_version": lambda c: set_path(set_path(c, "snp.current_version", "0.0.0"),
                                                      "snp.committed_version", "0.0.0"),
    "policy.snp.committed_tcb": lambda c: set_path(c, "snp.committed_tcb.raw", "ff" * 8),
    "policy.gpu.architecture": _first_gpu(architecture="ampere"),
    "policy.gpu.cc_mode": _first_gpu(cc_mode="devtools"),
    "policy.gpu.rim": _first_gpu(measurement_result="fail"),
    "policy.gpu.driver_version": _first_gpu(driver_version="1.0"),
    "policy.gpu.anchor": lambda c: _first_gpu(anchor=_flip_anchor(c.gpus[0].anchor))(c),
}
MUTATIONS.update({f"policy.tdx.{m}": _measurement(m) for m in (
    "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrseam", "mrsignerseam", "mrconfigid", "mrowner",
    "mrownerconfig", "mrservicetd")})
MUTATIONS.update({f"policy.snp.{m}": _measurement(m) for m in (
    "measurement", "host_data", "id_key_digest", "author_key_digest", "family_id", "image_id", "chip_id")})
MUTATIONS.update({f"policy.snp.policy.{f}": _snp_flag(f) for f in (
    "smt", "migrate_ma", "single_socket", "cxl_allow", "mem_aes_256_xts", "rapl_dis", "ciphertext_hiding",
    "page_swap_disable")})


def gpu_count_mutation(claims: Claims, exact: int | None, minimum: int | None) -> Claims:
    """Too many or too few GPUs for the rule (or one GPU where the platform describes none)."""
    if exact is None and minimum is None:
        return claims.model_copy(update={"gpus": (gpu(0),)})
    keep = exact - 1 if exact else minimum - 1
    return claims.model_copy(update={"gpus": claims.gpus[:keep]})
