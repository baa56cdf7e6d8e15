"""Scoring batches: one dynamic partition per file of rows to score (its name, no suffix)."""

import dagster as dg

scoring_batches = dg.DynamicPartitionsDefinition(name="scoring_batches")
