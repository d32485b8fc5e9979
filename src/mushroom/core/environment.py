"""Process environment defaults, defined once: telemetry off, and OpenMP that yields.

Importing the ``mushroom`` package applies them to the current process (stages, service,
CLI, tests); ``print_shell_exports`` hands them to the Makefile through env.sh, so DVC
itself and everything it spawns run with the same settings. A value the user set wins.
"""

import os

from mushroom.core.paths import bentoml_home

TELEMETRY_OFF = {
    "DVC_NO_ANALYTICS": "1",
    "DVC_STUDIO_OFFLINE": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # must be the word "true"; DO_NOT_TRACK=1 is ignored
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "true",
}

# HistGradientBoosting's OpenMP threads spin while waiting: on 2 cores with the other one
# busy (a DVC queue worker, a test server) a 320-row fit took 6.2 s instead of 0.2 s.
THREADING = {"OMP_WAIT_POLICY": "passive"}

DEFAULTS = TELEMETRY_OFF | THREADING


def apply() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def print_shell_exports() -> None:
    """Also the project's BentoML store (mushroom.core.paths.bentoml_home): exported by
    env.sh only, not set on import, since a built bento imports this package from its own
    folder, and the bentoml command reads its home before it imports the service."""
    for name, value in (DEFAULTS | {"BENTOML_HOME": str(bentoml_home())}).items():
        print(f'export {name}="${{{name}:-{value}}}"')


def die_with_parent() -> None:
    """This process gets SIGKILL when the process that started it ends (Linux): a
    `bentoml serve` killed with SIGKILL left its worker serving the old model on the port,
    and a new server on that port failed. Only for workers: a server itself started from a
    shell must outlive it."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
