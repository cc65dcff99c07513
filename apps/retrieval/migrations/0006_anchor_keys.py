from django.db import migrations

# The literal part of an anchor pattern (apps.records.anchors.glob_to_regex: "^" + escaped
# literal characters and wildcard groups + "$") up to its first wildcard, unescaped; its key is
# that literal plus "/" when the rest is only "(?:/.*)?" (the anchor covers LIT and LIT/…), else
# the literal cut after its last "/" ("" when it has none). Every path an anchor matches has the
# anchor's key among its own keys (apps.retrieval.search.path_keys), so a GIN index on the keys
# narrows "records anchored to these paths" to a few rows before the regular expressions run.
FUNCTION = r"""
CREATE OR REPLACE FUNCTION retrieval_anchor_keys(patterns text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $fn$
    SELECT coalesce(array_agg(DISTINCT
        CASE WHEN rest = '(?:/.*)?$' THEN lit || '/'
             ELSE coalesce(substring(lit FROM '^(.*/)'), '') END), '{}')
    FROM unnest(patterns) AS p,
         LATERAL (SELECT substring(p FROM '^\^((?:\\.|[^\\(\[.$])*)') AS raw) AS r,
         LATERAL (SELECT regexp_replace(r.raw, '\\(.)', '\1', 'g') AS lit,
                         substr(p, length(r.raw) + 2) AS rest) AS l
$fn$;
"""


class Migration(migrations.Migration):
    """Anchor keys for the context search's path list (see FUNCTION above).

    At 100,000 records with 3 % anchored, matching a path ran a regular expression per anchored
    record until 100 matched (about 1,100 rows); with the keys only the records whose anchors
    share a directory with the path are checked. Like 0003, it only adds an index to the records
    table, beside the query it serves (apps/retrieval/search.py).
    """

    dependencies = [("retrieval", "0005_gap_answered"), ("records", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS retrieval_anchor_keys(text[])"),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS retrieval_anchor_keys_idx ON records_record "
            "USING gin (retrieval_anchor_keys(anchor_patterns)) "
            "WHERE anchor_patterns <> '{}' AND archived_at IS NULL",
            "DROP INDEX IF EXISTS retrieval_anchor_keys_idx",
        ),
    ]
