pytest_plugins = ["tests.plugins.vllm_server"]
