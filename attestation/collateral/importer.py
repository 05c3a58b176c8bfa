"""Build an offline bundle, or an in-memory source, from collateral files people have.

    sets = read_sets([Path("tcb_info.json"), Path("qe_identity.json"), Path("crls/")])
    write_bundle(Path("bundle"), sets)            # all at once, or nothing

A directory argument stands for the regular files directly inside it (sorted).
Files are recognised by content (`pieces.read_piece`) and combined by
`assemble.assemble`; any bad, unknown or unused file fails the whole import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import CollateralError
from . import StaticCollateral
from .assemble import AssembledSet, assemble
from .bundle import BundleWriter
from .manifest import MANIFEST
from .pieces import MAX_PIECE_BYTES, Piece, read_piece


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files named, with each directory replaced by the regular files directly inside it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            if (path / MANIFEST).is_file():
                raise CollateralError(str(path), "is already an offline bundle",
                                      hint="pass it to --collateral as it is; import takes loose files")
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise CollateralError(str(path), "is an empty directory")
            files.extend(inside)
        else:
            files.append(path)
    return files


def read_pieces(paths: Sequence[Path]) -> list[Piece]:
    pieces = []
    for path in expand(paths):
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PIECE_BYTES + 1)
        except OSError as exc:
            raise CollateralError(str(path), f"cannot be read ({exc.strerror})",
                                  hint="check the path") from None
        pieces.append(read_piece(str(path), data))
    return pieces


def read_sets(paths: Sequence[Path]) -> tuple[list[Piece], list[AssembledSet]]:
    """The recognised pieces and the complete TDX sets they make."""
    pieces = read_pieces(paths)
    return pieces, assemble(pieces)


def static_source(sets: Sequence[AssembledSet]) -> StaticCollateral:
    return StaticCollateral(tdx_sets=tuple(s.collateral for s in sets), only_matching=True)


def write_bundle(out: Path, sets: Sequence[AssembledSet]) -> Path:
    """Write the sets into a new bundle directory (temporary directory renamed into place)."""
    seen: dict[tuple[str, str], AssembledSet] = {}
    for s in sets:
        other = seen.setdefault((s.fmspc, s.ca), s)
        if other is not s:
            raise CollateralError(
                f"TDX collateral for FMSPC {s.fmspc} ({s.ca} PCK CA)",
                f"given twice ({', '.join(other.origins[:1])}; {', '.join(s.origins[:1])})",
                hint="a bundle holds one set per platform: import them into separate bundles, "
                     "or pass the files to --collateral in the order they should be asked")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CollateralError(str(out), "already exists", hint="choose a new --out directory")
    try:
        with BundleWriter(out) as writer:
            for s in sets:
                writer.add_tdx(s.collateral, ca=s.ca)  # type: ignore[arg-type]
    except OSError as exc:
        raise CollateralError(str(out), f"cannot be written ({exc.strerror or exc})",
                              hint="check the directory's permissions and free space") from None
    return out


__all__ = ["expand", "read_pieces", "read_sets", "static_source", "write_bundle"]
