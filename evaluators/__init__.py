"""OpenNAC evaluators."""
