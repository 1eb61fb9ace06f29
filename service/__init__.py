"""Business logic: protocol-free services returning immutable value objects."""
