# Kefu in one image: the HTTP API by default (`kefu serve`), the Streamlit app with `kefu ui --host 0.0.0.0`,
# and every other `kefu` command (`docker compose run --rm api kefu ingest data/kb`). See README: Serving.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    KEFU_HOME=/data

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
COPY api ./api
COPY rag ./rag
COPY ingest ./ingest
COPY inference ./inference
COPY ui ./ui
COPY data/kb ./data/kb

# The exact versions the test suite passed with (constraints.txt). torch comes from PyTorch's CPU index: the
# image talks to a model server (vLLM) and needs no CUDA; the constraint's 2.13.0 matches its 2.13.0+cpu build.
# OCR (rapidocr-onnxruntime's OpenCV) loads libGL and GLib, which the slim image lacks.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt '.[postgres]' \
    && useradd --create-home --uid 10001 kefu \
    && mkdir -p /data && chown kefu /data

USER kefu
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["kefu", "serve", "--host", "0.0.0.0"]
