# The task list's search by file name: Django writes icontains as
# UPPER("original_name") LIKE UPPER('%…%') on PostgreSQL, which a trigram (pg_trgm) GIN index
# of UPPER("original_name") answers without reading the table. Nothing happens on SQLite (the
# embedded default, whose tables are small enough to scan).

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEX = "upload_name_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX {INDEX} ON jobs_upload USING gin (UPPER("original_name") gin_trgm_ops)'
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0007_batches_thumbnails'),
    ]

    operations = [
        TrigramExtension(),  # does nothing on other databases
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
