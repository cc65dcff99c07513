"""BM25 ranking in PostgreSQL: exact scores, all matches ranked at scale, the relevance floor and
the freshness rule."""

import datetime as dt
import math
import random

import pytest
from django.db import connection
from django.utils import timezone

from apps.records import services
from apps.records.models import Record
from apps.retrieval import bm25 as engine
from apps.retrieval import lexical, search
from apps.retrieval.models import SpaceTerm, SpaceTextStats, TermPosting
from tests.factories import make_record

URL = "/api/v1/context/"


def keys(body):
    return [item["key"] for item in body["items"]]


def bm25(*, tf, dl, n, df, avgdl):
    k1, b = engine.K1, engine.B
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def test_bm25_scores_equal_a_hand_computed_example(space, owner):
    # Lexemes: the key "DEC-n" gives 'dec' and '-n' and the title one word, all weight A;
    # the body counts each occurrence once ("cats" -> 'cat', "loudly" -> 'loud').
    one = make_record(space=space, actor=owner, title="Alpha", body="cats chase mice")
    two = make_record(space=space, actor=owner, title="Beta", body="cats cats cats sleep")
    make_record(space=space, actor=owner, title="Gamma", body="dogs bark loudly")
    a = lexical.WEIGHT_A
    lengths = {one.pk: 3 * a + 3, two.pk: 3 * a + 4}
    avgdl = (3 * a + 3 + 3 * a + 4 + 3 * a + 3) / 3

    hits = search.hybrid_search(space_ids=[space.pk], query="cats", mode="fulltext").hits

    assert [h.record_id for h in hits] == [two.pk, one.pk]
    assert hits[0].bm25 == pytest.approx(bm25(tf=3, dl=lengths[two.pk], n=3, df=2, avgdl=avgdl))
    assert hits[1].bm25 == pytest.approx(bm25(tf=1, dl=lengths[one.pk], n=3, df=2, avgdl=avgdl))
    assert SpaceTextStats.objects.get(space=space).docs == 3
    assert SpaceTerm.objects.get(space=space, lexeme="cat").df == 2


def test_an_edit_or_archive_changes_the_ranking_in_the_same_transaction(space, owner):
    one = make_record(space=space, actor=owner, title="Alpha", body="cats chase mice")
    other = make_record(space=space, actor=owner, title="Gamma", body="dogs bark loudly")

    services.record_update(
        record=other, actor=owner, expected_version=None, changes={"body": "cats and dogs"}
    )
    found = search.hybrid_search(space_ids=[space.pk], query="cats", mode="fulltext").hits
    assert {h.record_id for h in found} == {one.pk, other.pk}
    assert not TermPosting.objects.filter(record=other, lexeme="bark").exists()
    assert SpaceTerm.objects.get(space=space, lexeme="bark").df == 0

    services.record_archive(record=one, actor=owner)
    found = search.hybrid_search(space_ids=[space.pk], query="cats", mode="fulltext").hits
    assert [h.record_id for h in found] == [other.pk]
    assert SpaceTextStats.objects.get(space=space).docs == 1
    assert SpaceTerm.objects.get(space=space, lexeme="cat").df == 1

    services.record_unarchive(record=one, actor=owner)
    assert SpaceTextStats.objects.get(space=space).docs == 2


def test_a_record_with_all_the_words_outranks_fresher_ones_without_them(api, add):
    complete = add(
        "Retry failed invoice payments with exponential backoff",
        summary="Failed invoice payments are retried with exponential backoff.",
    )
    partial = add("Invoice payments", summary="How invoice payments are taken.")
    Record.objects.filter(pk=complete.pk).update(
        freshness="stale", next_review_at=timezone.now() - timezone.timedelta(days=30)
    )

    body = api.get(URL, {"q": "retry failed invoice payments exponential backoff"}).json()

    assert keys(body)[0] == complete.key
    assert body["items"][0]["freshness"] == "stale"
    assert partial.key in keys(body) + [o["key"] for o in body["omitted"]]


def test_freshness_breaks_a_tie_between_equally_relevant_records(space, owner):
    stale = make_record(space=space, actor=owner, title="Rotate the signing keys yearly")
    fresh = make_record(space=space, actor=owner, title="Rotate the signing keys yearly")
    # Past its review date: stale, as every door derives it (the cached column is not read).
    Record.objects.filter(pk=stale.pk).update(next_review_at=timezone.now() - dt.timedelta(days=1))

    hits = search.hybrid_search(space_ids=[space.pk], query="rotate signing keys").hits

    assert [h.record_id for h in hits] == [fresh.pk, stale.pk]


def _distractors(space, owner, n: int, words: list[str]) -> None:
    """`n` long records holding every word of `words` among filler, added set-based (as the
    bench loader does) before the records the test looks for, so they come first on disk."""
    rng = random.Random(5)
    filler = [
        "team",
        "service",
        "module",
        "layer",
        "process",
        "system",
        "review",
        "update",
        "change",
        "budget",
        "owner",
        "release",
        "quarter",
        "roadmap",
        "ticket",
        "sprint",
        "meeting",
        "draft",
        "summary",
        "context",
        "detail",
        "note",
    ]
    now = timezone.now()
    Record.objects.bulk_create(
        Record(
            space=space,
            kind="decision",
            number=i + 1000,
            key=f"DEC-{i + 1000}",
            title=" ".join(rng.sample(filler, 4)),
            body=" ".join(words + rng.choices(filler, k=60)),
            status="accepted",
            next_review_at=now + timezone.timedelta(days=90),
            created_by=owner,
            updated_by=owner,
        )
        for i in range(n)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE records_record SET search_vector =
                 setweight(to_tsvector('simple', key), 'A')
              || setweight(to_tsvector('english', title), 'A')
              || setweight(to_tsvector('english', body), 'C')
               WHERE space_id = %s""",
            [space.pk],
        )
    lexical.rebuild([space.pk])


def test_known_records_are_found_first_among_thousands_of_distractors(api, space, owner, add):
    queries = {
        "retry failed payments with backoff": "Retry failed payments with backoff",
        "rotate database credentials": "Rotate database credentials",
        "cache invalidation for search results": "Cache invalidation for search results",
    }
    words = " ".join(queries).split()
    _distractors(space, owner, 3000, words)
    known = {q: add(title) for q, title in queries.items()}

    for query, record in known.items():
        body = api.get(URL, {"q": query}).json()
        assert keys(body)[0] == record.key, query


def test_a_query_matching_nothing_returns_nothing_and_lists_the_nearest_as_omitted(api, add):
    add("Kubernetes cluster autoscaling", summary="Nodes scale with load.")
    add("Customers pay by credit card", summary="Card payments via the PSP.")

    body = api.get(URL, {"q": "x"}).json()

    assert body["items"] == []
    assert body["omitted"]
    assert all(o["reason"] == "below the relevance floor" for o in body["omitted"])


def test_weak_matches_are_omitted_with_a_reason(api, add):
    strong = add(
        "Rotate database credentials every quarter",
        summary="Database credentials are rotated every quarter.",
    )
    weak = add(
        "Quarterly planning",
        body=" ".join(["The planning of the quarter covers many topics."] * 30),
    )

    body = api.get(URL, {"q": "rotate database credentials quarter"}).json()

    assert keys(body) == [strong.key]
    assert {"key": weak.key, "reason": "below the relevance floor"}.items() <= next(
        o for o in body["omitted"] if o["key"] == weak.key
    ).items()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "x" * 2001}, "q"),
        ({"q": "payments", "max_tokens": "-5"}, "max_tokens"),
        ({"q": "payments", "max_tokens": str(10**12)}, "max_tokens"),
    ],
)
def test_bad_input_gets_the_usual_json_error(api, params, field):
    response = api.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def _zipf_corpus(space, owner, n: int) -> list[str]:
    """`n` records of 5 to 150 words drawn from a 400-word vocabulary with Zipf frequencies
    (a few words in most records, most in a few), of varied lengths and term frequencies, added
    set-based with their postings (lexical.rebuild). Returns the vocabulary."""
    rng = random.Random(11)
    vocab = [f"w{i}x{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(400)]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    now = timezone.now()
    Record.objects.bulk_create(
        Record(
            space=space,
            kind="decision",
            number=i + 1,
            key=f"DEC-{i + 1}",
            title=" ".join(rng.choices(vocab, weights, k=rng.randint(1, 6))),
            body=" ".join(rng.choices(vocab, weights, k=rng.randint(5, 150))),
            status="accepted",
            next_review_at=now + timezone.timedelta(days=90),
            created_by=owner,
            updated_by=owner,
        )
        for i in range(n)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE records_record SET search_vector =
                 setweight(to_tsvector('simple', key), 'A')
              || setweight(to_tsvector('english', title), 'A')
              || setweight(to_tsvector('english', body), 'C')
               WHERE space_id = %s""",
            [space.pk],
        )
    lexical.rebuild([space.pk])
    return vocab


def _brute_force(space, query: str, k: int) -> list[tuple[float, int]]:
    """The BM25 top k computed here in Python from every posting of the query's lexemes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT lexeme FROM unnest(to_tsvector('english', %s))", [query])
        lexemes = [row[0] for row in cursor.fetchall()]
    stats = SpaceTextStats.objects.get(space=space)
    n, avgdl = stats.docs, stats.total_len / stats.docs
    scores: dict[int, float] = {}
    for lexeme in lexemes:
        postings = list(
            TermPosting.objects.filter(space_id=space.pk, lexeme=lexeme).values_list(
                "record_id", "tf", "doc_len"
            )
        )
        for record_id, tf, dl in postings:
            scores[record_id] = scores.get(record_id, 0.0) + bm25(
                tf=tf, dl=dl, n=n, df=len(postings), avgdl=avgdl
            )
    return sorted((-round(s, 9), rid) for rid, s in scores.items())[:k]


@pytest.mark.parametrize("probe", [3, 50])
def test_the_pruned_top_k_equals_a_brute_force_bm25_top_k(space, owner, monkeypatch, probe):
    vocab = _zipf_corpus(space, owner, 3000)
    # The pruned plan always (never the exhaustive one), with a weak or a good first bound.
    monkeypatch.setattr(engine, "EXHAUSTIVE_MAX", 0)
    monkeypatch.setattr(engine, "EXHAUSTIVE_SHARE", 10.0)
    monkeypatch.setattr(engine, "PROBE_POSTINGS", probe)
    rng = random.Random(probe)
    queries = [
        " ".join(vocab[:2]),  # the two commonest words
        " ".join(vocab[300:303]),  # three rare ones
        *(" ".join(rng.sample(vocab[:60], 3) + rng.sample(vocab[60:], 2)) for _ in range(8)),
        *(" ".join(rng.sample(vocab, rng.randint(6, 10))) for _ in range(6)),
    ]
    strategies = []
    for query in queries:
        for k in (1, 10, 50):
            ranking = engine.top_k(
                fetch=search._fetch_prepared, space_ids=[space.pk], query=query, k=k
            )
            strategies.append(ranking.strategy.split(" ")[0])
            got = [(-round(s, 9), rid) for s, rid in zip(ranking.scores, ranking.ids)]
            assert got == _brute_force(space, query, k), (query, k, ranking.strategy)
    # Without k records among the first postings read there is no bound: all are scored.
    print(strategies)
    assert strategies.count("pruned") >= len(strategies) // 2


def test_quoted_words_score_and_exclusions_leave_records_out(space, owner):
    kafka = make_record(space=space, actor=owner, title="Billing events go through Kafka")
    rabbit = make_record(space=space, actor=owner, title="Billing events go through RabbitMQ")

    quoted = search.hybrid_search(
        space_ids=[space.pk], query='can I name it "billing kafka queue"?', mode="fulltext"
    ).hits
    excluded = search.hybrid_search(
        space_ids=[space.pk], query="billing events -kafka", mode="fulltext"
    ).hits

    assert [h.record_id for h in quoted][:1] == [kafka.pk]
    assert [h.record_id for h in excluded] == [rabbit.pk]
