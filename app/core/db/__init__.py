"""The database layer shared by the API and the workers: models, sessions and queries."""
