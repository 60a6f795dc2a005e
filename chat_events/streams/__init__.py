"""The stream processors: stages (persist + fan-out, inbox, sessions, groups) as plain batch objects
(``stage.py``), run by the native batch runner on one aiokafka consumer (``app.py``, ``runner.py``,
``transactional_runner.py``; the default) or, with ``CHAT_WORKER_ENGINE=faust``, as one
faust-streaming agent per stage (``faust_app.py``, ``faust_agent.py``)."""
