"""The HTTP service and the CSV scorer: request schema, the HTTP edge, the classifier both
use, Prometheus counters and the BentoML adaptations. Imports every wing but monitoring."""
