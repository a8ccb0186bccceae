"""The server's data directory: the job records' database and one folder per job, every name chosen by the server.

::

    DATA_DIR/
      jobs.sqlite              the records and the queue (neural_style.serve.store)
      incoming/                uploads of jobs being created (a folder each, moved into jobs/ once accepted)
      jobs/ID/inputs/          content.png, style-1.jpg, ..., mask-1.png, ..., initial.png
      jobs/ID/out/             result.png (or a sweep's result_LABEL.png and result_sheet.png), progress.txt,
                               progress.png, log.txt, and result.png.state/ while a run is interrupted
      jobs/ID/preview.png      the latest preview
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

__all__ = ["DataDir"]


class DataDir:
    """The folders under ``root`` (created when missing)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.jobs = self.root / "jobs"
        self.incoming = self.root / "incoming"
        for folder in (self.root, self.jobs, self.incoming):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite"

    @staticmethod
    def new_id() -> str:
        """A job id: 12 random hex digits."""
        return secrets.token_hex(6)

    def staging(self) -> Path:
        """A new, empty folder for the uploads of a job being created."""
        folder = self.incoming / secrets.token_hex(8)
        (folder / "inputs").mkdir(parents=True)
        (folder / "out").mkdir()
        return folder

    def job(self, job_id: str) -> Path:
        return self.jobs / job_id

    def inputs(self, job_id: str) -> Path:
        return self.job(job_id) / "inputs"

    def out(self, job_id: str) -> Path:
        return self.job(job_id) / "out"

    def preview(self, job_id: str) -> Path:
        return self.job(job_id) / "preview.png"

    def log(self, job_id: str) -> Path:
        return self.out(job_id) / "log.txt"

    def results(self, job_id: str) -> list[str]:
        """The names of the files in the job's output folder, sorted (folders, such as a saved state, left out)."""
        out = self.out(job_id)
        if not out.is_dir():
            return []
        return sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))

    def clean(self, known: set[str]) -> None:
        """Removes what a stop or crash left: uploads of jobs never created, and folders of jobs with no record."""
        for folder in self.incoming.iterdir():
            shutil.rmtree(folder, ignore_errors=True)
        for folder in self.jobs.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
