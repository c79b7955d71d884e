# One place that says how to set up, test and run maps_vla on a fresh Debian/Ubuntu machine without ROS.
# `make demo` and `make test` are the two commands in README.md; .ci/run calls `make test`.
# Installs take the exact versions the suite passed with (constraints.txt); `make test-latest` tries the newest
# releases in a separate venv and `make lock` records them once the suite passes there (docs/dependencies.md).

VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := constraints.txt
# The CPU wheel; on a CUDA machine pass e.g. TORCH_SPEC='torch==2.13.0' with your CUDA index configured.
TORCH_SPEC ?= torch==2.13.0
PIP_SPEC ?= pip==26.3
LATEST_VENV ?= .venv-latest
# Headless MuJoCo rendering through EGL (Mesa llvmpipe on CPU) and the colour emoji font for the emoji task.
SYSTEM_PACKAGES := libegl1 libegl-mesa0 libgbm1 libgl1-mesa-dri fonts-noto-color-emoji
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: install system-deps test demo test-latest lock clean

$(VENV)/.installed: setup.py $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q '$(PIP_SPEC)'
	$(PY) -m pip install -q -c $(LOCK) '$(TORCH_SPEC)'
	$(PY) -m pip install -q -c $(LOCK) -e '.[dev]'
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

# The newest releases setup.py allows (torch stays at TORCH_SPEC), in their own venv, then the whole suite:
# run it before refreshing the lock, or any time, to find the next upstream break before CI does.
test-latest: system-deps
	rm -rf $(LATEST_VENV)
	python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	echo '$(TORCH_SPEC)' > $(LATEST_VENV)/torch-pin.txt
	$(LATEST_VENV)/bin/python -m pip install -q -c $(LATEST_VENV)/torch-pin.txt '$(TORCH_SPEC)'
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c $(LATEST_VENV)/torch-pin.txt -e '.[dev]'
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable > $(LATEST_VENV)/freeze.txt
	$(LATEST_VENV)/bin/python -m pytest -q

# Record what test-latest just passed with as the new lock (torch without its local +cpu label, so a CUDA build of
# the same release satisfies it). Review `git diff constraints.txt` and commit it with the reason.
lock: test-latest
	{ echo '# Exact versions the test suite passed with (make lock; see docs/dependencies.md). Used as pip -c.'; \
	  sed -e 's/^torch==\([^+]*\)+.*/torch==\1/' $(LATEST_VENV)/freeze.txt; } > $(LOCK)

clean:
	rm -rf $(VENV) $(LATEST_VENV) build *.egg-info src/*.egg-info .pytest_cache
