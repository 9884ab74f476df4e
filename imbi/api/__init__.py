"""The REST API: problem+json errors and the URL table. Views live beside the domain they serve."""
