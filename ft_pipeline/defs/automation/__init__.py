"""Operations: jobs, sensors (new sources, erasures, retrain when the redacted data changed),
schedules, and trained_data (the rule the retrain sensor follows)."""
