"""Durable chat state behind one port (:class:`MessageStore`) with two adapters."""

from chat_events.store.factory import open_store
from chat_events.store.models import ConversationState, Group, InboxEntry, Page, Session
from chat_events.store.port import MessageStore

__all__ = ["ConversationState", "Group", "InboxEntry", "MessageStore", "Page", "Session", "open_store"]
