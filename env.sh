# Sourced by every Makefile target (and by you, for a shell): the project's venv first on
# PATH, telemetry off (see src/mushroom/core/environment.py).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv/bin:$PATH"
# Run in this file's folder: the project whose stores (mushroom.core.paths) are exported is
# this checkout, wherever it is sourced from and wherever its venv's code is installed.
eval "$(cd "$(dirname "${BASH_SOURCE[0]}")" && python -c 'import mushroom.core.environment as e; e.print_shell_exports()')"
