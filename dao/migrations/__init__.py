"""Alembic environment and revisions for the platform schema (run via dao.migrate)."""
