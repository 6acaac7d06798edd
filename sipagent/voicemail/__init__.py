"""Voicemail: mailboxes and messages on disk and in SQLite, the flow verbs that deposit and retrieve them, notifications and metrics."""
