"""`veil measure …`: expected launch measurements computed from a VM's build, as reference values.

Exit codes: 0 computed (and written), 2 bad input (missing file, not a TDVF/OVMF
image, not a PE kernel, bad parameters).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from attestation.errors import ParseError
from attestation.fsutil import atomic_write
from attestation.measure import (InputDigest, MeasuredValue, MeasureError, PageAddOrder, Provenance, SnpLaunch,
                                 reference_values, render_yaml, snp_measurement, tdx_measurements)
from attestation.measure.snp import GUEST_FEATURES_DEFAULT, VCPU_TYPES
from policies.schema import ReferenceValues
from policies.schema.common import check_name

from .output import console, fail, print_json

app = typer.Typer(help="Compute expected SEV-SNP and TDX measurements from firmware, kernel, initrd and "
                       "command line, and emit them as a ReferenceValues file for policies.", no_args_is_help=True)


class Vmm(StrEnum):
    QEMU = "QEMU"
    ec2 = "ec2"
    gce = "gce"


class Order(StrEnum):
    single_pass = "single-pass"
    two_pass = "two-pass"


OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Write the ReferenceValues YAML here (atomically).")]
NameOpt = Annotated[str, typer.Option("--name", help="Prefix of the reference set names (NAME-mrtd, …).")]
BuildOpt = Annotated[Optional[str], typer.Option("--build-id", help="The build these values come from.")]
ByOpt = Annotated[str, typer.Option("--added-by", help="Who vouches for the values.")]
DaysOpt = Annotated[int, typer.Option("--valid-days", min=1, max=3650, help="Values expire after this many days.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
KernelOpt = Annotated[Optional[Path], typer.Option("--kernel", help="Kernel for direct boot (QEMU -kernel).")]
InitrdOpt = Annotated[Optional[Path], typer.Option("--initrd", help="Initrd for direct boot (needs --kernel).")]


def _read(path: Path, role: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {role} {path}: {exc.strerror}")


def _bad(exc: ParseError | MeasureError, path: Path | None = None) -> NoReturn:
    prefix = f"{path}: " if path is not None and isinstance(exc, ParseError) else ""
    fail(prefix + exc.message)


def _emit(*, command: str, name: str, values: list[MeasuredValue], provenance: Provenance, extra: dict,
          out: Path | None, build_id: str | None, added_by: str, valid_days: int, json_out: bool) -> None:
    """Validate the document against the policy schema, print the values, write --out."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        document = reference_values(name=name, description=f"Expected measurements from `{command}`.",
                                    values=values, provenance=provenance, added_by=added_by, added_at=now,
                                    expires=now + timedelta(days=valid_days), build_id=build_id)
        ReferenceValues.model_validate(document)
    except MeasureError as exc:
        _bad(exc)
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"the reference values do not validate: {'.'.join(map(str, error['loc']))}: {error['msg']}")
    text = render_yaml(document, provenance)
    if out is not None:
        atomic_write(out, text.encode("utf-8"))
    if json_out:
        print_json({"values": {v.set_name: v.value.hex() for v in values}, **extra,
                    "provenance": provenance.as_dict(), "written": str(out) if out else None})
        return
    table = Table(title=command)
    for column in ("reference set", "value"):
        table.add_column(column, overflow="fold")
    for v in values:
        table.add_row(f"{v.set_name}\n[dim]{v.description}[/]", v.value.hex())
    console.print(table)
    for item in provenance.inputs:
        console.print(f"  [dim]{item.role}[/] {item.name}  sha256:{item.sha256}", highlight=False)
    if out is not None:
        console.print(f"wrote {out} (kind: ReferenceValues, {len(values)} set(s))", highlight=False)


def _name(name: str) -> str:
    try:
        return check_name(name, "--name")
    except ValueError as exc:
        fail(str(exc))


@app.command("snp")
def snp_cmd(ovmf: Annotated[Path, typer.Option("--ovmf", help="OVMF firmware image (an SEV/SNP-capable build).")],
            vcpus: Annotated[int, typer.Option("--vcpus", help="Number of vCPUs (one VMSA each).")],
            vcpu_type: Annotated[Optional[str], typer.Option(help=f"QEMU CPU model: {', '.join(VCPU_TYPES)}.")] = None,
            vcpu_sig: Annotated[Optional[str], typer.Option(help="Or the CPUID signature, e.g. 0xa00f11.")] = None,
            vmm: Annotated[Vmm, typer.Option(help="VMM that launches the guest.")] = Vmm.QEMU,
            kernel: KernelOpt = None, initrd: InitrdOpt = None,
            append: Annotated[Optional[str], typer.Option(help="Kernel command line (needs --kernel).")] = None,
            guest_features: Annotated[str, typer.Option(help="SEV_FEATURES of the VMSAs (0x1 SNPActive; "
                                                              "0x21 adds DebugSwap, Linux ≥ 6.6).")]
            = hex(GUEST_FEATURES_DEFAULT),
            ovmf_hash: Annotated[Optional[str], typer.Option(help="Precomputed SNP OVMF hash (96 hex digits).")] = None,
            name: NameOpt = "measured", out: OutOpt = None, build_id: BuildOpt = None,
            added_by: ByOpt = "veil measure", valid_days: DaysOpt = 365, json_out: JsonOpt = False) -> None:
    """Expected SEV-SNP launch MEASUREMENT (sev-snp-measure) as a ReferenceValues set."""
    name = _name(name)
    sig = _int(vcpu_sig, "--vcpu-sig") if vcpu_sig is not None else None
    features = _int(guest_features, "--guest-features")
    seed = _hex48(ovmf_hash, "--ovmf-hash") if ovmf_hash is not None else None
    inputs = [InputDigest.of_file("firmware", ovmf, _read(ovmf, "OVMF"))]
    if kernel is not None:
        inputs.append(InputDigest.of_file("kernel", kernel, _read(kernel, "kernel")))
    if initrd is not None:
        inputs.append(InputDigest.of_file("initrd", initrd, _read(initrd, "initrd")))
    if append is not None:
        inputs.append(InputDigest.of("cmdline", "(--append, UTF-8)", append.encode("utf-8")))
    launch = SnpLaunch(ovmf=ovmf, vcpus=vcpus, vcpu_type=vcpu_type, vcpu_sig=sig, vmm=vmm.value, kernel=kernel,
                       initrd=initrd, append=append, guest_features=features, ovmf_hash=seed)
    try:
        measurement = snp_measurement(launch)
    except (ParseError, MeasureError) as exc:
        _bad(exc, ovmf)
    parameters = [("mode", "snp"), ("vcpus", str(vcpus)), ("vmm", vmm.value), ("guest_features", hex(features))]
    parameters += [("vcpu_type", vcpu_type)] if vcpu_type else []
    parameters += [("vcpu_sig", hex(sig))] if sig is not None else []
    parameters += [("ovmf_hash", seed.hex())] if seed else []
    provenance = Provenance(command="veil measure snp", inputs=tuple(inputs), parameters=tuple(parameters))
    values = [MeasuredValue(f"{name}-measurement", "SEV-SNP launch MEASUREMENT (policy: snp.measurement)",
                            measurement)]
    _emit(command="veil measure snp", name=name, values=values, provenance=provenance, extra={}, out=out,
          build_id=build_id, added_by=added_by, valid_days=valid_days, json_out=json_out)


@app.command("tdx")
def tdx_cmd(firmware: Annotated[Path, typer.Option("--firmware", help="TDVF image (OVMF built with TDX metadata).")],
            kernel: KernelOpt = None, initrd: InitrdOpt = None,
            cmdline: Annotated[str, typer.Option("--cmdline", help="Kernel command line (needs --kernel).")] = "",
            page_add_order: Annotated[Order, typer.Option(help="single-pass: upstream KVM adds and extends page by "
                                                               "page; two-pass: older TDX stacks.")]
            = Order.single_pass,
            name: NameOpt = "measured", out: OutOpt = None, build_id: BuildOpt = None,
            added_by: ByOpt = "veil measure", valid_days: DaysOpt = 365, json_out: JsonOpt = False) -> None:
    """Expected TDX MRTD (and RTMR[1], RTMR[2] for a direct kernel boot) as ReferenceValues sets."""
    name = _name(name)
    image = _read(firmware, "firmware")
    kernel_bytes = _read(kernel, "kernel") if kernel is not None else None
    initrd_bytes = _read(initrd, "initrd") if initrd is not None else None
    try:
        result = tdx_measurements(image, kernel=kernel_bytes, initrd=initrd_bytes, cmdline=cmdline,
                                  page_add_order=PageAddOrder(page_add_order.value))
    except ParseError as exc:
        _bad(exc, kernel if exc.structure == "kernel PE" else firmware)
    except MeasureError as exc:
        _bad(exc)
    inputs = [InputDigest.of_file("firmware", firmware, image)]
    inputs += [InputDigest.of_file("kernel", kernel, kernel_bytes)] if kernel_bytes is not None else []
    inputs += [InputDigest.of_file("initrd", initrd, initrd_bytes)] if initrd_bytes is not None else []
    inputs += [InputDigest.of("cmdline", "(--cmdline, UTF-8)", cmdline.encode("utf-8"))] if kernel else []
    parameters = [("page_add_order", page_add_order.value)]
    parameters += [("boot", "OVMF direct kernel boot (docs/measure.md)")] if kernel else []
    values = [MeasuredValue(f"{name}-mrtd", "TDX MRTD: TDVF pages added and extended (policy: tdx.mrtd)",
                            result.mrtd)]
    if result.rtmr1 is not None and result.rtmr2 is not None:
        values += [MeasuredValue(f"{name}-rtmr1", "TDX RTMR[1]: kernel and boot events (policy: tdx.rtmr1)",
                                 result.rtmr1),
                   MeasuredValue(f"{name}-rtmr2", "TDX RTMR[2]: command line and initrd (policy: tdx.rtmr2)",
                                 result.rtmr2)]
    extra = {"sections": [{"type": s.type.name, "memory_address": hex(s.memory_address),
                           "memory_data_size": hex(s.memory_data_size), "attributes": s.attributes}
                          for s in result.tdvf.sections],
             "events": [{"rtmr": e.rtmr, "type": e.event_type, "description": e.description,
                         "digest": e.digest.hex()} for e in result.events]}
    provenance = Provenance(command="veil measure tdx", inputs=tuple(inputs), parameters=tuple(parameters))
    _emit(command="veil measure tdx", name=name, values=values, provenance=provenance, extra=extra, out=out,
          build_id=build_id, added_by=added_by, valid_days=valid_days, json_out=json_out)


def _int(text: str, option: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        fail(f"{option} {text!r} is not an integer (decimal or 0x-hex)")


def _hex48(text: str, option: str) -> bytes:
    try:
        value = bytes.fromhex(text.strip())
    except ValueError:
        fail(f"{option} is not hex")
    if len(value) != 48:
        fail(f"{option} must be 48 bytes (96 hex digits), got {len(value)}")
    return value
