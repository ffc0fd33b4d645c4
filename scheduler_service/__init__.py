"""The scheduler service: registered jobs, schedules, the run queue and the processes that run jobs."""
