#!/usr/bin/env bash
# One entry point for a fresh machine (only Python needed):
#   bash dev.sh demo    set up .venv and run `anyconv demo`
#   bash dev.sh test    set up .venv, lint, type-check and run the whole test suite
#   bash dev.sh bench   set up .venv and run the benchmarks
#   bash dev.sh docs    set up .venv and build the documentation site into site/ (strict: a warning fails)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.anyconv-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q -c constraints.txt -e ".[test,viz,train,digits,docs]"
  touch "$stamp"
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cmd=${1:-test}
shift || true
case "$cmd" in
  demo) exec anyconv demo "$@" ;;
  test)
    ruff check src tests benchmarks
    mypy
    exec python -m pytest -n 2 "$@"
    ;;
  bench) exec anyconv bench "$@" ;;
  docs) NO_MKDOCS_2_WARNING=1 exec mkdocs build --strict "$@" ;;
  *) echo "usage: bash dev.sh {demo|test|bench|docs} [args...]" >&2; exit 2 ;;
esac
