# Backprop Lab. Two targets from one recipe:
#   docker build -t backprop-lab .                                the web app (the default target)
#   docker build --target worker -t backprop-lab-worker .         a Dask worker for heavy jobs:
#       the same image plus the `worker` extra (torch), running `dask worker` (docs/jobs.md)

# ---- app: the web app with its embedded job cluster (no GPU worker needed) ----
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /srv/backprop-lab

# The wheel carries the pages (templates/ and static/ become app/templates and app/static):
# the app runs from site-packages, not from this folder, and `backprop-lab` is on PATH.
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY jobs ./jobs
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN pip install . && rm -rf build

RUN useradd --create-home --uid 1000 lab && chown -R lab /srv/backprop-lab
USER lab

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# settings as environment variables (docker run -e BACKPROP_LAB_MAX_POINTS=2000 ...) or options
CMD ["backprop-lab", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- worker: the same image with torch, serving a Dask scheduler's jobs ----
# docker run --gpus all -e DASK_SCHEDULER_ADDRESS=tcp://host:8786 backprop-lab-worker
# (without a GPU, drop --gpus and override the command without --resources GPU=1)
FROM app AS worker

USER root
# the `worker` extra pins torch; PyPI's Linux x86-64 wheel carries its CUDA libraries
RUN pip install "/srv/backprop-lab[worker]" && rm -rf /srv/backprop-lab/build
USER lab

# `dask worker` reads the scheduler's address from DASK_SCHEDULER_ADDRESS; set it at run time
ENV DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786
# a worker serves no web page: the app's health check does not apply
HEALTHCHECK NONE
# one task at a time per worker: a job's piece already uses the whole GPU (or core)
CMD ["dask", "worker", "--nthreads", "1", "--resources", "GPU=1", "--no-dashboard"]

# ---- the default target: the app ----
FROM app
