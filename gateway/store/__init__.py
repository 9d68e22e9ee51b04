"""Storage: the spool (messages in flight), quarantine (originals and reports)."""
