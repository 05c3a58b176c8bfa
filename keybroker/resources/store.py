"""The resource store: create, import, rotate, list, delete; every value sealed under the KEK.

Functions take the caller's SQLAlchemy session and never commit: the caller's
transaction also carries the log entry, so a value and its record of creation
land together or not at all. Tenants own repositories; a path in another
tenant's repository is "not found", so one team cannot even learn another's
resource names.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..db.engine import as_utc, utcnow
from ..db.models import Repository, Resource, ResourceVersion
from ..errors import BadRequest, Conflict, NotFound
from .kek import Kek, record_aad, seal
from .paths import ResourcePath

MAX_VALUE = 64 * 1024
GENERATE_SIZES = (16, 24, 32, 48, 64)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    path: str
    tenant: str
    policy: str | None
    versions: tuple[int, ...]
    created_at: datetime

    def as_dict(self) -> dict:
        return {"path": self.path, "tenant": self.tenant, "policy": self.policy,
                "versions": list(self.versions), "latest": max(self.versions, default=None),
                "created_at": self.created_at.isoformat()}


def new_value(value: bytes | None, size: int) -> bytes:
    """The imported value, checked, or `size` fresh random bytes."""
    if value is None:
        if size not in GENERATE_SIZES:
            raise BadRequest("resource.size", f"generated key size must be one of {GENERATE_SIZES} bytes")
        return secrets.token_bytes(size)
    if not 1 <= len(value) <= MAX_VALUE:
        raise BadRequest("resource.value", f"imported value must be 1 to {MAX_VALUE} bytes")
    return value


def _claim_repo(session: Session, tenant: str, repo: str) -> None:
    owner = session.get(Repository, repo)
    if owner is None:
        session.add(Repository(name=repo, tenant=tenant))
    elif owner.tenant != tenant:
        raise NotFound("resource.repository", f"repository {repo!r} does not exist in tenant {tenant!r}")


def find(session: Session, path: ResourcePath, tenant: str | None = None) -> Resource:
    stmt = select(Resource).where(Resource.repo == path.repo, Resource.type == path.type, Resource.tag == path.tag)
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or (tenant is not None and row.tenant != tenant):
        raise NotFound("resource.unknown", f"no resource {path}")
    return row


def _add_version(session: Session, kek: Kek, res: Resource, path: ResourcePath, version: int,
                 value: bytes) -> None:
    sealed = seal(kek, value, record_aad(str(path), version))
    session.add(ResourceVersion(resource_id=res.id, version=version, ciphertext=sealed.ciphertext,
                                wrapped_key=sealed.wrapped_key, kek_id=sealed.kek_id, created_at=utcnow()))
    session.flush()


def create(session: Session, kek: Kek, tenant: str, path: ResourcePath, value: bytes, *,
           policy: str | None) -> int:
    """A new resource at version 1 (409 if the path exists)."""
    _claim_repo(session, tenant, path.repo)
    exists = select(Resource.id).where(Resource.repo == path.repo, Resource.type == path.type,
                                       Resource.tag == path.tag)
    if session.execute(exists).first() is not None:
        raise Conflict("resource.exists", f"resource {path} already exists; rotate it for a new version")
    res = Resource(tenant=tenant, repo=path.repo, type=path.type, tag=path.tag, policy_name=policy,
                   created_at=utcnow())
    session.add(res)
    session.flush()
    _add_version(session, kek, res, path, 1, value)
    return 1


def rotate(session: Session, kek: Kek, tenant: str, path: ResourcePath, value: bytes) -> int:
    """Add the next version; releases serve the newest version from then on."""
    res = find(session, path, tenant)
    latest = session.execute(select(func.max(ResourceVersion.version))
                             .where(ResourceVersion.resource_id == res.id)).scalar_one()
    version = (latest or 0) + 1
    _add_version(session, kek, res, path, version, value)
    return version


def bind_policy(session: Session, tenant: str, path: ResourcePath, policy: str | None) -> None:
    find(session, path, tenant).policy_name = policy
    session.flush()


def remove(session: Session, tenant: str, path: ResourcePath) -> tuple[int, ...]:
    """Delete a resource and every sealed version of it; the versions deleted."""
    res = find(session, path, tenant)
    versions = tuple(session.execute(select(ResourceVersion.version).where(ResourceVersion.resource_id == res.id)
                                     .order_by(ResourceVersion.version)).scalars())
    session.execute(delete(ResourceVersion).where(ResourceVersion.resource_id == res.id))
    session.delete(res)
    session.flush()
    return versions


def listing(session: Session, tenant: str) -> list[ResourceInfo]:
    rows = session.execute(select(Resource).where(Resource.tenant == tenant)
                           .order_by(Resource.repo, Resource.type, Resource.tag)).scalars().all()
    out = []
    for res in rows:
        versions = session.execute(select(ResourceVersion.version).where(ResourceVersion.resource_id == res.id)
                                   .order_by(ResourceVersion.version)).scalars().all()
        out.append(ResourceInfo(f"{res.repo}/{res.type}/{res.tag}", res.tenant, res.policy_name,
                                tuple(versions), as_utc(res.created_at)))
    return out
