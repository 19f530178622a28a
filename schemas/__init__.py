"""The API contract as marshmallow schemas; /openapi.json is generated from these."""
