"""Faust stream processors (persist, fan-out, inbox, sessions). Built in the stream-processing issue."""
