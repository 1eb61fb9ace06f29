"""Data access: SQLAlchemy entities, repositories, engine and migrations."""
