# Entry points of the workspace. `make setup` and `make test` are what README and CI use.
.PHONY: setup test test-quick demo build clean

setup:
	bash tools/setup.sh

test: setup
	bash tools/test.sh

test-quick: setup
	bash tools/test.sh -m "not slow"

demo: setup
	bash tools/run_in_env.sh vla-demo $(DEMO_ARGS)

build:
	bash tools/run_in_env.sh colcon build --symlink-install

clean:
	rm -rf build install log
