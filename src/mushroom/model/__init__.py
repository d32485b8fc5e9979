"""The answering system: estimators, fitting, the verdict policy and its familiarity and
worst-case bounds, the bundle on disk, and what its verdicts are worth (evaluation, safety).
Imports core and data."""
