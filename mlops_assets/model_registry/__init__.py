"""The MLflow model registry's champion and challenger: moves under a lock, history, rollback.

Shared by training (the champion to beat), deployment (promotion) and monitoring (the
champion's reference statistics), so it belongs to none of those stages.
"""
