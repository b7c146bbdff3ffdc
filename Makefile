# infleet's build, test and benchmark entry points. `make test` starts every peer it needs by
# itself: NATS JetStream, SQLite and Kafka (kfake) run in-process; PostgreSQL runs as a
# throwaway server (installed from Debian packages when absent) for the duration of the tests;
# the console's browser test drives Debian's chromium, installed the same way.
GO       ?= go
BIN      := bin/infleet
# What `infleet version` prints, linked into the binary (deploy/Dockerfile takes the same as
# build arguments).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Each fuzz target's budget, as a count of executions: a duration budget (e.g. 5s) can end in a
# spurious "context deadline exceeded" with no failing input on a loaded machine (Go's fuzz
# coordinator races its own deadline, golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 30000x
BENCHTIME ?= 1s
# Extra flags of the load harness, e.g. BENCHFLAGS=-quick or -scenario throughput.
BENCHFLAGS ?=
# Runs a command beside a throwaway PostgreSQL, exporting INFLEET_TEST_POSTGRES_DSN.
PG_PEER    := .ci/peers/with-postgres.sh
# Runs a command beside fauxqs (SQS, SNS, S3) and dynalite (DynamoDB), exporting
# INFLEET_TEST_AWS_ENDPOINT and INFLEET_TEST_DYNAMODB_ENDPOINT.
AWS_PEER   := .ci/peers/with-aws.sh
# Runs a command with INFLEET_TEST_CHROMIUM set to Debian's chromium (installed when absent), for
# the console's browser test.
CHROME_PEER := .ci/peers/with-chromium.sh
# Runs a command beside a throwaway Redis (persistence off), exporting INFLEET_TEST_REDIS_ADDR:
# only the load harness needs it, for asynq (bench/peers).
REDIS_PEER := .ci/peers/with-redis.sh

# Fuzz targets run briefly by `make test`: package:target.
FUZZ_TARGETS := \
	./pipeline/worker:FuzzDecodeJob \
	./messages:FuzzBatchPrompt \
	./config:FuzzLoad \
	./schemas:FuzzValidateJob \
	./schemas:FuzzDecodeValidJob \
	./schemas:FuzzDecodeValidBatch \
	./handlers:FuzzPostJob \
	./handlers:FuzzParseAPIKey \
	./handlers:FuzzBearer \
	./pipeline/guard:FuzzDetect \
	./netguard:FuzzCheck

.PHONY: build run test unit fuzz vet lint bench bench-go bench-load clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/infleet

run: build
	./$(BIN) serve

test: vet unit fuzz

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(PG_PEER) $(AWS_PEER) $(CHROME_PEER) $(GO) test -count=1 -timeout 20m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint: vet

bench: bench-go bench-load

bench-go:
	$(PG_PEER) $(AWS_PEER) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# PostgreSQL runs with fsync and synchronous commit on (INFLEET_PG_DURABLE=1): River, measured
# beside infleet's burn-down, and infleet's PostgreSQL store are then durable.
bench-load: build
	INFLEET_PG_DURABLE=1 $(PG_PEER) $(AWS_PEER) $(REDIS_PEER) $(GO) run ./bench/load -bin $(BIN) $(BENCHFLAGS)

clean:
	rm -rf bin data
