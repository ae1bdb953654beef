# Echo Stream gateway: slim, non-root (numeric uid), health-checked, dependencies cached.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first, pinned by the committed lock (`make lock`): this layer is rebuilt only
# when requirements.lock changes, not on every source change.
COPY requirements.lock ./
RUN pip install --prefix=/install --no-deps -r requirements.lock
# Then the project, built as a wheel by the same script CI runs.
COPY pyproject.toml README.md LICENSE ./
COPY scripts/build-wheel.sh ./scripts/
COPY src ./src
RUN sh scripts/build-wheel.sh /wheels \
    && pip install --prefix=/install --no-deps /wheels/*.whl

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json \
    DATA_DIR=/home/echo/data
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 --user-group echo
USER 10001:10001
WORKDIR /home/echo
EXPOSE 8000
# Liveness only: /ready (dependencies) is for load balancers, not for restarting the container.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["echo-stream"]
