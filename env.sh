# Sourced by every Makefile target: the project's venv first on PATH, telemetry off.
export PATH="$PWD/.venv/bin:$PATH"
eval "$(python -c 'import mushroom.telemetry as t; t.print_shell_exports()')"
