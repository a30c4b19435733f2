"""Reports over the rollups, never the raw clicks on their way:

- `query`: what a report is asked (period, filters) and the one parser of its query string;
- `periods`: a period planned as runs of rollup rows (months, weeks, days, hours);
- `sql`: the SQL the families share;
- the families: `engagement` (touchpoints, stages), `timeseries`, `breakdowns`, `journey_map`;
- `render`: the JSON head and the CSV of every report;
- `api`: the /api/v1/reports views; `cli`: `touchlink report …`.
"""
