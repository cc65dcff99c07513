"""Long unbroken names wrap instead of widening the page (a phone shows no sideways scroll)."""

import pytest

from apps.accounts.models import Membership
from tests.e2e.conftest import login
from tests.factories import MembershipFactory, SpaceFactory, make_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG = "Payments" + "x" * 110


@pytest.mark.parametrize("width", [390, 1366])
def test_long_unbroken_names_do_not_widen_the_page(new_page, width):
    space = SpaceFactory(name=LONG, slug="long", description="d" * 2000)
    user = MembershipFactory(space=space, role=Membership.Role.EDITOR).user
    record = make_record(
        space=space, actor=user, title="T" * 200, summary="s" * 300, tags=["t" * 50]
    )
    page = new_page(width=width)
    login(page, user)
    for url in ("/", f"/s/{space.slug}/", f"/s/{space.slug}/{record.key}/"):
        page.goto(url)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        culprits = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => !e.closest('.spacenav-inner') && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )
        assert overflow <= 0, f"{url} is {overflow}px wider than a {width}px screen: {culprits}"
