"""vLLM Quantization Playground."""
