"""The scheduler service: durable schedules, trigger firing, run execution, the outbox."""
