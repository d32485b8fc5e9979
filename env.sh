# Sourced by every Makefile target (and by you, for a shell): the project's venv first on
# PATH, telemetry off (see src/mushroom/environment.py).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv/bin:$PATH"
eval "$(python -c 'import mushroom.environment as e; e.print_shell_exports()')"
