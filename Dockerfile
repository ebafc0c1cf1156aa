# GPU image for a Hugging Face Space (Docker SDK) or any CUDA host: vLLM's own image has the
# CUDA build of vLLM; the app adds gradio/plotly/NVML. The start command is the same app.py the
# tests run. Build: docker build -t quant-playground .   Run: docker run --gpus all -p 7860:7860 quant-playground
FROM vllm/vllm-openai:v0.32.0

ENV PYTHONUNBUFFERED=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    PORT=7860 \
    HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    PLAYGROUND_DATA=/home/user/data

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user requirements.txt .
RUN python3 -m pip install --no-cache-dir -r requirements.txt
COPY --chown=user . .
RUN mkdir -p /home/user/.cache/huggingface /home/user/data && chown -R user /home/user

USER user
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"
ENTRYPOINT []
CMD ["python3", "app.py"]
