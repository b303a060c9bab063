# Image of the rig's userspace TCP fault proxy (wsrig/faultproxy.py: stdlib-only asyncio,
# listens on 9000, forwards to $PROXY_UPSTREAM, HTTP control API on 9001).
# No Python dependencies, so no wheelhouse and no venv. Build from the repository root:
#   docker build -f docker/fault-proxy.Dockerfile --build-arg BASE_IMAGE=... .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROXY_UPSTREAM=dashboard-backend:8000

WORKDIR /app
COPY wsrig/faultproxy.py /app/faultproxy.py

LABEL wsrig.project="wsrig" \
      org.opencontainers.image.title="fault-proxy"

USER 10001:10001
EXPOSE 9000 9001
CMD ["python3", "/app/faultproxy.py"]
