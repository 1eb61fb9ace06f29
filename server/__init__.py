"""The framework: publishes every facade as SOAP 1.1, 1.2 and JSON REST through one dispatcher."""
