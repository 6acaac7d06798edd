"""Durable data shared across the engine: the event log and its schema, reports, a store's SQLite index, the outbox and its notifier, atomic file and PIN helpers."""
