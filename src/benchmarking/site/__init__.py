"""`report --site DIR`: a static site from the stored results (a leaderboard per window and percentile, charts over
time, a page per provider and model with its recent failures). It reads what storage holds through the report's own
selection and statistics, and never changes a measurement.

Rooms: data (the figures, as one dict), pages (the files: markup, data as a script, assets), write (the whole
directory, swapped in at once), build (the three together).
"""
