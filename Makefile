# machineflow: everything a fresh machine needs is built from Go modules into ./bin.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

BIN            := $(CURDIR)/bin
TOOLS_DIR      := hack/tools
KUBE_VERSION   := v1.36.1
TEMPORAL_CLI   := v1.5.1
GO             ?= go

export KUBEBUILDER_ASSETS := $(BIN)
export PATH := $(BIN):$(PATH)

TOOLS := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/temporal $(BIN)/staticcheck

.PHONY: all tools build lint test test-short bench fmt

all: build

tools: $(TOOLS) ## Build kube-apiserver, etcd, temporal and staticcheck into ./bin (cached).

# Each binary depends only on the tools module's go.mod, so a second run
# rebuilds nothing.
$(BIN)/kube-apiserver: $(TOOLS_DIR)/go.mod
	@echo ">> building kube-apiserver $(KUBE_VERSION) (about 3 minutes, once)"
	cd $(TOOLS_DIR) && $(GO) build -trimpath \
		-ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36" \
		-o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/etcd: $(TOOLS_DIR)/go.mod
	@echo ">> building etcd (about 40 seconds, once)"
	cd $(TOOLS_DIR) && $(GO) build -trimpath -o $@ go.etcd.io/etcd/server/v3

$(BIN)/staticcheck: $(TOOLS_DIR)/go.mod
	@echo ">> building staticcheck"
	cd $(TOOLS_DIR) && $(GO) build -trimpath -o $@ honnef.co/go/tools/cmd/staticcheck

$(BIN)/temporal:
	@echo ">> building the Temporal CLI $(TEMPORAL_CLI) (about 3 minutes, once)"
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI)

build:
	$(GO) build ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

test: tools lint
	$(GO) test -count=1 -timeout 40m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench: tools
	$(GO) test -run '^$$' -bench . -benchmem ./...
