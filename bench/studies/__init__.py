"""The study files shipped with bench (TOML, read by bench.core.studies.load)."""
