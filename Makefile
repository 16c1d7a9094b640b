# kitefix — build, run and test.
GO       ?= go
TOOLS    := $(CURDIR)/bin/tools
RIE      := $(TOOLS)/aws-lambda-rie
STATICCHECK := $(TOOLS)/staticcheck
DATASET  ?= $(CURDIR)/../shared/datasets/logchunks-dev
CIDIFF   ?= $(CURDIR)/../shared/datasets/cidiff-dev
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: run demo test tools chromium lint unit integration eval bench load fuzz build clean

## run: the local stack on 127.0.0.1:8080 with embedded storage (no AWS account)
run:
	$(GO) run ./cmd/kitefix serve

## demo: the local stack against a simulated Buildkite organization in the same process; open http://127.0.0.1:8080 and watch four failing builds get explained (no account, no network)
demo:
	$(GO) run ./cmd/kitefix serve --demo

## test: install the test tools, then lint, unit and integration tests
test: tools lint unit integration

tools: $(RIE) $(STATICCHECK) chromium

# The settings-page test drives headless Chromium from Debian's packages.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

$(RIE):
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	cd integration && $(GO) vet ./...
	$(STATICCHECK) ./...
	cd integration && $(STATICCHECK) ./...
	@if command -v cfn-lint >/dev/null 2>&1; then \
	  echo "cfn-lint template.yaml"; cfn-lint template.yaml; \
	else echo "cfn-lint not found: skipped"; fi

unit:
	$(GO) test -race -count=1 ./...

integration: $(RIE) chromium
	cd integration && KITEFIX_RIE=$(RIE) $(GO) test -count=1 -timeout 8m ./...

## eval: score the log analyzer on the labelled datasets (in-sample and leaving one repository out; the baseline diff on CiDiff pairs when present)
eval:
	$(GO) run ./tools/logeval -data $(DATASET) $(if $(wildcard $(CIDIFF)/labels.jsonl),-cidiff $(CIDIFF))

## bench: analyzer throughput and peak memory on a generated 1 GiB log, Go benchmarks (analyzer, webhook handling), a 1 GiB log through the analyze worker, webhook-to-annotation latency on kitefix serve, and a burst of 500 failed jobs through two analyze instances sharing one token's budget on kumo
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shared/loganalysis/
	$(GO) test -run '^$$' -bench . -benchmem ./shared/webhook/ ./shared/ingest/
	$(GO) test -run '^$$' -bench AnalyzeHandler1GiB -benchtime 1x ./shared/analysis/
	$(GO) test -run '^$$' -bench ServeWebhookToAnnotation -benchtime 60x ./cmd/kitefix/
	$(GO) run ./tools/logbench
	cd integration && $(GO) test -run '^$$' -bench BudgetBurst500 -benchtime 1x ./

## load: kitefix serve under 10 000 signed webhook deliveries (duplicates, bad signatures, unknown ids, out of order) against a loopback fake Buildkite: checks every failed job analyzed once and reports deliveries/s, webhook latency, time to the last analysis, requests per job and peak memory
load:
	$(GO) build -o bin/kitefix ./cmd/kitefix
	$(GO) run ./tools/loadgen -kitefix bin/kitefix

## fuzz: a short fuzzing pass over the line cleaner, the analyzer, the webhook signature header and the payload reader, the queue message decoder and the settings request decoder
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzClean -fuzztime 30s -fuzzminimizetime 5s ./shared/loganalysis/
	$(GO) test -run '^$$' -fuzz FuzzAnalyze -fuzztime 30s -fuzzminimizetime 5s ./shared/loganalysis/
	$(GO) test -run '^$$' -fuzz FuzzParseSignature -fuzztime 30s -fuzzminimizetime 5s ./shared/webhook/
	$(GO) test -run '^$$' -fuzz FuzzSummarize -fuzztime 30s -fuzzminimizetime 5s ./shared/webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s -fuzzminimizetime 5s ./shared/queue/
	$(GO) test -run '^$$' -fuzz FuzzDecodeToken -fuzztime 30s -fuzzminimizetime 5s ./shared/settingsapi/

# sam build calls build-<LogicalId> with ARTIFACTS_DIR set.
build-ConnectFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/connect
build-WebhookFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook
build-AnalyzeFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/analyze

build:
	$(GO) build -o bin/kitefix ./cmd/kitefix

clean:
	rm -rf bin .aws-sam
