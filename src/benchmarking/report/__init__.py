"""`python main.py report`: which provider is fastest, most reliable and cheapest, and is it getting worse?

Everything is computed here, in Python, on the stored rows, so that every backend gives the same numbers, with
figures.py's definitions (the run's console uses the same): percentiles by linear interpolation between closest ranks
(Hyndman and Fan's type 7, NumPy's default); a tail percentile needs 2 samples, the median 1; "-" where undefined.
Rooms, each importing only those above it: selection (which rows), groups (the --by keys), statistics (summaries),
views (summaries per group, SLO attainment), formats (table, markdown, csv, json, export), compare (--compare),
load (--by concurrency), charts (--plot).
"""
