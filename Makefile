# Two entry points for a fresh Debian machine (see README):
#   make serve   install the Node packages, then build and start the service on models/
#   make test    install the apt and Node packages, then run jest and pytest (both always run)
PYTHON ?= /usr/bin/python3
APT_PACKAGES = python3-torch python3-torchvision python3-onnx python3-numpy python3-scipy \
  python3-pil python3-tqdm python3-pytest python3-matplotlib dataset-fashion-mnist
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps apt npm serve test test-node test-python

deps: apt npm

# Python deps come from Debian (no PyPI here); skip apt when all are present.
apt:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(APT_PACKAGES); }

npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

serve: npm
	npm start

# Both suites run even when the first fails (a jest failure must not hide a pytest one);
# the target fails at the end if either did.
test: deps
	@failed=''; \
	$(MAKE) --no-print-directory test-node || failed="$$failed test-node"; \
	$(MAKE) --no-print-directory test-python || failed="$$failed test-python"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

test-node:
	npm test

test-python:
	cd training && $(PYTHON) -m pytest -q tests
