# Backprop Lab: the web app with its embedded defaults (no GPU worker).
FROM python:3.11-slim

# PYTHONPATH: the app is imported from this folder, beside templates/ and static/
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/srv/backprop-lab

WORKDIR /srv/backprop-lab

# Install dependencies first so that code edits do not invalidate this layer.
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY app ./app
RUN pip install .

COPY templates ./templates
COPY static ./static

RUN useradd --create-home --uid 1000 lab && chown -R lab /srv/backprop-lab
USER lab

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
