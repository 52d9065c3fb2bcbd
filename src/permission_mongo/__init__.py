"""Permission Mongo: an authorization gateway for MongoDB."""

__version__ = "0.1.0"
