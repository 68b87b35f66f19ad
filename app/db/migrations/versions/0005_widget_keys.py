"""m005_widget_keys: the origins a widget key may be used from.

Revision ID: 0005_widget_keys
Revises: 0004_sites

- `api_keys.origins`: for a widget key (role `widget`, `kefu keys create --role widget --origin ...`), the web
  origins (`https://shop.example`) whose pages may use it; NULL for every other key. Existing keys keep working
  as they were.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_widget_keys"
down_revision = "0004_sites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("origins", sa.JSON, nullable=True))


def downgrade() -> None:
    op.execute("UPDATE api_keys SET revoked_at = created_at WHERE role = 'widget' AND revoked_at IS NULL")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("origins")
