"""The ground every other wing stands on: the feature catalogue, params.yaml, atomic files,
error text and the process environment. Imports nothing of the package."""
