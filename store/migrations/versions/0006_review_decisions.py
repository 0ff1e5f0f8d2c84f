"""review decisions: the source record's fingerprint, the typed decision and when it was applied

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('review_item') as b:
        b.add_column(sa.Column('fingerprint', sa.String(length=128), nullable=True))
        b.add_column(sa.Column('decision_data', sa.JSON(), nullable=True))
        b.add_column(sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review_item') as b:
        b.drop_column('applied_at')
        b.drop_column('decision_data')
        b.drop_column('fingerprint')
