"""Machine-readable description of the HTTP API (`openapi.py`)."""
