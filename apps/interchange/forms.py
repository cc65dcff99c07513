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
