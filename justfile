# syno: the verbs people type. `just` alone lists them.
set dotenv-load := false

# List the recipes
default:
    @just --list

# Generate a sample workbook and run it through all four services on embedded servers
demo *ARGS:
    uv run --frozen syno demo {{ARGS}}

# Run the test suite (unit, integration and end-to-end, on embedded NATS and PostgreSQL)
test *ARGS:
    uv run --frozen pytest {{ARGS}}

# The quick inner loop: everything but the end-to-end and fault-injection suites
test-quick *ARGS:
    uv run --frozen pytest -m "not e2e and not faults" {{ARGS}}

# Lint and type-check (ruff, mypy strict, hadolint on every Dockerfile)
lint:
    uv run --frozen ruff check .
    uv run --frozen ruff format --check .
    uv run --frozen mypy
    uv run --frozen hadolint $(git ls-files '*Dockerfile' '*Dockerfile.*' '*.Dockerfile')

# Regenerate docs/asyncapi.yaml, the event contract, from the services' typed subscribers and publishers
asyncapi:
    uv run --frozen python -m syno_cli.asyncapi

# Put a workbook through the pipeline and print the JSON result
run PATH:
    uv run --frozen syno run {{PATH}} --json

# Run the four services against the configured servers (embedded if SYNO_NATS_URL/SYNO_PG_DSN are unset)
services:
    uv run --frozen syno services

# Replay a snapshot's stored event, forced (e.g. `just replay workbook.landed <snapshot_id>`): stages redo their work without duplicating
replay SUBJECT SNAPSHOT:
    uv run --frozen syno replay {{SUBJECT}} --snapshot {{SNAPSHOT}} --force

# Benchmarks, one report in bench/results/<timestamp>.{json,md} (`just bench --quick` for a few minutes)
bench *ARGS:
    uv run --frozen python bench/run.py {{ARGS}}

# Start the compose deployment (needs a Docker engine)
up:
    docker compose up -d --build

# Stop the compose deployment
down:
    docker compose down
