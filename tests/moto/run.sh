#!/usr/bin/env bash
# `make test-moto`: moto's own Glue job / job-run / trigger / tag tests, in moto's server mode,
# against this service's HTTP gateway with fresh services per test (moto_glue_server.py).
# The tests come from the sdist of the pinned moto on PyPI (its wheel has none); the ones that
# assert moto's shortcuts or need crawlers are listed, with the reason, in deselected.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="$repo/.venv/bin/python"
version="$("$python" -c 'import moto; print(moto.__version__)')"
work="$repo/var/moto-tests/$version"
if [ ! -d "$work/moto-$version/tests/test_glue" ]; then
  rm -rf "$work" && mkdir -p "$work"
  "$repo/.venv/bin/pip" download --quiet --no-deps --no-binary :all: "moto==$version" -d "$work"
  tar xzf "$work/moto-$version.tar.gz" -C "$work" \
    "moto-$version/tests/__init__.py" "moto-$version/tests/conftest.py" \
    "moto-$version/tests/markers.py" "moto-$version/tests/test_glue"
fi
deselect=()
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  deselect+=(--deselect "${line%% # *}")
done < "$here/deselected.txt"
cd "$work/moto-$version"
# moto's own pytest settings (its markers), so neither ours nor any parent's apply.
cat > pytest.ini <<'INI'
[pytest]
markers =
    network: requires network connection
    requires_docker: requires running docker
    aws_verified: verified against AWS
    requires_clean_slate: requires a clean slate
INI
# Only the jobs / runs / triggers / tags tests: moto's other Glue resources are not served here.
others="crawler or session or dev_endpoint or connection or resource_policy or security_config"
others+=" or ml_transform or data_catalog or rgta or workflow"
PYTHONPATH="$here" exec "$python" -m pytest -p moto_glue_server -p no:cacheprovider \
  -W ignore::DeprecationWarning -q --color=no \
  tests/test_glue/test_glue.py tests/test_glue/test_glue_job_runs.py \
  -k "not ($others)" "${deselect[@]}" "$@"
