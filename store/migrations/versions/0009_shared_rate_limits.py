"""shared rate limits: one row per external API bucket (rolling ring or calendar counter), 429 blocks

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_bucket',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('limit_n', sa.Integer(), nullable=False),
    sa.Column('window_s', sa.Float(), nullable=False),
    sa.Column('next_slot', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.Float(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.Column('blocked_until', sa.Float(), nullable=False),
    sa.Column('acquired_total', sa.Integer(), nullable=False),
    sa.Column('penalised_total', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('rate_slot',
    sa.Column('bucket', sa.String(length=200), nullable=False),
    sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'idx')
    )


def downgrade() -> None:
    op.drop_table('rate_slot')
    op.drop_table('rate_bucket')
