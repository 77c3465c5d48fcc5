.PHONY: demo test docs bench sandbox

demo:  ## the main job: example DAGs against the local sandbox, fully offline
	bash scripts/demo.sh

test:  ## ruff, mypy, the docs build and the whole test suite
	bash scripts/test.sh

docs:  ## the docs site (Sphinx, offline, warnings as errors) -> docs/_build/html
	bash scripts/docs.sh

bench:  ## benchmarks; rewrites docs/benchmarks.md
	bash scripts/bench.sh

sandbox:  ## run the local smSend gateway on port 8765
	bash scripts/bootstrap.sh && .venv/bin/smsend-sandbox --port 8765
