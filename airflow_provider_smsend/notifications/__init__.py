"""Notifiers of the smSend provider."""
