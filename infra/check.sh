#!/usr/bin/env bash
# Offline checks of the infrastructure templates (`make lint-infra`).
#
# checkov lives in its own virtualenv (.venv-infra): it pins many dependencies
# that must not leak into the app's .venv. It is installed once (stamp file
# .venv-infra/.installed, refreshed when the pinned range below changes);
# afterwards the scan needs no network (--skip-download, no API key).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${INFRA_VENV:-$root/.venv-infra}"
checkov_spec='checkov>=3.2,<4'
stamp="$venv/.installed"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$checkov_spec" ]; then
    echo "lint-infra: installing $checkov_spec into ${venv#"$root"/}"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$checkov_spec"
    printf '%s' "$checkov_spec" > "$stamp"
fi

cd "$root"
# Bicep files must at least parse (checkov skips files it cannot parse).
"$venv/bin/python" - <<'PY'
import pathlib
import sys

from pycep import BicepParser

failed = 0
for path in sorted(pathlib.Path("infra").rglob("*.bicep")):
    try:
        BicepParser().parse(text=path.read_text(encoding="utf-8"))
    except Exception as exc:  # lark raises several error types
        failed += 1
        print(f"lint-infra: {path} does not parse: {exc}", file=sys.stderr)
sys.exit(1 if failed else 0)
PY

echo "lint-infra: checkov (bicep, arm) on infra/"
exec "$venv/bin/checkov" --config-file infra/.checkov.yaml -d infra \
    --framework bicep arm --skip-download --quiet --compact
