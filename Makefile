# The two commands of the README, and a few more.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PORT ?= 8080
DATA ?= ./picloud-data

.PHONY: run test build bench bench-endpoint bench-http bench-triggers bench-realtime bench-cluster bench-compare bench-soak bench-slices bench-cpu clean

## run: install what is missing, build a release binary, and serve on $(PORT) with the examples deployed
run:
	@$(ENV) scripts/deps.sh run
	@$(ENV) swift_release build --product picloud
	@$(ENV) .build/release/picloud serve --port $(PORT) --data-dir $(DATA) --deploy examples/notes --deploy examples/shortener --deploy examples/chat

## test: install what is missing (PostgreSQL included), build, and run every test, with a private PostgreSQL server
test:
	@$(ENV) scripts/deps.sh test
	@$(ENV) swift build --build-tests
	@$(ENV) scripts/with-postgres.sh scripts/run-tests.sh

build:
	@$(ENV) scripts/deps.sh run
	@$(ENV) swift build

## bench: the Lua runtime micro-benchmarks (results in bench/results/)
bench:
	@$(ENV) scripts/deps.sh run
	@$(ENV) swift_release run lua-bench

## bench-endpoint: PiCloud's own CPU per endpoint request, without sockets (results in bench/results/)
bench-endpoint:
	@$(ENV) scripts/deps.sh run
	@$(ENV) swift_release run endpoint-bench

## bench-http: requests/s and latency of example endpoints with wrk (results in bench/results/)
bench-http:
	@$(ENV) scripts/deps.sh run
	@bench/http/run.sh

## bench-triggers: trigger deliveries/s and start latency (results in bench/results/)
bench-triggers:
	@$(ENV) scripts/deps.sh run
	@bench/triggers/run.sh

## bench-realtime: SSE fan-out to 1,000 and 10,000 subscribers: events/s, latency, memory (results in bench/results/)
bench-realtime:
	@$(ENV) scripts/deps.sh run
	@bench/realtime/run.sh

## bench-cluster: 1 node against 3 on one PostgreSQL database: trigger deliveries/s, SSE latency across nodes (results in bench/results/)
bench-cluster:
	@$(ENV) scripts/deps.sh test
	@$(ENV) scripts/with-postgres.sh bench/cluster/run.sh

## bench-compare: PiCloud side by side with ngx_lua, nchan, Redis and Tarantool, installed from Debian and run on loopback (results in bench/results/)
bench-compare:
	@$(ENV) scripts/deps.sh run
	@bench/compare/run.sh

## bench-slices: hello latency while other handlers compute, with and without time slices (results in bench/results/)
bench-slices:
	@$(ENV) scripts/deps.sh run
	@bench/slices/run.sh

## bench-cpu: server CPU per request by thread (event loops, SQLite's writer) for hello, kv read and kv write, against hello (results in bench/results/)
bench-cpu:
	@$(ENV) scripts/deps.sh run
	@bench/cpu/run.sh

## bench-soak: 10 minutes of mixed load; RSS, open files and outbox depth sampled for a growth trend (results in bench/results/)
bench-soak:
	@$(ENV) scripts/deps.sh run
	@$(ENV) bench/soak/run.sh

clean:
	rm -rf .build
