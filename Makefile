# One place that says how to set up, test and run maps_vla on a fresh Debian/Ubuntu machine without ROS.
# `make demo` and `make test` are the two commands in README.md; .ci/run calls `make test`.

VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; on a CUDA machine pass e.g. TORCH_SPEC='torch==2.13.0' with your CUDA index configured.
TORCH_SPEC ?= torch==2.13.0
# Headless MuJoCo rendering through EGL (Mesa llvmpipe on CPU) and the colour emoji font for the emoji task.
SYSTEM_PACKAGES := libegl1 libegl-mesa0 libgbm1 libgl1-mesa-dri fonts-noto-color-emoji
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: install system-deps test demo clean

$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Installs the Debian packages above when one is missing (needs root or sudo; prints what to do otherwise).
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: install system-deps
	$(PY) -m pytest -q

demo: install system-deps
	$(VENV)/bin/maps-vla demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
