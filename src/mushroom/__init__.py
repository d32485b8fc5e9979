"""Mushroom edibility classifier: shared package for pipeline stages, service and monitoring."""

from mushroom import telemetry

telemetry.apply()
