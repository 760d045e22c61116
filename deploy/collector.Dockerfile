# syntax=docker/dockerfile:1
# The censorwatch collector: slim, non-root, pinned base. Build from the repository root:
#   docker build -f deploy/collector.Dockerfile -t censorwatch-collector .
# Pin by digest as well when you publish (docker buildx imagetools inspect python:3.11.11-slim-bookworm).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probe ./probe
COPY collector ./collector
COPY alerts ./alerts
COPY censorwatch ./censorwatch
RUN python -m venv /opt/censorwatch \
 && /opt/censorwatch/bin/pip install --no-compile '.[collector]' \
 && /opt/censorwatch/bin/python -m compileall -q /opt/censorwatch/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="censorwatch-collector" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
RUN groupadd --system --gid 10001 censorwatch \
 && useradd --system --uid 10001 --gid censorwatch --home-dir /var/lib/censorwatch \
      --shell /usr/sbin/nologin censorwatch \
 && install -d -o censorwatch -g censorwatch -m 0700 /var/lib/censorwatch
COPY --from=build /opt/censorwatch /opt/censorwatch
ENV PATH=/opt/censorwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CENSORWATCH_DATA_DIR=/var/lib/censorwatch \
    CENSORWATCH_LISTEN=0.0.0.0:8080
USER 10001:10001
WORKDIR /var/lib/censorwatch
VOLUME ["/var/lib/censorwatch"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["censorwatch"]
CMD ["serve"]
