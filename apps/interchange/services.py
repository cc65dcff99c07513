"""Markdown import and export of a space's records: the app's public services.

The work is split by concern; this module is the one door the views, the API, the commands and
the sync use:

- `reading`   which files are decisions, their text and import metadata;
- `importing` `import_files`: records written through the record services, a savepoint a file;
- `merge`     re-imports, three-way and field by field (an edit made in the app is never undone);
- `linking`   the typed links the files ask for;
- `exporting` `export_space` / `render_record`: MADR 4 files with front matter;
- `jobs`      background import jobs (uploads from the web UI and the API);
- `summary`   what an import did, file by file.
"""

from apps.interchange.exporting import (
    ExportedFile,
    export_filename,
    export_space,
    render_record,
    safe_relative,
)
from apps.interchange.importing import import_files
from apps.interchange.jobs import import_job_create, import_job_run
from apps.interchange.merge import facts_for, in_step_with_files
from apps.interchange.summary import ImportSummary

__all__ = [
    "ExportedFile",
    "ImportSummary",
    "export_filename",
    "export_space",
    "facts_for",
    "import_files",
    "import_job_create",
    "import_job_run",
    "in_step_with_files",
    "render_record",
    "safe_relative",
]
