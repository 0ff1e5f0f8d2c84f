"""payment notices: inbound payment notices kept until a reconciled bank line closes them, and the reconciled
bank lines they are closed against

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_key', sa.String(length=128), nullable=False),
    sa.Column('webhook_event_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('payer_key', sa.String(length=80), nullable=True),
    sa.Column('payer_display', sa.String(length=255), nullable=False),
    sa.Column('invoice_number', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('deposit_id', sa.String(length=64), nullable=True),
    sa.Column('evidence', sa.String(length=128), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notice_key')
    )
    op.create_index('ix_payment_notice_status_day', 'payment_notice', ['status', 'day'], unique=False)
    op.create_table('settled_deposit',
    sa.Column('deposit_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('payer_key', sa.String(length=80), nullable=True),
    sa.Column('invoice_numbers', sa.JSON(), nullable=False),
    sa.Column('notice_key', sa.String(length=128), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('deposit_id')
    )
    op.create_index('ix_settled_deposit_amount_day', 'settled_deposit', ['amount', 'day'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_settled_deposit_amount_day', table_name='settled_deposit')
    op.drop_table('settled_deposit')
    op.drop_index('ix_payment_notice_status_day', table_name='payment_notice')
    op.drop_table('payment_notice')
