"""credential store: the rotating freee token set shared by every worker (encrypted, row-locked)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credential',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('ciphertext', sa.String(length=8000), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('credential')
