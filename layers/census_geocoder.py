"""Online geocoding through the US Census one-line address geocoder (off unless enabled).

Only used for roster rows without coordinates, and only when the setting
``MISSIONWATCH_ONLINE_GEOCODING`` is on: addresses of diplomats then leave the machine, which
an operator must choose knowingly. Failures never fail an import: the row falls back to the
offline gazetteer.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import requests

logger = logging.getLogger(__name__)


class CensusGeocoder:
    """Geocode addresses one request each; unmatched or failed rows come back as NaN."""

    def __init__(self, url: str, *, timeout: float = 10.0, session: requests.Session | None = None,
                 benchmark: str = "Public_AR_Current") -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()
        self.benchmark = benchmark

    def geocode(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` has address, city, jurisdiction, postal_code; returns lat, lon, precision."""
        lat = np.full(len(rows), np.nan)
        lon = np.full(len(rows), np.nan)
        failures = 0
        for i, (address, city, state, zip_code) in enumerate(
            rows[["address", "city", "jurisdiction", "postal_code"]].itertuples(index=False)
        ):
            if not address:
                continue
            line = ", ".join(p for p in (address, city, f"{state} {zip_code}".strip()) if p)
            try:
                response = self.session.get(
                    self.url, timeout=self.timeout,
                    params={"address": line, "benchmark": self.benchmark, "format": "json"},
                )
                response.raise_for_status()
                matches = response.json()["result"]["addressMatches"]
            except (requests.RequestException, ValueError, KeyError, TypeError):
                failures += 1
                continue
            if matches:
                coordinates = matches[0]["coordinates"]
                lon[i], lat[i] = float(coordinates["x"]), float(coordinates["y"])
        if failures:
            logger.warning("census geocoder: %d of %d requests failed", failures, len(rows))
        precision = np.where(np.isnan(lat), "", "rooftop")
        return pd.DataFrame({"lat": lat, "lon": lon, "geocode_precision": precision},
                            index=rows.index)
