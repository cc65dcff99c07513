"""Two clients editing the same version at the same moment: one wins, the other gets 412."""

import threading

import httpx
import pytest

from apps.accounts.models import ApiToken
from apps.records.models import Record, Revision
from tests.factories import make_record, make_token


@pytest.mark.django_db(transaction=True)
def test_simultaneous_patches_on_one_version_never_both_win(live_server, space, owner, teammate):
    record = make_record(space=space, actor=owner, title="Original")
    tokens = [make_token(user, scope=ApiToken.Scope.READ_WRITE)[1] for user in (owner, teammate)]
    barrier = threading.Barrier(2)
    results = {}

    def edit(n: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            barrier.wait()
            results[n] = http.patch(
                f"/api/v1/records/{record.pk}/",
                json={"title": f"Edit {n}", "body": f"Body {n}"},
                headers={"Authorization": f"Bearer {tokens[n]}", "If-Match": '"1"'},
            )

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [200, 412]
    winner = next(n for n, r in results.items() if r.status_code == 200)
    loser = results[1 - winner].json()["error"]
    assert (loser["code"], loser["details"]) == ("version_conflict", {"current_version": 2})
    record = Record.objects.get(pk=record.pk)
    # The winner's edit is whole; nothing of the loser's was written.
    assert (record.title, record.body, record.version) == (f"Edit {winner}", f"Body {winner}", 2)
    assert Revision.objects.filter(record=record).count() == 2
