"""The watch engine: what the stored results say over time, never a change to them. The alert rules, pure functions
of rows (rules.py); the alerts' state in the `alerts` table and the notifications owed (alerts.py); sending one
through Apprise (notify.py, in a child process: notify_child.py); Prometheus metrics of a run and of the history
(metrics.py), and the two ways they go out: a textfile and an HTTP endpoint (exposition.py)."""
