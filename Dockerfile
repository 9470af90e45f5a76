# syntax=docker/dockerfile:1
#
# The streamproc image: the `streamproc` CLI as entrypoint, `worker` by default.
#
#   docker build -t streamproc:0.1.0 .
#   docker run --rm streamproc:0.1.0 check-config
#
# The base is pinned to an exact tag (Python patch release and Debian release).
# No digest: it could not be verified from the machines this was written on
# (no registry access); docs/deployment.md shows how to add one.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/streamproc
WORKDIR /src
# Dependencies first, exactly as pinned, so this layer is reused until the pins change.
COPY deploy/docker/constraints.txt /src/constraints.txt
RUN /opt/streamproc/bin/pip install --requirement /src/constraints.txt
COPY pyproject.toml README.md /src/
COPY streamproc /src/streamproc
# --no-deps: nothing beyond the pins gets in; pip check fails the build if a pin is missing.
RUN /opt/streamproc/bin/pip install --no-deps /src \
    && /opt/streamproc/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="streamproc" \
      org.opencontainers.image.description="Streaming drift detection for ML models" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 streamproc \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/streamproc --shell /usr/sbin/nologin streamproc \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/streamproc /var/lib/streamproc/data
COPY --from=build /opt/streamproc /opt/streamproc
ENV PATH=/opt/streamproc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMPROC_WORKER_DATA_DIR=/var/lib/streamproc/data
WORKDIR /var/lib/streamproc
USER 10001:10001
EXPOSE 9108
# Only the worker serves /healthz; compose disables this check for the other subcommands.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAMPROC_METRICS_PORT', '9108') + '/healthz', timeout=4)"]
ENTRYPOINT ["streamproc"]
CMD ["worker"]
