# The two commands a new user needs: `make run` and `make test`. `make help` lists the rest.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080
SUM    := $(shell cat setup.cfg pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# Every install takes the versions pinned in constraints.txt (`make constraints` renews them).
PIP    := $(BIN)/pip install --quiet -c constraints.txt
# The MySQL driver (mysqlclient) compiles against the MariaDB client headers: the test
# environment takes it when they are installed; without them the MariaDB tests are skipped.
MYSQL  := $(shell (pkg-config --exists libmariadb || pkg-config --exists mysqlclient) 2>/dev/null && echo ,mysql)

.DEFAULT_GOAL := help
.PHONY: help run demo test lint format contracts docs bench constraints clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/\$$(PORT)/$(PORT)/g' | \
	  awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.base-$(SUM):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "Python 3.11 is required (spyne 2.14 does not import on 3.12); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e . --config-settings editable_mode=compat
	@rm -f $(VENV)/.base-* && touch $@

$(VENV)/.test$(MYSQL)-$(SUM): $(VENV)/.base-$(SUM)
	$(PIP) -e '.[test$(MYSQL)]' --config-settings editable_mode=compat
	@rm -f $(VENV)/.test-* $(VENV)/.test,* && touch $@

TESTENV := $(VENV)/.test$(MYSQL)-$(SUM)

run: $(VENV)/.base-$(SUM) var/secret.key var/partner-platform.pem ## Start the platform on 127.0.0.1:$(PORT) with SQLite and an in-process cache
	$(BIN)/p2p migrate
	PORT=$(PORT) P2P_SECURITY_SECRET_KEY="$${P2P_SECURITY_SECRET_KEY:-$$(cat var/secret.key)}" \
	  P2P_PARTNER_PLATFORM_PRIVATE_KEY="$${P2P_PARTNER_PLATFORM_PRIVATE_KEY:-var/partner-platform.pem}" \
	  P2P_BANK_NOTIFY_URL="$${P2P_BANK_NOTIFY_URL:-http://127.0.0.1:$(PORT)/bank/notify}" \
	  $(BIN)/p2p serve

demo: $(VENV)/.base-$(SUM) ## Walk a listing's whole life over REST against `make run` (another terminal), printing each call
	$(BIN)/p2p demo --base-url http://127.0.0.1:$(PORT) --create-operator

# This checkout's own master key (security.secret_key) for `make run`: personal data and API
# secrets are sealed with it. Made once, readable by its owner only; never committed (var/).
var/secret.key:
	@mkdir -p var && umask 077 && head -c32 /dev/urandom | base64 > $@

# This checkout's own RSA key signing the answers to partner apps with RSA keys
# (partner.platform_private_key), for `make run`: made once, readable by its owner only.
var/partner-platform.pem: $(VENV)/.base-$(SUM)
	@mkdir -p var && umask 077 && $(BIN)/python -c \
	  'import sys; from service.ocp.signing import generate_keypair; sys.stdout.buffer.write(generate_keypair()[0])' > $@

test: $(TESTENV) ## Run the whole test suite, on MariaDB and Redis too when they answer on 127.0.0.1
	$(BIN)/pytest

lint: $(TESTENV) ## ruff check and format check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TESTENV) ## Format the code with ruff
	$(BIN)/ruff format .

contracts: $(TESTENV) ## Regenerate wsdl/ and swagger/ from the code, check them against the last release, then make docs
	P2P_ENV=test $(BIN)/p2p export-contracts
	P2P_ENV=test $(BIN)/p2p check-contracts
	P2P_ENV=test $(BIN)/p2p export-docs

docs: $(TESTENV) ## Regenerate docs/contracts/ (each facade's document, the changelog page) from the code and contracts/
	P2P_ENV=test $(BIN)/p2p export-docs

bench: $(TESTENV) ## Measure getLoan (REST, SOAP, a bare endpoint), a worker's start and the bank's notifications
	$(BIN)/python bench/getloan.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/notifications.py

# A fresh virtualenv (a temporary folder) with the newest versions setup.cfg allows, frozen;
# the comment at the top of constraints.txt is kept. Installing the checkout itself leaves
# setuptools' build/ behind, removed too.
constraints: ## Renew constraints.txt: pin what '.[mysql,deploy,test]' installs in a fresh virtualenv
	@set -e; venv=$$(mktemp -d); trap 'rm -rf "$$venv" build' EXIT; \
	  $(PYTHON) -m venv "$$venv"; \
	  "$$venv/bin/pip" install --quiet --upgrade pip; \
	  "$$venv/bin/pip" install --quiet '.[mysql,deploy,test]'; \
	  { grep '^#' constraints.txt; "$$venv/bin/pip" freeze --all --exclude p2p-platform; } > constraints.new; \
	  mv constraints.new constraints.txt

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache
