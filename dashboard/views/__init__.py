"""One module per page or group of pages; each exposes ``routes``."""
