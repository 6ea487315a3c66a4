"""Every component id used in the dashboard, in one place."""

OVERVIEW_MAP = "overview-map"
OVERVIEW_KPIS = "overview-kpis"
OVERVIEW_JURISDICTIONS = "overview-jurisdictions"
OVERVIEW_ROSTER_LABEL = "overview-roster-label"
