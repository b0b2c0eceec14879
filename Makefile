# The two commands a newcomer needs are `make demo` and `make test`; both set
# everything up first (uv, the .venv with every workspace package, the
# interop virtualenv with the released HiveMind packages).
SHELL := /bin/bash
UV := $(CURDIR)/tools/uv.sh
PY := $(CURDIR)/.venv/bin/python
INTEROP_VENV := $(CURDIR)/.cache/interop-venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: install interop-venv test lint demo bench bench-proto bench-rooms bench-hub vectors conformance clean \
	conformance-bus-client conformance-reference conformance-ours

install: .venv/.installed

.venv/.installed: pyproject.toml $(wildcard packages/*/pyproject.toml) conformance/pyproject.toml
	$(UV) sync --all-packages --python python3
	@touch $@

interop-venv: $(INTEROP_VENV)/.installed

$(INTEROP_VENV)/.installed: tools/interop-requirements.txt
	rm -rf $(INTEROP_VENV)
	$(UV) venv -q $(INTEROP_VENV) --python python3
	$(UV) pip install -q --python $(INTEROP_VENV)/bin/python --require-hashes -r tools/interop-requirements.txt
	@touch $@

# pytest exits 5 when it collected nothing: for this suite that is a failure,
# never a silent pass.
test: install interop-venv
	@set +e; HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: install
	$(CURDIR)/.venv/bin/ruff check .
	$(CURDIR)/.venv/bin/ruff format --check .

# docs/cli.md is generated from the commands' help (a test fails when it is stale).
.PHONY: docs
docs: install
	$(PY) -m hmctl._docs docs/cli.md

vectors: install
	$(PY) packages/hivemind-proto/tests/vectors/generate.py

# A hub and a room service on loopback; a satellite verifies a room through the hub,
# asks it, and verifies the signed answer (tools/demo.py; exits non-zero on any failure).
demo: install
	$(PY) tools/demo.py

bench: bench-proto bench-rooms bench-hub

bench-proto: install interop-venv
	HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) bench/proto/run.py

# Sandbox runner overhead (docker, bwrap, local) against starting the same sandbox directly,
# then room runs per minute through a real room service with 10 concurrent participants
# (bwrap) beside plain sandbox starts; BENCH_ROOMS_ARGS adds options, e.g. --json out.json.
bench-rooms: install
	$(PY) bench/rooms/run.py $(BENCH_ROOMS_ARGS)

# Our hub against hivemind-core 4.0.0 through a real OVOS bus (throughput, round trip,
# handshake, RSS per idle connection); BENCH_HUB_ARGS adds options, e.g. --json out.json.
bench-hub: install interop-venv
	HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) bench/hub/run.py $(BENCH_HUB_ARGS)

# The conformance suite against the built-in reference hub and echo testee
# (every profile); CONFORMANCE_ARGS adds options, e.g. --json report.json.
conformance: install
	$(CURDIR)/.venv/bin/hivemind-conformance reference --profile N $(CONFORMANCE_ARGS)

# Committed reports in docs/conformance/ (conformance/tools/reports.py): the released
# hivemind-bus-client 0.4.4 (client mode, profile L), the released hivemind-core 4.0.0
# hub (profiles L and S) and our hub (L, S and N), both behind a real OVOS bus.
conformance-bus-client: install interop-venv
	HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) conformance/tools/reports.py bus-client

conformance-reference: install interop-venv
	HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) conformance/tools/reports.py reference

conformance-ours: install interop-venv
	HIVEMIND_INTEROP_PYTHON=$(INTEROP_VENV)/bin/python $(PY) conformance/tools/reports.py ours

clean:
	rm -rf .venv .cache
