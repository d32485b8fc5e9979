"""Drift between training data and what the service sees, and the history of drift runs.
Imports core, data, model and lifecycle."""
