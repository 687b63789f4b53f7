"""OpenNAC search_spaces."""
