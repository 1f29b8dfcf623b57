"""The labelled plan corpus: schemas of our own, queries by anti-pattern family, measured labels."""
