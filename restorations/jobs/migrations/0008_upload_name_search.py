# The task list's search by file name: a trigram index of UPPER(original_name), which is what
# Django's icontains compares on PostgreSQL. Nothing happens on SQLite (the embedded default,
# whose tables are small enough to scan).

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class AddIndexOnPostgreSQL(migrations.AddIndex):
    """The index in the model state everywhere, in the database on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0007_batches_thumbnails'),
    ]

    operations = [
        TrigramExtension(),  # does nothing on other databases
        AddIndexOnPostgreSQL(
            model_name='upload',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('original_name'), name='gin_trgm_ops'), name='upload_name_trgm'),
        ),
    ]
