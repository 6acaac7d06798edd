"""The HTTP server: the JSON API (agents, queues, callbacks, voicemail, fax) and /metrics."""
