"""The contract: facade interfaces, their operations and DTOs. Declarations only, no logic."""
