"""Refuse credentials in record text: records are served to AI tools and shown to whole spaces.

`scan(text)` returns findings (line number, what it looks like, a masked excerpt); it never returns
the secret itself. `check_fields(...)` is what the record services call: it raises InvalidInput
naming the field and line, unless a space admin explicitly overrides (which is audited).

Two kinds of rules:
- prefixed tokens whose format is distinctive enough to flag anywhere (AWS key ids, private key
  blocks, GitHub/GitLab/Slack/Stripe/OpenAI/Anthropic/Google/npm/PyPI tokens, JWTs, our own
  `ckb_` tokens, credentials inside URLs);
- assignments such as `password = …`, `api_key: …`, `SECRET_TOKEN="…"` whose value is long and
  random-looking (Shannon entropy), so prose, placeholders and ordinary identifiers pass.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    line: int
    kind: str
    excerpt: str  # masked: the first characters and an ellipsis

    def describe(self) -> str:
        return f"line {self.line}: looks like {self.kind} ({self.excerpt})"


_PREFIXED: list[tuple[str, re.Pattern[str]]] = [
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    (
        "a private key",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ),
    ("a GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b")),
    ("a GitHub token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{50,}\b")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-(?:[A-Za-z0-9]+-){1,}[A-Za-z0-9]{6,}\b")),
    (
        "a Slack webhook URL",
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}"),
    ),
    ("a Stripe secret key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}\b")),
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{30,}")),
    (
        "an OpenAI API key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{32,}"),
    ),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("a PyPI token", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    ),
    ("a contextkb API token", re.compile(r"\bckb_[A-Za-z0-9_-]{40,}")),
]

# scheme://user:password@host — the password part is checked like an assignment value.
_URL_CREDENTIALS = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@[^\s/]+")

_KEY_NAMES = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|auth[_-]?key|credentials?)"
)
# The name ends with one of those words (DB_PASSWORD, githubToken, secret_key, api-key2), so
# tokenizer, token_embeddings, secrets_dir or safe_user_passwords are not taken for secrets.
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9])((?:[A-Za-z0-9_.-]*[_.-]|[A-Za-z0-9_.-]*[a-z0-9](?=[A-Z]))?"
    r"(?i:" + _KEY_NAMES + r")[0-9]*)"
    r"[\"']?\s*(?::=|=>|=|:)\s*"
    r"[\"'`]?([^\s\"'`,;)\]}]+)"
)
_PASSWORD_NAME = re.compile(r"(?i)pass|pwd")
# Values that are obviously not secrets: placeholders, references to variables, redactions.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:<.*>|\$\{.*\}|\{\{.*\}\}|\$[A-Z_][A-Z0-9_]*|%\(?[a-z_]+\)?s?|"
    r"(?:os\.)?(?:environ|getenv|env)\b.*|settings\..*|process\.env\..*|"
    r"x{3,}|\*{3,}|\.{3,}|…|null|none|nil|true|false|undefined|"
    r".*(?:example|changeme|change[_-]me|placeholder|your[_-]|redacted|dummy|"
    r"fake|sample|secret_here|here).*)$"
)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def _classes(value: str) -> int:
    return sum(
        bool(re.search(pattern, value))
        for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )


def _looks_random(value: str, *, password: bool) -> bool:
    value = value.strip().rstrip(".")
    if _PLACEHOLDER.match(value):
        return False
    if re.match(r"[A-Za-z_][A-Za-z0-9_.]*[(\[<]", value):
        return False  # code: a call, a subscript or a type (request.COOKIES[…], Optional[str])
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+", value):
        return False  # a reference in code: aws_eks_cluster.cluster.token
    if re.fullmatch(r"[A-Za-z_]+", value):
        return False  # a name without digits (CertificateIssuerPrivateKeyTypes)

    if password:
        # People's passwords are short and less random than keys: 8+ characters of at least
        # three character classes, or any long random string.
        return (len(value) >= 8 and _classes(value) >= 3 and entropy(value) >= 2.5) or (
            len(value) >= 16 and entropy(value) >= 3.5
        )
    if len(value) < 16:
        return False
    if re.fullmatch(r"[a-z]+(?:[_-][a-z]+)*", value):  # a plain identifier or slug
        return False
    # Generated keys have digits; words joined by punctuation (urn:ietf:params:…) do not.
    return entropy(value) >= 3.5 and _classes(value) >= 2 and any(c.isdigit() for c in value)


def _mask(value: str) -> str:
    value = value.strip()
    return (value[:4] + "…") if len(value) > 4 else "…"


def scan(text: str) -> list[Finding]:
    """Every credential-looking string in `text`, one finding per line and kind."""
    findings: list[Finding] = []
    if not text:
        return findings
    for number, line in enumerate(text.splitlines(), start=1):
        seen: set[str] = set()

        def add(kind: str, value: str, number=number, seen=seen) -> None:
            if kind not in seen:
                seen.add(kind)
                findings.append(Finding(line=number, kind=kind, excerpt=_mask(value)))

        for kind, pattern in _PREFIXED:
            match = pattern.search(line)
            if match:
                add(kind, match.group(0))
        for match in _URL_CREDENTIALS.finditer(line):
            if _looks_random(match.group(1), password=True):
                add("a password inside a URL", match.group(0))
        for match in _ASSIGNMENT.finditer(line):
            name, value = match.group(1), match.group(2)
            if _looks_random(value, password=bool(_PASSWORD_NAME.search(name))):
                add(f"a secret assigned to {name}", value)
    return findings


def mask_secrets(text: str) -> tuple[str, list[Finding]]:
    """`text` with every credential-looking value `scan` reports replaced by its masked excerpt
    (the editor's preview shows this, so a refused secret is not displayed back); and the
    findings."""
    findings = scan(text)
    if not findings:
        return text, findings
    lines = text.split("\n")
    for number in sorted({f.line for f in findings}):
        line = lines[number - 1]
        for _kind, pattern in _PREFIXED:
            line = pattern.sub(lambda m: _hidden(m.group(0)), line)

        def value_masked(match: re.Match[str], *, password: bool) -> str:
            value = match.group(match.lastindex or 0)
            if not _looks_random(value, password=password):
                return match.group(0)
            start, end = match.span(match.lastindex) if match.lastindex else match.span()
            offset = match.start()
            whole = match.group(0)
            return whole[: start - offset] + _hidden(value) + whole[end - offset :]

        line = _URL_CREDENTIALS.sub(lambda m: value_masked(m, password=True), line)
        line = _ASSIGNMENT.sub(
            lambda m: value_masked(m, password=bool(_PASSWORD_NAME.search(m.group(1)))), line
        )
        lines[number - 1] = line
    return "\n".join(lines), findings


def _hidden(value: str) -> str:
    return _mask(value) + "[hidden]"


FIELD_LABELS = {"title": "title", "summary": "summary", "body": "body"}


def findings_for(fields: Mapping[str, object], *, record=None) -> dict[str, list[Finding]]:
    """Findings per field name for the text fields of a record. When editing `record`, lines
    that were already in the saved text are not flagged again (a space admin accepted them)."""
    out: dict[str, list[Finding]] = {}
    for name in FIELD_LABELS:
        value = fields.get(name)
        if isinstance(value, str) and value:
            found = scan(value)
            if found and record is not None:
                saved = set((getattr(record, name, "") or "").splitlines())
                lines = value.splitlines()
                found = [f for f in found if lines[f.line - 1] not in saved]
            if found:
                out[name] = found
    return out


def check_record_fields(
    *, fields: Mapping[str, object], actor, space, allow_secrets: bool = False, record=None
) -> None:
    """Raise InvalidInput naming each field and line that looks like it holds a credential.

    `allow_secrets=True` is an override only a space admin may use (Forbidden otherwise); the
    override is written to the audit log with what was found (masked), never the secret."""
    from apps.accounts import access
    from apps.core.errors import Forbidden, InvalidInput

    found = findings_for(fields, record=record)
    if not found:
        return
    if allow_secrets:
        if not access.can_admin(actor, space):
            raise Forbidden("Only space admins can save text that looks like a credential.")
        from apps.audit.models import AuditEvent
        from apps.audit.services import audit_log

        audit_log(
            kind=AuditEvent.Kind.SECRET_OVERRIDE,
            actor=actor,
            space=space,
            message=f"Saved {getattr(record, 'key', 'a new record')} despite the secret scan",
            details={name: [f.describe() for f in findings] for name, findings in found.items()},
        )
        return
    first_field, first = next(iter(found.items()))
    # An admin is the person who can override, so telling them to "ask a space admin" is wrong.
    who = (
        "or, as a space admin, save it anyway if it is not a live credential (the override is "
        "audited)."
        if access.can_admin(actor, space)
        else "or ask a space admin to save it anyway."
    )
    raise InvalidInput(
        f"The {FIELD_LABELS[first_field]} looks like it contains a credential on "
        f"{first[0].describe()}. Remove it (store secrets in a secret manager and link to it) "
        f"{who}",
        details={
            name: [f"Line {f.line}: looks like {f.kind} ({f.excerpt})." for f in findings]
            for name, findings in found.items()
        },
        code="secret_detected",
    )


def refuse_secrets(fields: Mapping[str, str], *, what: str = "text") -> None:
    """For text that is not a record but is shown to a space (a gap an AI tool reports): raise
    InvalidInput naming the field and line when it looks like it holds a credential. No override:
    nobody needs a credential in a question."""
    from apps.core.errors import InvalidInput

    found = {name: scan(value) for name, value in fields.items() if isinstance(value, str)}
    found = {name: findings for name, findings in found.items() if findings}
    if not found:
        return
    name, findings = next(iter(found.items()))
    raise InvalidInput(
        f"The {what} {name} looks like it contains a credential on {findings[0].describe()}. "
        "Leave it out.",
        details={
            field: [f"Line {f.line}: looks like {f.kind} ({f.excerpt})." for f in items]
            for field, items in found.items()
        },
        code="secret_detected",
    )
