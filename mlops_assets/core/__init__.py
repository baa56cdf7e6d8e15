"""The functional core: plain functions on DataFrames, tested without Dagster."""
