"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:30:04.334054
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_jtis',
    sa.Column('jti', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti')
    )
    with op.batch_alter_table('admin_jtis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_jtis_expires_at'), ['expires_at'], unique=False)

    op.create_table('admin_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('public_jwk', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('kid')
    )
    op.create_table('attestations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('tee', sa.String(length=32), nullable=False),
    sa.Column('claims_json', sa.Text(), nullable=False),
    sa.Column('tee_pubkey_json', sa.Text(), nullable=False),
    sa.Column('evidence_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('log_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attestations_session_id'), ['session_id'], unique=False)

    op.create_table('kbs_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('tee', sa.String(length=32), nullable=False),
    sa.Column('hash_alg', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed', sa.Boolean(), nullable=False),
    sa.Column('attestation_id', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kbs_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kbs_sessions_expires_at'), ['expires_at'], unique=False)

    op.create_table('log_checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('log_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(), nullable=False),
    sa.Column('entry', sa.LargeBinary(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('log_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_entries_tenant'), ['tenant'], unique=False)

    op.create_table('log_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('policies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'name', 'version', name='uq_policy_version')
    )
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policies_tenant'), ['tenant'], unique=False)

    op.create_table('releases',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('attestation_id', sa.String(length=32), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=400), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('policy', sa.String(length=200), nullable=False),
    sa.Column('policy_digest', sa.String(length=128), nullable=False),
    sa.Column('log_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_releases_attestation_id'), ['attestation_id'], unique=False)

    op.create_table('repositories',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repositories_tenant'), ['tenant'], unique=False)

    op.create_table('resources',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('repo', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=128), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=False),
    sa.Column('policy_name', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('repo', 'type', 'tag', name='uq_resource_path')
    )
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resources_tenant'), ['tenant'], unique=False)

    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('public_jwk', sa.Text(), nullable=False),
    sa.Column('sealed_private', sa.LargeBinary(), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('kek_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kid')
    )
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signing_keys_purpose'), ['purpose'], unique=False)

    op.create_table('resource_versions',
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('kek_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_id', 'version')
    )

    op.execute(sa.text("INSERT INTO log_head (id, size) VALUES (1, 0)"))
    _append_only_guards()


_GUARDS = {
    "sqlite": [
        "CREATE TRIGGER log_entries_no_update BEFORE UPDATE ON log_entries "
        "BEGIN SELECT RAISE(ABORT, 'the attestation log is append-only'); END",
        "CREATE TRIGGER log_entries_no_delete BEFORE DELETE ON log_entries "
        "BEGIN SELECT RAISE(ABORT, 'the attestation log is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION veil_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the attestation log is append-only'; END $$",
        "CREATE TRIGGER log_entries_append_only BEFORE UPDATE OR DELETE ON log_entries "
        "FOR EACH ROW EXECUTE FUNCTION veil_log_append_only()",
    ],
}


def _append_only_guards() -> None:
    """The log table refuses UPDATE and DELETE in the database itself, not only in code."""
    for statement in _GUARDS.get(op.get_bind().dialect.name, []):
        op.execute(sa.text(statement))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP TRIGGER IF EXISTS log_entries_append_only ON log_entries"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS veil_log_append_only()"))
    op.drop_table('resource_versions')
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signing_keys_purpose'))

    op.drop_table('signing_keys')
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resources_tenant'))

    op.drop_table('resources')
    with op.batch_alter_table('repositories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repositories_tenant'))

    op.drop_table('repositories')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_releases_attestation_id'))

    op.drop_table('releases')
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policies_tenant'))

    op.drop_table('policies')
    op.drop_table('log_head')
    with op.batch_alter_table('log_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_entries_tenant'))

    op.drop_table('log_entries')
    op.drop_table('log_checkpoints')
    with op.batch_alter_table('kbs_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kbs_sessions_expires_at'))

    op.drop_table('kbs_sessions')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attestations_session_id'))

    op.drop_table('attestations')
    op.drop_table('admin_keys')
    with op.batch_alter_table('admin_jtis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_jtis_expires_at'))

    op.drop_table('admin_jtis')
