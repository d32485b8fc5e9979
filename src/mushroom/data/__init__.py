"""Data on disk: the raw datasets, the prepared splits, the prediction log and the labelled
feedback exported from it. Imports only core."""
