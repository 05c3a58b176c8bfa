"""The data key: attested for at the key broker (or read from a development file), held here, wiped after use."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import BootError, KeyReleaseError
from ..secrets import KEY_SIZE, DataKey
from .config import BrokerKey, KeyFile, KeySource
from .events import Event, Progress, ignore


@contextlib.contextmanager
def data_key(source: KeySource, attester, progress: Progress = ignore) -> Iterator[DataKey]:
    """The data key from `source`, wiped when the block ends (whatever else wiped it before)."""
    key = from_broker(source, attester, progress) if isinstance(source, BrokerKey) else from_file(source, progress)
    try:
        yield key
    finally:
        key.wipe()


def from_file(source: KeyFile, progress: Progress = ignore) -> DataKey:
    try:
        material = bytearray(source.path.read_bytes())
    except OSError as exc:
        raise BootError(f"cannot read key file {source.path}: {exc.strerror}") from None
    try:
        if len(material) != KEY_SIZE:
            raise BootError(f"{source.path} is not a Veil data key file ({KEY_SIZE} raw bytes)")
        key = DataKey(material)
    finally:
        material[:] = bytes(len(material))
    progress(Event("key", f"key read from {source.path} (development key file)", data={"file": str(source.path)}))
    return key


def from_broker(source: BrokerKey, attester, progress: Progress = ignore) -> DataKey:
    """Attest to the broker with `attester`'s evidence, then receive the key wrapped to our ephemeral key."""
    import httpx

    from keybroker.client import KbsClient, KbsError
    from keybroker.errors import BrokerUnreachable

    client = KbsClient(source.url, attester)
    try:
        client.attest()
        progress(Event("attested", f"attested to the broker at {source.url} ({attester.tee} evidence accepted)",
                       data={"broker": source.url, "tee": str(attester.tee)}))
        material = bytearray(client.get_resource(source.resource))
    except KbsError as exc:
        raise KeyReleaseError(f"the key broker refused the key: {exc}") from None
    except (BrokerUnreachable, httpx.HTTPError) as exc:
        why = exc.why if isinstance(exc, BrokerUnreachable) else f"{type(exc).__name__}: {exc}"
        raise BootError(f"cannot reach the key broker at {source.url} ({why}); "
                        "check --broker and that the broker is running") from None
    finally:
        client.http.close()
    try:
        key = DataKey(material)
    except ValueError as exc:
        raise KeyReleaseError(f"the key broker released {source.resource}, but it is not a data key: {exc}") from None
    finally:
        material[:] = bytes(len(material))
    progress(Event("key", f"key received: {source.resource} (256-bit, wrapped to this enclave's attested key)",
                   data={"resource": source.resource}))
    return key
