# One-word chores. `make run` and `make test` are all a new user needs: both create the
# virtualenv, install the project and generate the gRPC stubs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
PROTOS := $(shell find protos -name '*.proto')

# Airflow's Amazon provider, for the GlueJobHook(verbose=True) test only, in a virtualenv of
# its own: Airflow's own dependency tree (its SQLAlchemy, its web stack) must not choose the
# services' libraries. Built once (~5 min, ~380 MB), reused; the stamp names the versions, so
# changing them rebuilds it.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_PACKAGES := apache-airflow-providers-amazon==9.39.0 apache-airflow==3.3.2
AIRFLOW_STAMP := $(STAMPS)/airflow-9.39.0-3.3.2

.PHONY: venv tools protos run test test-fast test-moto lint check bench profile clean airflow-venv

venv: $(STAMPS)/install

# Two stamps: `make run` needs only the services' dependencies and the stub generator; the
# test, lint and bench tools (moto, awscli, mypy ...) come with the first `make test` / `make
# lint`, which then adds only those. compat mode puts the checkout on sys.path, so packages
# generated or added later (glue/) import without reinstalling.
$(STAMPS)/install: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(BIN)/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing the services' dependencies into $(VENV) (first time only, about a minute or two)"
	@set -o pipefail; $(BIN)/python -m pip install --progress-bar off -e '.[protos]' \
	  --config-settings editable_mode=compat | { grep -E '^(Collecting|Successfully)' || true; }
	@touch $@

$(STAMPS)/dev: $(STAMPS)/install
	@echo "installing the test and lint tools into $(VENV) (first time only)"
	$(BIN)/python -m pip install --quiet -e '.[protos,tools,dev]' --config-settings editable_mode=compat
	@touch $@ $(STAMPS)/tools

# grpcurl, boto3 and the aws CLI for the README's examples (`make test` installs them too).
tools: $(STAMPS)/tools

$(STAMPS)/tools: $(STAMPS)/install
	$(BIN)/python -m pip install --quiet -e '.[protos,tools]' --config-settings editable_mode=compat
	@touch $@

protos: $(STAMPS)/protos

# protoc writes absolute imports from the proto path, so generating into the checkout root
# yields importable glue.v1.glue_pb2 with no rewriting.
$(STAMPS)/protos: $(STAMPS)/install $(PROTOS)
	rm -rf glue
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I protos \
	  --python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. $(PROTOS)
	find glue -type d -exec touch {}/__init__.py \;
	@touch $@

# Runs both services on an embedded SQLite data directory. Every setting can be overridden
# through the environment (see README), e.g. `CATALOG_LISTEN=127.0.0.1:7000 make run`.
run: $(STAMPS)/protos
	@$(JAVA_CHECK) || echo "warning: glueetl (Spark) jobs will end in ERROR until Java is installed"
	$(BIN)/python -m servicekit.devrun

# Most tests wait (for runs, restarts, timeouts, minute boundaries) rather than compute, so the
# suite runs on more workers than cores (3 on 2 cores: 4 loaded the machine enough to
# break timing-sensitive tests now and then). --dist loadgroup keeps the users of the one Spark
# session, and of the one browser, on one worker each (tests/conftest.py); every other test goes
# to whichever worker is free. TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 3
XDIST = -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMPS)/protos $(STAMPS)/dev $(AIRFLOW_STAMP)
	@$(JAVA_CHECK)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# glueetl runs go through spark-submit, which needs a Java 17 runtime.
JAVA_CHECK := command -v java >/dev/null || { echo "Java 17 is needed for glueetl (Spark) jobs: \
apt-get install openjdk-17-jre-headless (Debian/Ubuntu) or set JAVA_HOME" >&2; false; }

airflow-venv: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP):
	@mkdir -p $(STAMPS)
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet $(AIRFLOW_PACKAGES)
	@touch $@

# Everything except tests marked slow.
test-fast: $(STAMPS)/protos $(STAMPS)/dev
	$(BIN)/python -m pytest $(XDIST) -m 'not slow' $(PYTEST_ARGS)

# moto's own Glue job/run/trigger/tag tests against our gateway (dev only; tests/moto/run.sh).
test-moto: $(STAMPS)/protos $(STAMPS)/dev
	tests/moto/run.sh

lint: $(STAMPS)/protos $(STAMPS)/dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

bench: $(STAMPS)/protos $(STAMPS)/dev
	$(BIN)/python -m bench $(BENCH_ARGS)

# py-spy on both services and the run supervisors under the bench's loads (bench/profile.py);
# attaching needs root or ptrace rights. Writes var/profile/{summary,*.top}.txt and speedscope.
profile: $(STAMPS)/protos $(STAMPS)/dev
	$(BIN)/python -m bench.profile $(or $(PROFILE_OUT),var/profile) $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(STAMPS) glue var *.egg-info
