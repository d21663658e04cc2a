# botkit in a container: `botkit serve` as a non-root user, the SQLite store on the /data volume.
#   docker build -t botkit .                                  # or --build-arg BASE=<your python 3.11+ image>
#   docker run -p 8000:8000 -v botkit-data:/data --env-file .env botkit
# docs/deploy.md shows it beside Chatwoot's own compose file.
ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS build
ARG EXTRAS=redis
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /src/
COPY botkit /src/botkit
COPY bots /src/bots
RUN python3 -m venv /opt/botkit && /opt/botkit/bin/pip install "/src[${EXTRAS}]"

FROM ${BASE}
# The store's volume belongs to the user botkit runs as: a named volume takes /data's owner and mode when
# it is first mounted, and nothing in the container runs as root.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin botkit \
    && mkdir -p /data && chown botkit:botkit /data && chmod 0700 /data
COPY --from=build /opt/botkit /opt/botkit
ENV PATH=/opt/botkit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BOTKIT_HOST=0.0.0.0 \
    BOTKIT_PORT=8000 \
    BOTKIT_STORE=sqlite:////data/botkit.db
USER botkit
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['BOTKIT_PORT'], timeout=2)"]
# SIGTERM: the worker finishes in-flight events for BOTKIT_SHUTDOWN_TIMEOUT (10 s), so stop with a longer grace
STOPSIGNAL SIGTERM
CMD ["botkit", "serve"]
