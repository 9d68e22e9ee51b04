"""File jobs: durable records and the service the drop folder and HTTP API share."""
