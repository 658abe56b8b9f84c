# The two commands a newcomer needs: `make run` and `make test`. See README.md.
CARGO ?= cargo

.PHONY: run test bench schema fmt lint

## Build and start the all-in-one server on the embedded store (./data), with GraphiQL.
run:
	$(CARGO) run -p ichigen-gateway --bin ichigen -- serve --demo

## Format check, clippy with -D warnings, and every test (nextest when installed).
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

## Benchmarks (release build); results go into BENCHMARKS.md by hand, with the date and machine.
bench:
	$(CARGO) bench -p ichigen-shared --bench event_store
	$(CARGO) bench -p ichigen-tests --bench postgres_store
	$(CARGO) bench -p ichigen-inventory --bench reservations
	$(CARGO) bench -p ichigen-inventory --bench view_rebuild
	$(CARGO) bench -p ichigen-gateway --bench availability
	$(CARGO) bench -p ichigen-gateway --bench orders

## Regenerate schema.graphql and docs/event-catalogue.md from the code (tests fail while they
## are stale).
schema:
	ICHIGEN_UPDATE_SCHEMA=1 $(CARGO) test -p ichigen-gateway --test schema_is_current --test event_catalogue_is_current

fmt:
	$(CARGO) fmt --all
