"""Database set-up (engines, sessions, schema version) and the module naming every table."""
