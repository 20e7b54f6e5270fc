"""The run's lifecycle as use cases, shared by main.py and run_scheduled.py (through cli/): open storage and replay
the outbox, mark dead runs abandoned (storage.py); plan, show and guard what a run will send (plan.py); prepare a
process's runs, make one run or one load run, judge the alert rules after it (runs.py); where a run's writes ended
up (delivery.py). No argument parsing here, and no printing: every line goes through the Reporter that cli/ gives
(reporter.py)."""
