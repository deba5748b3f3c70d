#!/usr/bin/env bash
# Prints the Python interpreter the project uses: python3.13 (the Lambda runtime) when it can be
# found on PATH or through pyenv; otherwise python3 >= 3.11, with a warning on stderr.
set -euo pipefail
# A pyenv shim may exist without the version behind it, so ask the interpreter itself.
if python3.13 -c 'import sys' >/dev/null 2>&1; then
  python3.13 -c 'import sys; print(sys.executable)'; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  for candidate in "$(pyenv root)"/versions/3.13*/bin/python3.13; do
    if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
  done
fi
if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "warning: python3.13 (the Lambda runtime) not found; using $(python3 --version) instead. 'sam build' is skipped." >&2
  python3 -c 'import sys; print(sys.executable)'; exit 0
fi
echo "error: need python3.13 (or python3 >= 3.11). Install it, e.g. 'pyenv install 3.13'." >&2
exit 1
