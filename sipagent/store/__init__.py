"""Durable data shared across the engine: the event log and its schema, reports, the outbox and its notifier, atomic file and PIN helpers."""
