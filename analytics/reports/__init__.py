"""Reports over the rollups, never the raw clicks on their way:

- `query`: what a report is asked (period, filters) and the one parser of its query string;
- `periods`: a period planned as runs of rollup rows (months, weeks, days, hours);
- `sql`: the SQL the families share;
- the families: `engagement` (per touchpoint), `stages` (visitors by stage), `timeseries`,
  `breakdowns`, `journey_map`, `drilldown` (one touchpoint, link or campaign; campaigns);
- `rates`: rates with their intervals, changes that say when they mean nothing;
- `render`: the JSON head and the CSV of every report;
- `api`: the /api/v1/reports views; `cli`: `touchlink report …`.
"""
