from django.db import migrations


class Migration(migrations.Migration):
    """HNSW (cosine) index for 256-dimension vectors, the default wordllama model.

    The vector column has no fixed size (providers can be switched), so the index is a partial
    expression index per size; `manage.py reindex_embeddings` creates the one for other sizes.
    """

    dependencies = [("retrieval", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS embedding_hnsw_256 ON retrieval_recordembedding "
            "USING hnsw ((vector::vector(256)) vector_cosine_ops) WHERE dimensions = 256",
            "DROP INDEX IF EXISTS embedding_hnsw_256",
        ),
    ]
