"""payer aliases (振込名義 → 取引先) for bank reconciliation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payer_alias',
    sa.Column('payer_key', sa.String(length=128), nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('payer_name', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('approved_by', sa.String(length=254), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deposit_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('payer_key', 'partner_id')
    )


def downgrade() -> None:
    op.drop_table('payer_alias')
