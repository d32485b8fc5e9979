"""Mushroom edibility classifier: shared package for pipeline stages, service and monitoring."""

from mushroom import environment

environment.apply()
