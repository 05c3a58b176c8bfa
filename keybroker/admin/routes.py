"""Admin API routes (/admin/v1): keys, policies, admin keys, audit export. Thin: see service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..deps import StateDep
from ..resources import store
from ..resources.paths import ResourcePath
from . import audit, principals, service
from .auth import AdminReader, Auditor, KeyAdmin, KeyReader, Operator, PolicyAdmin, PolicyReader

router = APIRouter(prefix="/admin/v1", tags=["admin"])
Seg = Annotated[str, Path(max_length=128)]
TenantQuery = Annotated[str | None, Query(max_length=64, description="the tenant meant (must be the caller's)")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyIn(_In):
    value_b64: str | None = Field(default=None, description="import this value; omit to generate")
    size: int = Field(default=32, description="bytes to generate")
    policy: str | None = None


class RotateIn(_In):
    value_b64: str | None = None
    size: int = 32


class BindIn(_In):
    policy: str | None


class PolicyIn(_In):
    text: str = Field(max_length=1 << 20, description="the ReleasePolicy document, YAML or JSON")
    references: str | None = Field(default=None, max_length=1 << 20,
                                   description="a ReferenceValues document defining the sets the policy names")


class AdminIn(_In):
    name: str = Field(max_length=128)
    roles: list[str]
    public_jwk: dict
    tenant: str | None = Field(default=None, max_length=64, description="the tenant meant (must be the caller's)")


@router.post("/keys/{repo}/{type_}/{tag}", status_code=201)
def create_key(repo: Seg, type_: Seg, tag: Seg, body: KeyIn, state: StateDep, who: KeyAdmin) -> dict:
    """Generate or import a key (version 1), optionally bound to a policy."""
    path = ResourcePath.of(repo, type_, tag)
    version = service.create_key(state, who, path, service.decode_value(body.value_b64), body.size, body.policy)
    return {"path": str(path), "version": version}


@router.post("/keys/{repo}/{type_}/{tag}/versions", status_code=201)
def rotate_key(repo: Seg, type_: Seg, tag: Seg, body: RotateIn, state: StateDep, who: KeyAdmin) -> dict:
    """Rotate: add a new version (generated or imported); releases serve the newest."""
    path = ResourcePath.of(repo, type_, tag)
    version = service.rotate_key(state, who, path, service.decode_value(body.value_b64), body.size)
    return {"path": str(path), "version": version}


@router.put("/keys/{repo}/{type_}/{tag}/policy")
def bind_policy(repo: Seg, type_: Seg, tag: Seg, body: BindIn, state: StateDep, who: KeyAdmin) -> dict:
    path = ResourcePath.of(repo, type_, tag)
    service.bind(state, who, path, body.policy)
    return {"path": str(path), "policy": body.policy}


@router.get("/keys")
def list_keys(state: StateDep, who: KeyReader) -> list[dict]:
    """Resources of the caller's tenant: paths, versions, bound policy. Never values."""
    with state.reads() as db:
        return [info.as_dict() for info in store.listing(db, who.tenant)]


@router.delete("/keys/{repo}/{type_}/{tag}")
def delete_key(repo: Seg, type_: Seg, tag: Seg, state: StateDep, who: KeyAdmin) -> dict:
    """Delete a key and every version of it; says which versions were deleted."""
    path = ResourcePath.of(repo, type_, tag)
    return {"path": str(path), "deleted_versions": list(service.delete_key(state, who, path))}


@router.post("/policies/{name}", status_code=201)
def push_policy(name: Seg, body: PolicyIn, state: StateDep, who: PolicyAdmin) -> dict:
    """Store a new version of a policy (checked and compiled first)."""
    row = service.push_policy(state, who, name, body.text, body.references)
    return {"name": row.name, "version": row.version, "digest": row.digest}


@router.get("/policies")
def list_policies(state: StateDep, who: PolicyReader) -> list[dict]:
    return service.list_policies(state, who)


@router.get("/policies/{name}/{version}")
def get_policy(name: Seg, version: Annotated[int, Path(ge=1, le=2**31 - 1)], state: StateDep,
               who: PolicyReader) -> dict:
    row = service.get_policy(state, who, name, version)
    return {"name": row.name, "version": row.version, "digest": row.digest, "text": row.text,
            "references": row.references}


@router.get("/policies/{name}")
def get_latest_policy(name: Seg, state: StateDep, who: PolicyReader) -> dict:
    """The newest version of a policy."""
    row = service.get_policy(state, who, name, None)
    return {"name": row.name, "version": row.version, "digest": row.digest, "text": row.text,
            "references": row.references}


@router.get("/admins")
def list_admins(request: Request, state: StateDep, who: AdminReader, tenant: TenantQuery = None) -> list[dict]:
    """The admin keys of the caller's tenant: kid, name, roles (public keys stay in the broker)."""
    principals.check_tenant(request, who, tenant)
    return principals.list_admins(state, who)


@router.post("/admins", status_code=201)
def add_admin(request: Request, body: AdminIn, state: StateDep, who: Operator) -> dict:
    """Register another admin's public key in the operator's own tenant."""
    principals.check_tenant(request, who, body.tenant)
    return principals.add_admin(state, who, body.name, body.roles, body.public_jwk)


@router.delete("/admins/{kid}")
def remove_admin(request: Request, kid: Seg, state: StateDep, who: Operator, tenant: TenantQuery = None) -> dict:
    """Remove an admin key of the operator's own tenant (never the tenant's last operator); what was removed."""
    principals.check_tenant(request, who, tenant)
    return principals.remove_admin(state, who, kid)


@router.get("/audit/export")
def audit_export(state: StateDep, who: Auditor) -> dict:
    """Entries (this tenant's and tenant-less attestations), all leaf hashes, signed checkpoint, log key."""
    return audit.export(state, who)


@router.post("/audit/checkpoint")
def audit_checkpoint(state: StateDep, who: Operator) -> dict:
    """Sign a checkpoint of the log as it is now."""
    return {"checkpoint": audit.checkpoint(state)}
