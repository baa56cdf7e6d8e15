"""One dynamic partition per arriving batch, so a new batch is ingested without touching history."""

import dagster as dg

batches = dg.DynamicPartitionsDefinition(name="batches")
