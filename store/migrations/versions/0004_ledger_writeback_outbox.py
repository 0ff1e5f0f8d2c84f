"""ledger write-back outbox: idempotency_ledger.writeback (pending | done) with an index

Committed invoice facts of earlier versions that the CRM was not marked as showing
(``result.crm_written``) become ``pending``, so the outbox writes them once; so do committed deposit
applications (``payment:deposit:*``) of earlier versions, which recorded no write-back at all: the
payment status of their deals is written once more (a value HubSpot already shows is not re-sent).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('writeback', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_ledger_writeback', ['writeback', 'key'], unique=False)
    ledger = sa.table('idempotency_ledger', sa.column('key', sa.String), sa.column('status', sa.String),
                      sa.column('result', sa.JSON), sa.column('writeback', sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(ledger.c.key, ledger.c.result).where(
        ledger.c.status == 'committed', ledger.c.key.like('invoice:deal:%'))).fetchall()
    for key, result in rows:
        if key.count(':') != 2:
            continue  # subscription periods and prorations have no deal write-back
        state = 'done' if (result or {}).get('crm_written') else 'pending'
        bind.execute(sa.update(ledger).where(ledger.c.key == key).values(writeback=state))
    bind.execute(sa.update(ledger).where(ledger.c.status == 'committed', ledger.c.key.like('payment:deposit:%'))
                 .values(writeback='pending'))


def downgrade() -> None:
    with op.batch_alter_table('idempotency_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_writeback')
        batch_op.drop_column('writeback')
