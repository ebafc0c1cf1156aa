# The two commands a new user needs: `make run` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: quant-env eval-env run test check lint unit engine-tests tiny bench screenshot clean setup install image-check

setup:
	@bash scripts/install

run: setup ## install, then open the app on http://127.0.0.1:7860
	$(PY) app.py

check: setup ## lint and type-check
	$(PY) -m ruff check playground tests bench app.py
	$(PY) -m mypy

quant-env: ## llm-compressor's own environment (.venv-quant) for the Quantize tab and its tests
	@bash scripts/install-quant

install: ## .venv, .venv-quant, .venv-eval and Chromium side by side (each skips quickly when in place)
	@bash scripts/install-all

eval-env: ## lm-evaluation-harness's own environment (.venv-eval) for the Accuracy tab, `eval` and their tests
	@bash scripts/install-eval

# ruff and mypy (about a minute of one core) run beside pytest, whose engine starts leave a core idle at
# times; their output follows pytest's, and either failing fails the target.
test: install ## install, lint, and run the whole suite (real vLLM CPU engines included)
	@mkdir -p data/logs; $(MAKE) --no-print-directory check > data/logs/check.log 2>&1 & check=$$!; \
	bash scripts/test; tests=$$?; wait $$check; lint=$$?; \
	echo "==> ruff and mypy (beside pytest; data/logs/check.log):"; cat data/logs/check.log; \
	exit $$(( tests || lint ))

tiny: setup ## build the tiny bf16/AWQ/GPTQ checkpoints into data/tiny
	$(PY) -m playground tiny --out data/tiny

clean:
	rm -rf data/logs .pytest_cache .mypy_cache .ruff_cache

image-check: setup ## build the Docker image on a local stand-in of vLLM's image and run it as a Space would (docs/deploy.md)
	bash scripts/image-check
