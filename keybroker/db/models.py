"""The broker's tables (SQLAlchemy 2). The schema is created only by Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


UtcTime = DateTime(timezone=True)


class KbsSession(Base):
    """An RCAR session: its challenge nonce is single-use and expires."""

    __tablename__ = "kbs_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    tee: Mapped[str] = mapped_column(String(32))
    hash_alg: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    expires_at: Mapped[datetime] = mapped_column(UtcTime, index=True)
    consumed: Mapped[bool] = mapped_column(Boolean, default=False)
    attestation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Attestation(Base):
    """A verified attestation: the claims a token stands for and the key releases wrap to."""

    __tablename__ = "attestations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)      # = the token's jti
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    tee: Mapped[str] = mapped_column(String(32))
    claims_json: Mapped[str] = mapped_column(Text)
    tee_pubkey_json: Mapped[str] = mapped_column(Text)
    evidence_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    expires_at: Mapped[datetime] = mapped_column(UtcTime)
    log_seq: Mapped[int] = mapped_column(BigInteger)


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("repo", "type", "tag", name="uq_resource_path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    repo: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    tag: Mapped[str] = mapped_column(String(128))
    policy_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class ResourceVersion(Base):
    """One version of a resource's value, sealed under a per-version data key wrapped by the KEK."""

    __tablename__ = "resource_versions"
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)   # nonce ‖ AES-256-GCM(value), AAD = path, version
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)  # the data key under the KEK
    kek_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class Repository(Base):
    """Which tenant owns a repository (the first segment of a resource path)."""

    __tablename__ = "repositories"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)


class PolicyVersion(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("tenant", "name", "version", name="uq_policy_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text, nullable=True)   # ReferenceValues document it uses
    digest: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class Release(Base):
    """A resource released (wrapped) to an attested TEE key."""

    __tablename__ = "releases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attestation_id: Mapped[str] = mapped_column(String(32), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(400))
    version: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(200))
    policy_digest: Mapped[str] = mapped_column(String(128))
    log_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class AdminKey(Base):
    """A registered admin public key (the broker never holds admin private keys)."""

    __tablename__ = "admin_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(200))          # space-separated
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class UsedJti(Base):
    """Admin token ids already seen, kept until the token would have expired."""

    __tablename__ = "admin_jtis"
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcTime, index=True)


class SigningKey(Base):
    """The broker's own signing keys (token ES256, log Ed25519), private part sealed under the KEK."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), index=True)    # "token" | "log" | "enclave-ca"
    public_jwk: Mapped[str] = mapped_column(Text)
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class LogHead(Base):
    """One row: the log's size. Appends lock it, so sequence numbers never collide or skip."""

    __tablename__ = "log_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LogRecord(Base):
    """An attestation-log leaf: the entry's canonical bytes and its RFC 9162 leaf hash. Append-only."""

    __tablename__ = "log_entries"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class LogCheckpoint(Base):
    __tablename__ = "log_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcTime)


class CallAuditHead(Base):
    """Per enclave key (RFC 7638 thumbprint): where its shipped call-audit chain stands in the log."""

    __tablename__ = "call_audit_heads"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_seq: Mapped[int] = mapped_column(BigInteger)              # the first call record not yet shipped
    head_hash: Mapped[str] = mapped_column(String(64))
    log_seq: Mapped[int] = mapped_column(BigInteger)               # the log entry of the last batch
    attestation_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcTime)
