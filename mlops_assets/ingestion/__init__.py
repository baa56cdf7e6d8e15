"""Stage `ingestion`: raw and cleaned data per batch, with their checks."""
