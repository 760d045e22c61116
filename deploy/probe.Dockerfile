# syntax=docker/dockerfile:1
# The censorwatch probe: slim, non-root, pinned base, only the probe's dependencies.
#   docker build -f deploy/probe.Dockerfile -t censorwatch-probe .
#   docker run -d --name cw-probe -v cw-probe:/var/lib/censorwatch-probe censorwatch-probe \
#     run --collector https://collector.example --token cwe_… --accept-consent
# Publishing: pin by digest too (docker buildx imagetools inspect python:3.11.11-slim-bookworm).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probe ./probe
COPY collector ./collector
COPY alerts ./alerts
COPY censorwatch ./censorwatch
# The base install is the probe's: pyproject.toml keeps the server stack in the `collector` extra.
RUN python -m venv /opt/censorwatch-probe \
 && /opt/censorwatch-probe/bin/pip install --no-compile . \
 && /opt/censorwatch-probe/bin/python -m compileall -q /opt/censorwatch-probe/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="censorwatch-probe" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
RUN groupadd --system --gid 10002 cwprobe \
 && useradd --system --uid 10002 --gid cwprobe --home-dir /var/lib/censorwatch-probe \
      --shell /usr/sbin/nologin cwprobe \
 && install -d -o cwprobe -g cwprobe -m 0700 /var/lib/censorwatch-probe
COPY --from=build /opt/censorwatch-probe /opt/censorwatch-probe
ENV PATH=/opt/censorwatch-probe/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    STATE_DIRECTORY=/var/lib/censorwatch-probe
USER 10002:10002
WORKDIR /var/lib/censorwatch-probe
VOLUME ["/var/lib/censorwatch-probe"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["censorwatch-probe"]
CMD ["status"]
