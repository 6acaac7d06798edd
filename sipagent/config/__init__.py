"""The TOML configuration: loading, the typed models, value types, and the voicemail and fax sections."""
