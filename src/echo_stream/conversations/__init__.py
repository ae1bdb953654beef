"""Stored conversations: SQLAlchemy tables, the repository, migrations and the recording stage."""
