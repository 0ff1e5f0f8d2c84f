"""reporting: snapshots with drift counts, the records search and trace read, audit events keyed by deal

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_snapshot',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('as_of', sa.String(length=10), nullable=False),
        sa.Column('flow_run_id', sa.String(length=64), nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('drift', sa.JSON(), nullable=False),
        sa.Column('drift_items', sa.JSON(), nullable=False),
    )
    op.create_index('ix_report_snapshot_taken', 'report_snapshot', ['taken_at'])
    op.create_table(
        'report_record',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('snapshot_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('counterparty', sa.String(length=255), nullable=False),
        sa.Column('counterparty_key', sa.String(length=255), nullable=False),
        sa.Column('deal_id', sa.String(length=64), nullable=True),
        sa.Column('data', sa.JSON(), nullable=False),
    )
    op.create_index('ix_report_record_search', 'report_record', ['snapshot_id', 'kind', 'day'])
    op.create_index('ix_report_record_deal', 'report_record', ['snapshot_id', 'deal_id'])
    op.create_index('ix_report_record_party', 'report_record', ['snapshot_id', 'counterparty_key'])
    with op.batch_alter_table('audit_event') as b:
        b.add_column(sa.Column('deal_id', sa.String(length=64), nullable=True))
    op.create_index('ix_audit_deal', 'audit_event', ['deal_id'])


def downgrade() -> None:
    op.drop_index('ix_audit_deal', table_name='audit_event')
    with op.batch_alter_table('audit_event') as b:
        b.drop_column('deal_id')
    op.drop_index('ix_report_record_party', table_name='report_record')
    op.drop_index('ix_report_record_deal', table_name='report_record')
    op.drop_table('report_record')
    op.drop_index('ix_report_snapshot_taken', table_name='report_snapshot')
    op.drop_table('report_snapshot')
