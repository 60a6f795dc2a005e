"""The edge: FastAPI + WebSocket. Built in the edge issue."""
