"""Mushroom edibility classifier: shared package for pipeline stages, service and monitoring."""

from mushroom.core import environment

environment.apply()
