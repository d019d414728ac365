"""Stage folders in a local (or mounted) folder; `MARKER` marks a complete folder on any store."""
from __future__ import annotations

import shutil
from pathlib import Path

import luigi

from stages.atomic import atomic_write_text

from .store_lock import flock_folder

MARKER = "_COMPLETE"


class LocalStore:
    """Stage folders in a local (or mounted) folder."""
    remote = False

    def __init__(self, root):
        self.root = Path(root)

    def folder(self, stage: str, name: str) -> Path:
        return self.root / stage / name

    def uri(self, folder: Path) -> str:
        return str(folder)

    def marker_target(self, folder: Path):
        return luigi.LocalTarget(str(folder / MARKER))

    def is_complete(self, folder: Path) -> bool:
        return (folder / MARKER).exists()

    def lock(self, folder: Path):
        return flock_folder(folder)

    def begin(self, folder: Path, resumable: bool) -> None:
        """Make the folder ready to write: emptied, or as an interrupted run left it."""
        if folder.exists() and not resumable:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)

    def flush(self, folder: Path) -> None:
        """Files written locally are already where they belong."""

    def complete(self, folder: Path, text: str) -> None:
        atomic_write_text(folder / MARKER, text)

    def fetch(self, folder: Path, only=None) -> Path:
        return folder

    def index(self, stage: str) -> Path:
        """The folder holding this stage's runs (a local store is its own index)."""
        return self.root / stage

    def stage_folders(self, stage: str) -> list[Path]:
        return [p for p in (self.root / stage).glob("*") if p.is_dir()]

    def remove(self, folder: Path) -> None:
        shutil.rmtree(folder)
