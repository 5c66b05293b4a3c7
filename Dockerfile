# syntax=docker/dockerfile:1
# Multi-stage: build roomrec with its pinned dependencies into a virtualenv, then copy only that
# virtualenv into a slim runtime image that runs as an unprivileged user. One image serves web
# (gunicorn), worker and beat (celery) and flower, with a SQLite or a PostgreSQL store.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/roomrec
# The sources, as filtered by .dockerignore: never .env, data, tests or the virtualenv.
COPY . .
# flower for the task views; postgres for a PostgreSQL DATABASE_URL (psycopg with its own libpq).
RUN --mount=type=cache,target=/root/.cache/pip /opt/roomrec/bin/pip install ".[flower,postgres]"

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/roomrec/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# /app/data holds the local state of the defaults (spool, SQLite store, archive); created here
# so that a volume mounted on it starts out owned by the unprivileged user.
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home roomrec \
    && install -d -o roomrec -g roomrec /app/data
COPY --from=build /opt/roomrec /opt/roomrec
WORKDIR /app
# gunicorn's settings (metrics across processes, JSON logs, the gevent worker with its header
# and body deadlines, no trust in proxy headers by default), read from the working directory:
# port 8000 holds slow clients by itself, behind an L4 load balancer that buffers nothing.
COPY gunicorn.conf.py ./
USER 10001:10001
EXPOSE 8000 5555
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "webhooks:create_app()"]
