"""`veil model …`: seal a model directory, verify a sealed model, list what it holds.

The data key never appears on the command line: it is written to (or read
from) a key file created with mode 0600, for import into the key broker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from enclave.errors import EnclaveError
from enclave.secrets import KEY_SIZE, DataKey

from .output import EXIT_FAILED, console, fail

app = typer.Typer(help="Seal model weights under a data key; verify sealed models.", no_args_is_help=True)


def _progress() -> Progress:
    """A bar on a terminal only, cleared when the work ends: a run that fails leaves no stalled bar behind
    (with its time remaining) to read as a slow run; the line printed afterwards says what happened."""
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


def write_key_file(path: Path, key: DataKey) -> None:
    """Create `path` with mode 0600; never overwrite an existing key."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{path} already exists; refusing to overwrite a key file")
    except OSError as exc:
        fail(f"cannot create key file {path}: {exc.strerror}")
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.bytes())


def read_key_file(path: Path) -> DataKey:
    try:
        material = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read key file {path}: {exc.strerror}")
    if len(material) != KEY_SIZE:
        fail(f"{path} is not a Veil data key file ({KEY_SIZE} raw bytes)")
    return DataKey(material)


@app.command("seal")
def seal(
    model_dir: Annotated[Path, typer.Argument(help="A Hugging Face model directory.")],
    out_dir: Annotated[Path, typer.Argument(help="New directory for the sealed model.")],
    key_out: Annotated[Path, typer.Option(help="Write the new data key here (mode 0600) for import "
                                               "into the key broker.")],
    name: Annotated[Optional[str], typer.Option(help="Model name recorded in the manifest.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Threads (default: every core).")] = None,
) -> None:
    """Encrypt every file of MODEL_DIR under a fresh 256-bit data key."""
    from enclave.sealing import seal_model
    from enclave.sealing.seal import model_files

    key = DataKey.generate()
    try:
        total = sum(p.stat().st_size for p in model_files(model_dir))
        write_key_file(key_out, key)
        with _progress() as progress:
            task = progress.add_task("sealing", total=total)
            manifest = seal_model(model_dir, out_dir, key, model_name=name, workers=workers,
                                  progress=lambda n: progress.advance(task, n))
    except EnclaveError as exc:
        key_out.unlink(missing_ok=True)
        fail(str(exc))
    finally:
        key.wipe()
    console.print(f"sealed {len(manifest.files)} files ({manifest.total_size:,} bytes) of "
                  f"{manifest.model_name!r} into {out_dir}; data key written to {key_out} (mode 0600)")


@app.command("verify")
def verify(
    sealed_dir: Annotated[Path, typer.Argument(help="A sealed model directory.")],
    key_file: Annotated[Path, typer.Option(help="The model's data key file.")],
) -> None:
    """Authenticate every chunk of a sealed model. No plaintext is written anywhere."""
    from enclave.sealing import open_sealed

    key = read_key_file(key_file)
    try:
        model = open_sealed(sealed_dir, key)
        with _progress() as progress:
            task = progress.add_task("verifying", total=model.manifest.total_size)
            model.verify(progress=lambda n: progress.advance(task, n))
    except EnclaveError as exc:
        fail(str(exc), code=EXIT_FAILED)
    finally:
        key.wipe()
    console.print(f"[green]intact[/]: {len(model.manifest.files)} files, "
                  f"{model.manifest.total_size:,} bytes of {model.manifest.model_name!r}")
