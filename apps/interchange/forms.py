from django import forms
from django.conf import settings

from apps.records.models import Record


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Zip of your ADR folder",
        help_text="A .zip of docs/adr (or any folder of markdown decision records).",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    kind = forms.ChoiceField(
        choices=Record.Kind.choices, initial=Record.Kind.DECISION, required=False
    )
    owner = forms.EmailField(
        required=False,
        label="Owner of new records (email, optional)",
        help_text="Must be a member of this space. Leave empty to import them unowned.",
    )
    dry_run = forms.BooleanField(
        required=False, label="Dry run: show what would happen, save nothing"
    )
    overwrite_edits = forms.BooleanField(
        required=False,
        label="Let the files win over edits made here since the last import",
        help_text="Otherwise a file that changed something also changed here is left alone "
        "and listed.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.CONTEXTKB_IMPORT_MAX_ZIP_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The zip is larger than {limit:,} bytes.")
        return upload


class RepoLinkForm(forms.Form):
    remote_url = forms.CharField(
        label="Repository address",
        max_length=500,
        help_text="https://github.com/acme/kb.git, https://gitlab.com/acme/kb.git or "
        "git@host:acme/kb.git",
    )
    branch = forms.CharField(max_length=200, initial="main", label="Branch to pull from")
    folder = forms.CharField(max_length=300, initial="docs/adr", required=False)
    push_branch = forms.CharField(
        max_length=200,
        initial="contextkb/edits",
        label="Branch for edits made here",
        help_text="Edits are committed here, one commit per change, for a pull or merge request.",
    )
    username = forms.CharField(
        max_length=100,
        required=False,
        label="User for the token",
        help_text="x-access-token for GitHub, oauth2 for GitLab.",
    )
    credential = forms.CharField(
        required=False,
        label="Access token",
        # Never rendered back: the field is always empty on the page.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the stored one.",
    )
    remove_credential = forms.BooleanField(required=False, label="Remove the stored token")
