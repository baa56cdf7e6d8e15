"""Sensors and schedules that close the loop: landing, freshness, drift, failures."""
