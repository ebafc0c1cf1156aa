# GPU image for a Hugging Face Space (Docker SDK) or any CUDA host. vLLM's own image brings CUDA and
# the CUDA build of vLLM (the version requirements-gpu.txt pins); the app adds gradio, plotly and
# NVML. The start command is the same app.py that the tests run. Docker does not run on the
# project's machines: tests/test_dockerfile.py lints this file (hadolint, .hadolint.yaml) instead.
#   docker build -t quant-playground .
#   docker run --gpus all -p 7860:7860 -e PLAYGROUND_A=... -e PLAYGROUND_B=... quant-playground
FROM vllm/vllm-openai:v0.32.0

# A public image is locked: the operator fixes both engines, visitors only prompt (README).
ENV PYTHONUNBUFFERED=1 \
    HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    PLAYGROUND_DATA=/home/user/data \
    PLAYGROUND_LOCKED=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    PORT=7860

# Spaces run the container as uid 1000. CUDA images on Ubuntu 24.04 already have a user with that
# uid (ubuntu), so it makes way for ours; the model cache and the data folder belong to it.
RUN if id -u 1000 >/dev/null 2>&1; then userdel --remove "$(id -nu 1000)"; fi \
    && useradd --create-home --uid 1000 --user-group user \
    && mkdir -p "$HF_HOME" "$PLAYGROUND_DATA" \
    && chown -R 1000:1000 /home/user

WORKDIR /home/user/app
COPY --chown=1000:1000 requirements.txt .
RUN python3 -m pip install --no-cache-dir -r requirements.txt
COPY --chown=1000:1000 . .

USER 1000
EXPOSE 7860
# Models download at the first start, so the first check waits up to 10 minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s \
    CMD ["python3", "-c", "import os, urllib.request as r; r.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/\", timeout=4)"]
# The base image's entry point is `vllm serve`; the app starts its own engines.
ENTRYPOINT []
CMD ["python3", "app.py"]
