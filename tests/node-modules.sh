#!/bin/sh
# node-modules.sh: tests/node_modules as tests/package-lock.json says (npm ci), made only when it is
# missing or older than the lock file: the tests' own Node.js 22 (npm package "node"), the openai
# SDK, the MCP servers from npm. Run by tests/check.sh (make check) and by `make sim`. Exit status
# npm's.
cd "$(dirname "$0")" || exit 2
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
