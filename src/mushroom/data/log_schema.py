"""The prediction log's shape, whichever database holds it (``mushroom.data.prediction_log``):
its columns, where it is (a file path or a PostgreSQL URL), and the frame every reader
returns, typed the same on every backend and in every chunk."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from mushroom.core import paths
from mushroom.core.catalogue import CATALOGUES

ENV_VAR = "MUSHROOM_PREDICTION_LOG"
META_COLUMNS = (
    "request_id",
    "logged_at",
    "model_version",
    "dataset",
    "probability",
    "verdict",
    "unfamiliar",
    "reasons",
)
TRAIT_COLUMNS = tuple(dict.fromkeys(t.name for c in CATALOGUES.values() for t in c.traits))
NUMERIC_TRAITS = frozenset(t.name for c in CATALOGUES.values() for t in c.traits if t.is_numeric)
LABEL = "true_class"
"""The feedback label beside each answer read from the log (None until given)."""
SOURCE_COLUMN = "text not null default ''"
"""Who gave a label: through the service ``token`` (``MUSHROOM_FEEDBACK_TOKEN`` is set and
was given) or ``open`` (no token configured); '' when not said (labels stored before
sources were kept, or in-process callers that name none)."""
LABEL_COLUMNS = (
    "true_class text not null check (true_class in ('edible', 'poisonous')), "
    "received_at text not null"
)
"""A label's columns after its request id, in ``feedback`` and ``label_conflicts``."""
PROBE_ROW = ("", "", "", "", 0.0, "", False, "") + (None,) * len(TRAIT_COLUMNS)
"""An answer of every column, written and undone at opening to prove the log takes one."""
POSTGRES_SCHEMES = ("postgresql", "postgres")


def insert_answers(traits: Sequence[str], placeholder: str) -> str:
    """The statement adding answers: META_COLUMNS, then ``traits``."""
    names = META_COLUMNS + tuple(traits)
    marks = ", ".join([placeholder] * len(names))
    return f"insert into predictions ({', '.join(names)}) values ({marks})"


@dataclass(frozen=True)
class Database:
    """A PostgreSQL log, by its libpq URL; shown with its password hidden."""

    url: str

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


Location = Path | Database


def location(text: str | Location) -> Location:
    """``postgresql://...`` (or ``postgres://``) names a PostgreSQL database; anything else
    is the path of an SQLite file."""
    if isinstance(text, Path | Database):
        return text
    scheme = re.match(r"([a-z][a-z0-9+.-]*)://", text)
    if scheme and scheme.group(1).split("+")[0] in POSTGRES_SCHEMES:
        return Database(re.sub(r"^[^:]*", "postgresql", text))
    return Path(text)


def log_location(start: Path | None = None) -> Location:
    """Where answers are logged: ``MUSHROOM_PREDICTION_LOG`` when set (a path or a
    ``postgresql://`` URL), else the project's ``data/live/predictions.db``, the project
    found from ``start`` (the working directory) upwards. A bento served from the project's
    own store (``.bentoml/`` inside it) runs in its folder there, so it logs where
    ``mushroom monitor check --live`` looks by default."""
    configured = os.environ.get(ENV_VAR)
    return location(configured) if configured else paths.project_root(start) / paths.PREDICTION_LOG


LOG_HELP = (
    f"the live log, a path or a postgresql:// URL (default: ${ENV_VAR}, else the project's "
    f"{paths.PREDICTION_LOG})"
)


class LogUnavailable(RuntimeError):
    """The log cannot record or give answers now; ``cause`` says why, in the database's or
    the system's words."""

    def __init__(self, where: Location, cause: str):
        super().__init__(f"prediction log {where}: {cause}")
        self.path, self.cause = where, cause


def columns(dataset: str | None = None) -> list[str]:
    """What the log's readers return: the answers' columns, the traits (``dataset``'s, or
    every catalogued one) and ``LABEL``."""
    traits = [t.name for t in CATALOGUES[dataset].traits] if dataset else list(TRAIT_COLUMNS)
    return [*META_COLUMNS, *traits, LABEL]


def typed(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with one dtype per column whatever the backend and the chunk: numbers and
    measurements float, ``unfamiliar`` 0/1, the rest text (None where absent). A chunk with
    no value in a column would otherwise be typed by its Nones, and chunks of one snapshot
    would disagree."""
    numbers = {c: pd.to_numeric(rows[c]).astype(float) for c in rows if c in NUMERIC_TRAITS}
    numbers["probability"] = rows["probability"].astype(float)
    numbers["unfamiliar"] = rows["unfamiliar"].astype(int)
    text = {c: rows[c].astype(object) for c in rows if c not in numbers}
    return rows.assign(**numbers, **text)
