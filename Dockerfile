# syntax=docker/dockerfile:1
# Multi-stage: build a wheel-installed virtualenv, then copy it into a slim runtime image that
# runs as an unprivileged user. One image serves web (gunicorn) and worker (celery).
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/roomrec
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY webhooks ./webhooks
COPY workers ./workers
RUN /opt/roomrec/bin/pip install --upgrade pip && /opt/roomrec/bin/pip install .

FROM python:3.12-slim
ENV PATH=/opt/roomrec/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --home-dir /app --create-home roomrec
COPY --from=build /opt/roomrec /opt/roomrec
WORKDIR /app
USER roomrec
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "webhooks:create_app()"]
