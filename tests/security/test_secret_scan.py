"""Credentials are refused on save, with the line named; prose and identifiers pass."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden, InvalidInput
from apps.core.secret_scan import scan
from apps.records import services
from apps.records.models import Record
from tests.factories import make_record

# Fakes in the real formats, assembled so no complete key sits in the source file.
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB = "ghp_" + "R2d2C3poBb8Yoda5Luke7Leia9Han1Chewie0"
GITHUB_FINE = (
    "github_pat_" + "11ABCDEFG0123456789_" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
)
SLACK = "xoxb-" + "2048000000-4096000000-" + "Zq8Ux2Vb6Nm4Kp1Rt7Wy3Jh"
STRIPE = "sk_live_" + "51HxQz2eZvKYlo2C8kDq7Zt"
OPENAI = "sk-proj-" + "T3BlbkFJx9Y2mQ7vR4nK8sL1pW6zA0cE5"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PRIVATE_KEY = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"Deploy user key: {AWS_KEY_ID}", "AWS access key"),
        (f"export GH={GITHUB}", "GitHub token"),
        (f"token {GITHUB_FINE}", "GitHub token"),
        (f"Slack bot: {SLACK}", "Slack token"),
        (f"stripe.api_key = '{STRIPE}'", "Stripe secret key"),
        (f"Use {OPENAI} for embeddings", "OpenAI API key"),
        (f"Authorization: Bearer {JWT}", "JSON Web Token"),
        (PRIVATE_KEY, "private key"),
        ("DB_PASSWORD=Xk9#mP2$vL7q", "secret assigned to DB_PASSWORD"),
        ('"client_secret": "q8Zr3Lm0Wv5Tn2Bx7Yc4Kd9Hf6Js1Pa"', "secret assigned to client_secret"),
        ("DATABASE_URL=postgres://app:Gq7zR2mX9wLp4@db.internal:5432/app", "password inside a URL"),
        ("self.api_key = 'q8Zr3Lm0Wv5Tn2Bx7Yc4Kd9Hf6Js1Pa'", "secret assigned to self.api_key"),
        ('githubToken: "Zq8Ux2Vb6Nm4Kp1Rt7Wy3Jh5Lc"', "secret assigned to githubToken"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY9Q2ZpL", "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_realistic_credentials_are_found(text, kind):
    found = scan("Some context first.\n\n" + text)
    assert found, text
    assert found[0].line == 3
    assert any(kind in f.kind for f in found), [f.kind for f in found]
    # The finding never repeats the secret itself.
    assert all(len(f.excerpt) <= 5 for f in found)


@pytest.mark.parametrize(
    "text",
    [
        "We rotate the API token every 90 days; the password must be at least 12 characters.",
        "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b (see the PR).",
        "Request 123e4567-e89b-12d3-a456-426614174000 failed with a timeout.",
        "password = os.environ['DB_PASSWORD']",
        "api_key: <your-api-key>",
        "token: ${GITHUB_TOKEN}",
        "SECRET_KEY = settings.SECRET_KEY",
        "max_tokens=4000, tokenizer=cl100k_base",
        "Use scikit-learn (sk-learn) pipelines for the model.",
        "The example URL postgres://user:password@localhost/db is only a placeholder.",
        "token = aws_eks_cluster.cluster.token",
        "secret_santa: organised by Ana",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is the image digest",
        "Keys: the access_key_id is stored in Vault under kv/payments/aws.",
    ],
)
def test_ordinary_prose_and_identifiers_pass(text):
    assert scan(text) == []


# Lines from real code (Python, JS, YAML) that name tokens, keys and passwords without holding one.
CODE_SAMPLES = [
    "csrf_secret = request.COOKIES[settings.CSRF_COOKIE_NAME]",
    "token = reversed_tokens.pop()",
    "self._token = _extobj_contextvar.set(extobj)",
    "password: Optional[str] = None",
    "passphrase: NotRequired[str]",
    "private_key: CertificateIssuerPrivateKeyTypes,",
    "old_password = forms.CharField(",
    "secret_key=hashlib.sha256(session_secret.encode()).hexdigest(),",
    'request.headers["Authorization"] = self._build_auth_header(password=auth_info[2])',
    'tokenizer_fallback="minishlab/potion-base-8M",',
    "tokenizer.decoder = decoders.Metaspace(replacement=replacement)",
    "statetokens = tokendefs[ctx.stack[-1]]",
    "res, skipped_tokens = self._parse(timestr, **kwargs)",
    '"token_embeddings": self.embedding(tensors["input_ids"]),',
    'safe_user_passwords: Collection[str] = ("git",),',
    '_TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"',
    "secrets_dir: Optional[StrPath] = None",
    'AuthLoginPasswordChallenge = "Password\\x00"',
    "const accessToken = await getAccessToken(session);",
    "api_key: ${{ secrets.OPENAI_API_KEY }}",
    'token = \'variable|default:"Default value"|date:"Y-m-d"\'',
]


@pytest.mark.parametrize("line", CODE_SAMPLES)
def test_code_that_handles_credentials_without_holding_one_passes(line):
    assert scan(f"```python\n{line}\n```") == []


def test_the_adr_corpus_is_never_refused():
    """438 real architecture decision records from 11 repositories: prose, code, config."""
    from tests.corpus import adr_corpus

    corpus = adr_corpus()
    files = [p for p in corpus.rglob("*.md") if p.name != "README.md"]
    assert len(files) >= 430
    refused = {
        str(p.relative_to(corpus)): [f.describe() for f in found]
        for p in files
        if (found := scan(p.read_text("utf-8", errors="replace")))
    }
    assert refused == {}


def test_saving_a_body_with_a_key_is_refused_and_names_the_line(space, owner):
    body = "# Rollout\n\nWe use the deploy user.\n" + f"aws_access_key_id = {AWS_KEY_ID}\n"
    with pytest.raises(InvalidInput) as refused:
        make_record(space=space, actor=owner, title="Deploy access", body=body)
    assert "line 4" in refused.value.message
    assert refused.value.code == "secret_detected"
    assert refused.value.details["body"] == ["Line 4: looks like an AWS access key id (AKIA…)."]
    assert not Record.objects.filter(space=space).exists()


def test_a_token_in_the_title_or_summary_is_refused(space, owner):
    with pytest.raises(InvalidInput) as refused:
        make_record(space=space, actor=owner, title=f"Use {GITHUB}")
    assert "title" in refused.value.details
    record = make_record(space=space, actor=owner, title="Fine")
    with pytest.raises(InvalidInput):
        services.record_update(
            record=record,
            actor=owner,
            expected_version=1,
            changes={"summary": f"JWT {JWT}"},
        )
    record.refresh_from_db()
    assert record.version == 1 and record.summary == ""


def test_only_a_space_admin_can_override_and_the_override_is_audited(space, owner, admin_user):
    body = f"Sandbox key for the tutorial: {STRIPE}"
    with pytest.raises(Forbidden):
        make_record(space=space, actor=owner, title="Sandbox", body=body, allow_secrets=True)
    record = make_record(
        space=space, actor=admin_user, title="Sandbox", body=body, allow_secrets=True
    )
    assert record.body == body
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SECRET_OVERRIDE)
    assert event.actor == admin_user
    assert event.space == space
    assert event.details == {"body": ["line 1: looks like a Stripe secret key (sk_l…)"]}
    assert STRIPE not in str(event.details)


def test_editing_other_fields_of_an_old_record_is_not_blocked(space, owner, admin_user):
    record = make_record(
        space=space, actor=admin_user, title="Legacy", body=f"k={STRIPE}", allow_secrets=True
    )
    updated = services.record_update(
        record=record, actor=owner, expected_version=record.version, changes={"title": "Legacy 2"}
    )
    assert updated.title == "Legacy 2"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Deploy user key: {AWS_KEY_ID}", AWS_KEY_ID),
        (f"export GH={GITHUB}", GITHUB),
        (f"Slack bot: {SLACK}", SLACK),
        (f"stripe.api_key = '{STRIPE}'", STRIPE),
        (f"Authorization: Bearer {JWT}", JWT),
        ("DB_PASSWORD=Xk9#mP2$vL7q", "mP2$vL7q"),
        ("DATABASE_URL=postgres://app:Gq7zR2mX9wLp4@db.internal:5432/app", "Gq7zR2mX9wLp4"),
    ],
)
def test_masking_hides_each_credential_and_keeps_the_rest_of_the_line(text, secret):
    from apps.core.secret_scan import mask_secrets

    masked, findings = mask_secrets(f"# Setup\n\n{text}\n\nThe end.")
    assert secret not in masked and secret[5:] not in masked
    assert "[hidden]" in masked and masked.startswith("# Setup\n\n") and "The end." in masked
    assert {f.line for f in findings} == {3}
