"""Keep BentoML's process manager deaf to other users.

`bentoml serve` runs its workers under circus, whose controller takes commands on a ZeroMQ
endpoint: list, signal, stop, and ``add``, which starts any program. BentoML 1.4 binds it
(and circus's event feed) to a random TCP port on 127.0.0.1 with no authentication, and
has no setting to change that: any local user or process that finds the port can run
programs as the server's user. Here both become unix sockets in a directory only that
user may enter (mode 0700), removed when the server exits.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

from circus.arbiter import Arbiter

_circus_init = Arbiter.__init__


def _init_with_private_sockets(self, watchers, endpoint, pubsub_endpoint, *args, **kwargs):
    folder = tempfile.mkdtemp(prefix="bentoml-control-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _circus_init(
        self, watchers, f"ipc://{folder}/control", f"ipc://{folder}/events", *args, **kwargs
    )


def private_control_sockets() -> None:
    """Takes effect for arbiters made after it: `bentoml serve` imports the service, and so
    calls this, before it makes its arbiter."""
    Arbiter.__init__ = _init_with_private_sockets
