"""Where the shared ADR corpus is: ../shared/corpora/adr beside the checkout, or the folder named
by CONTEXTKB_ADR_CORPUS (for a checkout that lives elsewhere)."""

import os
from pathlib import Path

import pytest
from django.conf import settings

ADR_CORPUS = Path(
    os.environ.get("CONTEXTKB_ADR_CORPUS")
    or Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"
)


def adr_corpus() -> Path:
    """The corpus folder. A test that needs it fails with this message when it is missing,
    before it touches the database, instead of an error deep inside the test."""
    if not (ADR_CORPUS / "MANIFEST.tsv").is_file():
        pytest.fail(
            f"The ADR corpus is not at {ADR_CORPUS} (expected ../shared/corpora/adr beside the "
            "checkout); set CONTEXTKB_ADR_CORPUS to its folder.",
            pytrace=False,
        )
    return ADR_CORPUS
