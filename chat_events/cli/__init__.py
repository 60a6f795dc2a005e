"""Command-line entry points (``chat-events ...``)."""
