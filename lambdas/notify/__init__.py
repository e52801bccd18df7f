"""Run notifications: the end of every pipeline execution becomes a readable message on the SNS topic."""
