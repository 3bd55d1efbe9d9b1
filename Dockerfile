# The operator image the chart deploys (not built in this repo's CI: no Docker engine there).
# `make check-image` runs this file's COPY and pip steps in a fresh venv instead, so keep each
# pip command a plain `pip ...` segment of a RUN line (tools/image/check-install.sh parses them).
#
# Exact tag, not a digest: pinning @sha256 needs reading it from Docker Hub, which the machine
# this was written on cannot reach. Add the digest where it can be read.
FROM python:3.11.14-slim-bookworm
WORKDIR /app
# The lock alone first, so that the dependency layer is reused when only our code changes.
COPY requirements.lock ./
# Hashes make every file exact; wheels only, since building an sdist would pull in build
# dependencies that pip resolves unpinned. After a pyproject change: `make lock`.
RUN pip install --no-cache-dir --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
# Our package: its dependencies and its build backend (setuptools) are already installed from
# the lock, so no resolving and no build isolation (which would fetch setuptools unpinned).
# --check-build-dependencies and pip check fail the build if pyproject changed without re-locking.
RUN pip install --no-cache-dir --no-deps --no-build-isolation --check-build-dependencies . \
    && pip check \
    && useradd --uid 10001 releaseguard
USER 10001
ENTRYPOINT ["releaseguard"]
CMD ["run", "--all-namespaces"]
