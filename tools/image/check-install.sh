#!/usr/bin/env bash
# Checks the Dockerfile's install without a Docker engine: replays its COPY and pip steps, in
# order, into a temporary build context and a fresh venv, then runs the installed operator.
#
# The commands are read from the Dockerfile itself, so they cannot drift from it:
#   - COPY <src>... <dest> copies from the repo into the context (flags such as --chown are
#     ignored; the JSON form is refused);
#   - each RUN line is split on `&&`; a segment starting with `pip` (or `python -m pip`) runs
#     as `<venv>/bin/python -m pip ...` in the context, as in WORKDIR; the rest (useradd) is
#     skipped;
#   - --no-cache-dir is dropped: it only keeps the image layer small and changes nothing in what
#     gets installed, while a local run may use pip's cache.
# Then `pip check` (dependencies missing or out of range: pyproject changed without `make lock`),
# `releaseguard --help` and `import releaseguard.cli` from that venv. A dependency dropped from
# pyproject goes unnoticed: it stays in the lock, harmless, until the next `make lock`.
#
# The venv uses $PYTHON (default python3). The image has 3.11; another version is used anyway,
# with a warning, and may fail on wheels the lock has only for 3.11.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
unset PYTHONPATH PIP_REQUIRE_VIRTUALENV

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/app venv=$work/venv
mkdir -p "$ctx"

version=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
case $version in
  3.11.*) echo "check-install: Python $version (the image has 3.11)" ;;
  *) echo "check-install: WARNING: Python $version, not the image's 3.11; checking anyway" >&2 ;;
esac
"$PYTHON" -m venv "$venv"

# One logical line per instruction: continuation lines joined, comments and blanks dropped.
instructions=$(awk '
  /^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
  { line = line $0 }
  /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, "", line); next }
  { print line; line = "" }' Dockerfile)

# Fails early rather than pass vacuously should the Dockerfile stop looking as parsed here.
if ! grep -Eq '(^RUN |&& *)(python3? -m )?pip install [^&]*--require-hashes' <<<"$instructions"; then
  echo "check-install: no RUN segment 'pip install ... --require-hashes' in the Dockerfile" >&2
  exit 1
fi

while IFS= read -r instruction; do
  read -r keyword args <<<"$instruction"
  case ${keyword^^} in
    COPY)
      [[ $args != \[* ]] || { echo "check-install: JSON-form COPY not supported: $args" >&2; exit 1; }
      read -ra words <<<"$args"
      paths=()
      for w in "${words[@]}"; do [[ $w == --* ]] || paths+=("$w"); done
      dest=${paths[-1]}
      unset 'paths[-1]'
      echo "+ COPY ${paths[*]} $dest"
      [[ $dest == */ ]] && mkdir -p "$ctx/$dest"
      cp -r "${paths[@]}" "$ctx/$dest"
      ;;
    RUN)
      rest=$args
      while [[ -n $rest ]]; do
        if [[ $rest == *"&&"* ]]; then segment=${rest%%&&*} rest=${rest#*&&}; else segment=$rest rest=; fi
        read -r segment <<<"$segment"   # trims
        segment=$(sed -E 's/^python3?(\.[0-9]+)? -m pip /pip /' <<<"$segment")
        if [[ $segment != pip\ * ]]; then echo "- skipped: $segment"; continue; fi
        segment=${segment//--no-cache-dir/}
        echo "+ $segment"
        (cd "$ctx" && eval "\"\$venv/bin/python\" -m $segment")
      done
      ;;
  esac
done <<<"$instructions"

echo "+ pip check"
"$venv/bin/python" -m pip check
cd "$work"   # so that the import below finds the installed package, not a source tree
echo "+ releaseguard --help"
"$venv/bin/releaseguard" --help >/dev/null
echo "+ python -c 'import releaseguard.cli'"
"$venv/bin/python" -c 'import releaseguard.cli; print("  from", releaseguard.cli.__file__)'
echo "check-install: OK"
