"""Settings: the only place that reads the environment, .env and benchmark.toml, and checks what they hold."""
