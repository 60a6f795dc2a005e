"""Benchmarks of chat-events: the codec (``python -m benchmarks.bench_codec``) and the producer
(``python -m benchmarks.bench_producer``). See ``docs/benchmarks.md``."""
