"""Import jobs: one upload (zip) imported in the background, with its progress and summary."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Space


class ImportJob(models.Model):
    """A markdown import running (or run) in the background for one space."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # A random public id, so job URLs do not reveal how many imports others ran.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The API token that started it (the task acts with the token's rights, never more).
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    # The uploaded zip, kept in the database so any worker host can read it; cleared when done.
    archive = models.BinaryField(null=True, blank=True, editable=False)
    kind = models.CharField(max_length=12, default="decision")
    owner_email = models.CharField(max_length=254, blank=True)
    dry_run = models.BooleanField(default=False)
    overwrite_edits = models.BooleanField(default=False)

    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    phase = models.CharField(max_length=40, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The import page lists a space's recent jobs, newest first.
            models.Index(fields=["space", "-created_at"], name="import_job_space_idx"),
        ]

    def __str__(self) -> str:
        return f"import {self.uid} into {self.space_id} ({self.state})"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class SourceId(models.Model):
    """The `id:` an imported file's front matter gives (Docusaurus, MkDocs and others write one),
    so a re-import finds the record again after the file was renamed."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    record = models.ForeignKey(
        "records.Record", on_delete=models.CASCADE, related_name="source_ids"
    )
    value = models.CharField(max_length=200)

    class Meta:
        constraints = [
            # One record per id in a space; also the index the import's lookup by id uses.
            models.UniqueConstraint(fields=["space", "value"], name="source_id_unique_per_space"),
        ]

    def __str__(self) -> str:
        return f"{self.value} -> record {self.record_id}"


class ImportBaseline(models.Model):
    """What the last import left in the fields a file decides (a digest per field), so the next
    import applies only what changed in the file and never overwrites an edit made in the app."""

    record = models.OneToOneField(
        "records.Record", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    fields = models.JSONField(default=dict)
    # Import metadata: what the file said that has no record field (its status as written, an
    # unstated status, where its date came from, MADR 4's consulted and informed).
    facts = models.JSONField(default=dict, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"import baseline of record {self.record_id}"


class RepoLink(models.Model):
    """A space linked to a folder of a git repository: pulled into the space, app edits pushed
    back as commits on a branch."""

    class Result(models.TextChoices):
        NEVER = "", "Never synced"
        OK = "ok", "In sync"
        WAITING = "waiting", "Files wait for a person"
        FAILED = "failed", "Failed"

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="repo_link")
    remote_url = models.CharField(max_length=500)
    branch = models.CharField(max_length=200, default="main")
    folder = models.CharField(max_length=300, default="docs/adr", blank=True)
    # App edits are committed here (never to `branch`), ready for a pull or merge request.
    push_branch = models.CharField(max_length=200, default="contextkb/edits")
    # HTTP(S) user for the credential: `x-access-token` (GitHub), `oauth2` (GitLab).
    username = models.CharField(max_length=100, blank=True)
    # The access token, encrypted (apps.interchange.sync.seal); never shown back.
    credential_sealed = models.TextField(blank=True, editable=False)
    # The user the pull acts as (its records' revisions name them); an editor of the space.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    last_pulled_commit = models.CharField(max_length=64, blank=True)
    # {record id: latest revision number} the folder holds, so a push writes only app changes.
    synced_versions = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_direction = models.CharField(max_length=10, blank=True)  # "pull" / "push"
    last_result = models.CharField(max_length=10, choices=Result.choices, blank=True)
    last_message = models.TextField(blank=True)
    # Files a person must resolve: [{"path", "key", "message"}]; never overwritten by a sync.
    waiting = models.JSONField(default=list, blank=True)
    last_summary = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.space_id} <-> {self.remote_url} {self.branch}:{self.folder}"

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_sealed)
