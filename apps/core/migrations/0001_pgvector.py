"""Enable pgvector, failing with a clear message when the server lacks it (or it is too old)."""

from django.db import migrations
from pgvector.django import VectorExtension


def check_pgvector(apps, schema_editor):
    from apps.core.db import require_pgvector

    require_pgvector(schema_editor.connection)


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.RunPython(check_pgvector, migrations.RunPython.noop, elidable=False),
        VectorExtension(),
    ]
