# GPU image for a Hugging Face Space (Docker SDK) or any CUDA host. vLLM's own image brings CUDA and
# the CUDA build of vLLM (the version requirements-gpu.txt pins); the app adds gradio, plotly and
# NVML in an environment of its own. The start command is the same app.py that the tests run.
# `make image-check` builds this file on a local stand-in of vLLM's image and runs it as a Space would
# (docs/deploy.md: what that proves and what it does not); tests/test_dockerfile.py lints it.
#   docker build -t quant-playground .
#   docker build --build-arg VLLM_IMAGE=vllm/vllm-openai:v0.32.0-cu129 -t quant-playground .  # older drivers
#   docker run --gpus all -p 7860:7860 -e PLAYGROUND_A=... -e PLAYGROUND_B=... quant-playground
# The default tag is CUDA 13 and needs an R580 or newer host driver; the -cu129 tag of the same vLLM
# release is CUDA 12.9 (README, "Deploying on Hugging Face Spaces").
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0
FROM ${VLLM_IMAGE}

# A public image is locked: the operator fixes both engines, visitors only prompt (README).
# HF_HOME and PLAYGROUND_DATA are the folders without persistent storage: they go with the container.
# When a volume is mounted at PLAYGROUND_VOLUME (a Space's persistent storage is /data, at run time
# only), the app keeps its history and the model cache there instead.
ENV PYTHONUNBUFFERED=1 \
    HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    PLAYGROUND_DATA=/home/user/data \
    PLAYGROUND_VOLUME=/data \
    PLAYGROUND_LOCKED=1 \
    PLAYGROUND_ENGINE_PYTHON=/usr/bin/python3 \
    APP_ENV=/opt/app-env \
    GRADIO_SERVER_NAME=0.0.0.0 \
    PORT=7860

# The app gets its own environment over the image's packages (--system-site-packages): requirements.txt
# installs there, so the app's pins (e.g. pillow<13 for gradio) shadow the image's versions for the
# app's process only, and vLLM's environment stays as vLLM built it, whatever versions the image holds.
# The engines run in that environment (PLAYGROUND_ENGINE_PYTHON, the image's own python3). The image's
# pip runs in the app environment (--without-pip: vLLM's image need not have ensurepip). `pip install`
# reports a conflict and still exits 0; `pip check` fails the build on one. This runs before the user is
# made: whatever the checks write under $HOME goes to uid 1000 with the rest.
COPY requirements.txt /tmp/app-build/
RUN python3 -m venv --system-site-packages --without-pip "$APP_ENV" \
    && "$APP_ENV/bin/python" -m pip install --no-cache-dir -r /tmp/app-build/requirements.txt \
    && "$APP_ENV/bin/python" -m pip check \
    && "$PLAYGROUND_ENGINE_PYTHON" -c "import vllm" \
    && rm -rf /tmp/app-build

# Spaces run the container as uid 1000. CUDA images on Ubuntu 24.04 already have a user with that
# uid (ubuntu), so it makes way for ours. Every folder the image makes under $HOME (the model cache,
# the data folder, the app's own folder) exists before the chown, so all of them belong to uid 1000.
RUN if id -u 1000 >/dev/null 2>&1; then userdel --remove "$(id -nu 1000)"; fi \
    && useradd --create-home --uid 1000 --user-group user \
    && mkdir -p "$HF_HOME" "$PLAYGROUND_DATA" /home/user/app \
    && chown -R 1000:1000 /home/user

WORKDIR /home/user/app
COPY --chown=1000:1000 . .

USER 1000
EXPOSE 7860
# Models download at the first start, so the first check waits up to 10 minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s \
    CMD ["/opt/app-env/bin/python", "-c", "import os, urllib.request as r; r.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/\", timeout=4)"]
# The base image's entry point is `vllm serve`; the app starts its own engines.
ENTRYPOINT []
CMD ["/opt/app-env/bin/python", "app.py"]
